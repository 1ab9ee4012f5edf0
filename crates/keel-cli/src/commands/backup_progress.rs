//! The progress display of `keel backup` and `keel restore`: `indicatif` bars per collection
//! and overall (documents, bytes, docs/s, ETA) when stderr is a terminal, plain lines otherwise
//! (a line per collection at most every 2 s and when it is done), from keel-backup's
//! [`keel_backup::Progress`] events. Everything goes to stderr; stdout keeps the result sentence.

use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressStyle};
use keel_backup::Progress;
use tokio::sync::mpsc;

/// How many events may wait for the display before the work waits for it.
const CHANNEL: usize = 64;
/// The shortest gap between two plain lines of one collection.
const PLAIN_EVERY: Duration = Duration::from_secs(2);

/// A running display: give [`Display::sender`] to the library, then [`Display::finish`].
pub(crate) struct Display {
    sender: mpsc::Sender<Progress>,
    task: tokio::task::JoinHandle<()>,
}

impl Display {
    /// Starts a display; `verb` is "backed up" or "restored".
    pub(crate) fn start(verb: &'static str) -> Self {
        let (sender, receiver) = mpsc::channel(CHANNEL);
        let tty = std::io::stderr().is_terminal();
        let task = tokio::spawn(async move {
            if tty {
                bars(receiver).await;
            } else {
                plain(receiver, verb).await;
            }
        });
        Self { sender, task }
    }

    /// The sender for the library's `.progress(..)`.
    pub(crate) fn sender(&self) -> mpsc::Sender<Progress> {
        self.sender.clone()
    }

    /// Waits until every event sent so far is shown (the library has dropped its sender).
    pub(crate) async fn finish(self) {
        drop(self.sender);
        let _ = self.task.await;
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "rate",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0} docs/s", state.per_sec());
            },
        )
        .progress_chars("=> ")
}

async fn bars(mut receiver: mpsc::Receiver<Progress>) {
    let multi = MultiProgress::new();
    let overall = multi.add(ProgressBar::new(0));
    overall.set_style(style(
        "{prefix:>28} [{bar:30}] {pos}/{len} docs {msg} {rate} ETA {eta}",
    ));
    overall.set_prefix("overall");
    let mut expected: HashMap<String, u64> = HashMap::new();
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    let mut done: HashMap<String, (u64, u64)> = HashMap::new();
    while let Some(event) = receiver.recv().await {
        match event {
            Progress::Planned { namespaces } => {
                overall.set_length(namespaces.iter().map(|(_, n)| n).sum());
                expected = namespaces.into_iter().collect();
            }
            Progress::Namespace {
                namespace,
                documents,
                bytes,
                done: finished,
            } => {
                let bar = bars.entry(namespace.clone()).or_insert_with(|| {
                    let bar = multi.add(ProgressBar::new(
                        expected.get(&namespace).copied().unwrap_or(0),
                    ));
                    bar.set_style(style(
                        "{prefix:>28} [{bar:30}] {pos}/{len} docs {msg} {rate} ETA {eta}",
                    ));
                    bar.set_prefix(short(&namespace));
                    bar
                });
                if documents > bar.length().unwrap_or(0) {
                    bar.set_length(documents);
                }
                bar.set_position(documents);
                bar.set_message(HumanBytes(bytes).to_string());
                if finished {
                    bar.finish();
                }
                done.insert(namespace, (documents, bytes));
                let (docs, total_bytes) = done
                    .values()
                    .fold((0, 0), |(d, b), (d2, b2)| (d + d2, b + b2));
                if docs > overall.length().unwrap_or(0) {
                    overall.set_length(docs);
                }
                overall.set_position(docs);
                overall.set_message(HumanBytes(total_bytes).to_string());
            }
            Progress::Changes { count, done } => {
                let state = if done { "captured" } else { "so far" };
                overall.println(format!("changes during the run: {count} {state}"));
            }
        }
    }
    overall.finish();
}

async fn plain(mut receiver: mpsc::Receiver<Progress>, verb: &str) {
    let start = Instant::now();
    let mut last: HashMap<String, Instant> = HashMap::new();
    let mut expected: HashMap<String, u64> = HashMap::new();
    while let Some(event) = receiver.recv().await {
        match event {
            Progress::Planned { namespaces } => {
                let total: u64 = namespaces.iter().map(|(_, n)| n).sum();
                eprintln!("{} namespaces, about {total} documents", namespaces.len());
                expected = namespaces.into_iter().collect();
            }
            Progress::Namespace {
                namespace,
                documents,
                bytes,
                done,
            } => {
                let due = last
                    .get(&namespace)
                    .is_none_or(|at| at.elapsed() >= PLAIN_EVERY);
                if done {
                    eprintln!(
                        "{namespace}: {documents} documents {verb} ({}).",
                        HumanBytes(bytes)
                    );
                } else if due {
                    let of = expected.get(&namespace).copied().unwrap_or(0);
                    let rate = documents as f64 / start.elapsed().as_secs_f64().max(0.001);
                    eprintln!(
                        "{namespace}: {documents}/{of} documents, {}, {rate:.0} docs/s",
                        HumanBytes(bytes)
                    );
                    last.insert(namespace, Instant::now());
                }
            }
            Progress::Changes { count, done: true } => {
                eprintln!("{count} changes made during the run captured or replayed.");
            }
            Progress::Changes { .. } => {}
        }
    }
}

/// A namespace shortened to fit the bar's label.
fn short(namespace: &str) -> String {
    if namespace.chars().count() <= 28 {
        namespace.to_owned()
    } else {
        let tail: String = namespace
            .chars()
            .rev()
            .take(27)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("…{tail}")
    }
}
