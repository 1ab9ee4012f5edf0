//! The store's tables, their creation at first open, and loading everything at start.

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::{Loaded, META_CLIENT_ID, META_HLC, META_LAST_SYNC, META_NEXT_SEQ};
use crate::{Operation, Result, SyncError, operation::DocKey, server_record::ServerDoc};

/// Operation queue: sequence number → operation (BSON).
pub(crate) const QUEUE: TableDefinition<'static, u64, &'static [u8]> =
    TableDefinition::new("queue");
/// Local replica: document key → last known server document with its `_sync` record (BSON).
pub(crate) const REPLICA: TableDefinition<'static, &'static [u8], &'static [u8]> =
    TableDefinition::new("replica");
/// Client id, next sequence number, clock, checkpoints.
pub(crate) const META: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("meta");
/// Conflict log: conflict number → record (BSON).
pub(crate) const CONFLICTS: TableDefinition<'static, u64, &'static [u8]> =
    TableDefinition::new("conflicts");
/// Download checkpoints: namespace → the change-stream consumer's checkpoint with the
/// subscription filter it was taken for (BSON).
pub(crate) const CHECKPOINTS: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("checkpoints");
/// Conflict decisions of writes sent but not yet acknowledged: sequence number → conflict
/// record (BSON), stored before the write is sent and removed with the operation, so a crash
/// between the write landing and its acknowledgement still logs the decision after a restart.
pub(crate) const DECISIONS: TableDefinition<'static, u64, &'static [u8]> =
    TableDefinition::new("decisions");
/// Quarantine: sequence number → operation with its error (BSON).
pub(crate) const QUARANTINE: TableDefinition<'static, u64, &'static [u8]> =
    TableDefinition::new("quarantine");

/// Creates the tables and the client id on first open; returns the client id.
pub(super) fn init(db: &Database) -> Result<String> {
    let write = db.begin_write().map_err(SyncError::storage)?;
    let client_id = {
        write.open_table(QUEUE).map_err(SyncError::storage)?;
        write.open_table(REPLICA).map_err(SyncError::storage)?;
        write.open_table(CONFLICTS).map_err(SyncError::storage)?;
        write.open_table(QUARANTINE).map_err(SyncError::storage)?;
        write.open_table(CHECKPOINTS).map_err(SyncError::storage)?;
        write.open_table(DECISIONS).map_err(SyncError::storage)?;
        let mut meta = write.open_table(META).map_err(SyncError::storage)?;
        let existing = meta
            .get(META_CLIENT_ID)
            .map_err(SyncError::storage)?
            .map(|v| String::from_utf8_lossy(v.value()).into_owned());
        match existing {
            Some(id) => id,
            None => {
                let id = uuid::Uuid::now_v7().to_string();
                meta.insert(META_CLIENT_ID, id.as_bytes())
                    .map_err(SyncError::storage)?;
                id
            }
        }
    };
    write.commit().map_err(SyncError::storage)?;
    Ok(client_id)
}

pub(crate) fn u64_value(bytes: &[u8]) -> u64 {
    <[u8; 8]>::try_from(bytes).map_or(0, u64::from_be_bytes)
}

pub(super) fn load(db: &Database) -> Result<Loaded> {
    let read = db.begin_read().map_err(SyncError::storage)?;
    let meta = read.open_table(META).map_err(SyncError::storage)?;
    let meta_u64 = |key: &str| -> Result<Option<u64>> {
        Ok(meta
            .get(key)
            .map_err(SyncError::storage)?
            .map(|v| u64_value(v.value())))
    };
    let mut next_seq = meta_u64(META_NEXT_SEQ)?.unwrap_or(1);
    let hlc = meta_u64(META_HLC)?.unwrap_or(0);
    let last_sync_ms = meta_u64(META_LAST_SYNC)?.and_then(|v| i64::try_from(v).ok());

    let mut queue = Vec::new();
    for entry in read
        .open_table(QUEUE)
        .map_err(SyncError::storage)?
        .iter()
        .map_err(SyncError::storage)?
    {
        let (seq, value) = entry.map_err(SyncError::storage)?;
        next_seq = next_seq.max(seq.value() + 1);
        queue.push(Operation::from_bytes(value.value())?);
    }
    let mut replica = Vec::new();
    for entry in read
        .open_table(REPLICA)
        .map_err(SyncError::storage)?
        .iter()
        .map_err(SyncError::storage)?
    {
        let (key, value) = entry.map_err(SyncError::storage)?;
        let Some(key) = DocKey::from_bytes(key.value()) else {
            return Err(SyncError::Storage(
                "a replica key is not a document key".into(),
            ));
        };
        replica.push((key, ServerDoc::from_bytes(value.value())?));
    }
    let mut quarantine = Vec::new();
    for entry in read
        .open_table(QUARANTINE)
        .map_err(SyncError::storage)?
        .iter()
        .map_err(SyncError::storage)?
    {
        let (seq, value) = entry.map_err(SyncError::storage)?;
        next_seq = next_seq.max(seq.value() + 1);
        quarantine.push(crate::operation::decode_bytes(value.value())?);
    }
    let mut decisions = Vec::new();
    for entry in read
        .open_table(DECISIONS)
        .map_err(SyncError::storage)?
        .iter()
        .map_err(SyncError::storage)?
    {
        let (seq, value) = entry.map_err(SyncError::storage)?;
        decisions.push((seq.value(), crate::operation::decode_bytes(value.value())?));
    }
    let conflicts = read
        .open_table(CONFLICTS)
        .map_err(SyncError::storage)?
        .len()
        .map_err(SyncError::storage)?;
    Ok(Loaded {
        next_seq,
        hlc,
        queue,
        replica,
        quarantine,
        conflicts,
        last_sync_ms,
        decisions,
    })
}
