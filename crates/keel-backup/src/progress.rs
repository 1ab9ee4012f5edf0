//! Progress of a backup or a restore, reported as events on a channel the caller renders (the
//! CLI draws `indicatif` bars; a service may log or export them).

/// One progress event. Each is also a `tracing` event at debug level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// What will be read or written: each namespace with its expected document count
    /// (`estimatedDocumentCount` for a backup, the manifest's count for a restore).
    Planned {
        /// `(db.collection, expected documents)` in the order they are listed.
        namespaces: Vec<(String, u64)>,
    },
    /// A namespace's running totals, after each batch and once at its end.
    Namespace {
        /// `db.collection` (the target name in a restore).
        namespace: String,
        /// Documents so far.
        documents: u64,
        /// Uncompressed BSON bytes so far.
        bytes: u64,
        /// Whether the namespace is finished.
        done: bool,
    },
    /// Changes captured (backup) or replayed (restore) so far, for the consistent point.
    Changes {
        /// How many.
        count: u64,
        /// Whether the capture or the replay is finished.
        done: bool,
    },
}

/// Where progress goes: a bounded channel, so a slow renderer slows the work rather than
/// growing a queue. A closed receiver is ignored (nobody is watching).
#[derive(Debug, Clone, Default)]
pub(crate) struct ProgressSink(Option<tokio::sync::mpsc::Sender<Progress>>);

impl ProgressSink {
    pub(crate) fn new(sender: tokio::sync::mpsc::Sender<Progress>) -> Self {
        Self(Some(sender))
    }

    pub(crate) async fn send(&self, event: Progress) {
        tracing::debug!(?event, "progress");
        if let Some(sender) = &self.0 {
            let _ = sender.send(event).await;
        }
    }
}
