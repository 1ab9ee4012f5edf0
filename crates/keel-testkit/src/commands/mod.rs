//! Command dispatch: a table from command name to a handler in one module per command family.

mod admin;
mod aggregate;
pub(crate) mod args;
pub(crate) mod change_stream;
pub(crate) mod codes;
mod cursor;
mod delete;
pub(crate) mod error;
mod fail_point;
mod find;
mod find_and_modify;
mod handshake;
mod indexes;
mod insert;
mod oplog_collection;
mod rename;
pub(crate) mod repl;
mod sessions;
mod update;
mod views;
mod write_result;

use bson::Document;

pub(crate) use error::CommandError;

use crate::server::{ConnInfo, Shared};
use crate::storage::Storage;

/// What a handler sees.
pub(crate) struct Ctx<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) db: &'a str,
    pub(crate) conn: &'a ConnInfo,
    /// A lagging secondary's view of the data, for reads (`None`: the shared storage).
    pub(crate) read_view: Option<&'a Storage>,
    /// The open transaction's own copy of the data, when the command runs in one.
    pub(crate) txn: Option<&'a std::sync::Mutex<Storage>>,
}

impl Ctx<'_> {
    /// Runs `f` on the data this member reads: a lagging secondary's view, else the storage.
    pub(crate) fn with_read_storage<R>(&self, f: impl FnOnce(&Storage) -> R) -> R {
        match (self.txn, self.read_view) {
            (Some(txn), _) => f(&crate::server::lock(txn)),
            (None, Some(view)) => f(view),
            (None, None) => f(&crate::server::lock(&self.shared.storage)),
        }
    }

    /// The data a write changes: the transaction's copy in a transaction, else the storage.
    pub(crate) fn storage(&self) -> std::sync::MutexGuard<'_, Storage> {
        crate::server::lock(self.txn.unwrap_or(&self.shared.storage))
    }
}

type Handler = fn(&Ctx<'_>, &Document) -> Result<Document, CommandError>;

/// Every command the server knows, by the exact (case-sensitive) name mongod uses.
const COMMANDS: &[(&str, Handler)] = &[
    ("hello", handshake::hello),
    ("isMaster", handshake::is_master),
    ("ismaster", handshake::is_master),
    ("ping", handshake::ping),
    ("buildInfo", handshake::build_info),
    ("buildinfo", handshake::build_info),
    ("serverStatus", handshake::server_status),
    ("endSessions", handshake::end_sessions),
    ("killSessions", sessions::kill_sessions),
    ("killAllSessions", sessions::kill_all_sessions),
    ("connectionStatus", handshake::connection_status),
    ("listDatabases", admin::list_databases),
    ("listCollections", admin::list_collections),
    ("create", admin::create),
    ("collMod", admin::coll_mod),
    ("drop", admin::drop),
    ("dropDatabase", admin::drop_database),
    ("renameCollection", rename::rename_collection),
    ("createIndexes", indexes::create_indexes),
    ("listIndexes", indexes::list_indexes),
    ("dropIndexes", indexes::drop_indexes),
    ("deleteIndexes", indexes::drop_indexes),
    ("insert", insert::insert),
    ("find", find::find),
    ("getMore", find::get_more),
    ("killCursors", find::kill_cursors),
    ("count", find::count),
    ("update", update::update),
    ("delete", delete::delete),
    ("findAndModify", find_and_modify::find_and_modify),
    ("findandmodify", find_and_modify::find_and_modify),
    ("aggregate", aggregate::aggregate),
    ("configureFailPoint", fail_point::configure_fail_point),
    ("replSetStepDown", repl::repl_set_step_down),
    ("replSetGetStatus", repl::repl_set_get_status),
    ("replSetGetConfig", repl::repl_set_get_config),
];

/// Runs one command. `name` is the body's first key.
pub(crate) fn run(ctx: &Ctx<'_>, name: &str, body: &Document) -> Result<Document, CommandError> {
    match COMMANDS.iter().find(|(n, _)| *n == name) {
        Some((_, handler)) => {
            views::refuse_on_view(ctx, name, body)?;
            handler(ctx, body)
        }
        None => Err(CommandError::new(
            codes::COMMAND_NOT_FOUND,
            format!("no such command: '{name}'"),
        )),
    }
}

/// Whether `name` is a command this server implements.
pub(crate) fn is_known(name: &str) -> bool {
    COMMANDS.iter().any(|(n, _)| *n == name)
}
