//! The progress display of `keel backup` and `keel restore`: `indicatif` bars per collection
//! and overall (documents, bytes, docs/s, ETA) when stderr is a terminal, plain lines otherwise
//! (a line per collection at most every 2 s and when it is done), from keel-backup's
//! [`keel_backup::Progress`] events. Everything goes to stderr; stdout keeps the result sentence.

use std::collections::HashMap;
use std::io::{IsTerminal as _, Write};
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use keel_backup::Progress;
use tokio::sync::mpsc;

/// How many events may wait for the display before the work waits for it.
const CHANNEL: usize = 64;
/// The shortest gap between two plain lines of one collection.
const PLAIN_EVERY: Duration = Duration::from_secs(2);

/// Where the display draws.
enum Output {
    /// `indicatif` bars (stderr on a terminal; an in-memory terminal in tests).
    Bars(ProgressDrawTarget),
    /// Plain lines.
    Plain(Box<dyn Write + Send>),
}

/// A running display: give [`Display::sender`] to the library, then [`Display::finish`].
pub(crate) struct Display {
    sender: mpsc::Sender<Progress>,
    task: tokio::task::JoinHandle<()>,
}

impl Display {
    /// Starts a display on stderr: bars on a terminal, plain lines otherwise; `verb` is
    /// "backed up" or "restored".
    pub(crate) fn start(verb: &'static str) -> Self {
        let output = if std::io::stderr().is_terminal() {
            Output::Bars(ProgressDrawTarget::stderr())
        } else {
            Output::Plain(Box::new(std::io::stderr()))
        };
        Self::start_on(output, verb)
    }

    /// Starts a display drawing to `output`.
    fn start_on(output: Output, verb: &'static str) -> Self {
        let (sender, receiver) = mpsc::channel(CHANNEL);
        let task = tokio::spawn(async move {
            match output {
                Output::Bars(target) => bars(receiver, target).await,
                Output::Plain(out) => plain(receiver, verb, out).await,
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

async fn bars(mut receiver: mpsc::Receiver<Progress>, target: ProgressDrawTarget) {
    let multi = MultiProgress::with_draw_target(target);
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

async fn plain(mut receiver: mpsc::Receiver<Progress>, verb: &str, mut out: Box<dyn Write + Send>) {
    let start = Instant::now();
    let mut last: HashMap<String, Instant> = HashMap::new();
    let mut expected: HashMap<String, u64> = HashMap::new();
    while let Some(event) = receiver.recv().await {
        match event {
            Progress::Planned { namespaces } => {
                let total: u64 = namespaces.iter().map(|(_, n)| n).sum();
                let _ = writeln!(
                    out,
                    "{} namespaces, about {total} documents",
                    namespaces.len()
                );
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
                    let _ = writeln!(
                        out,
                        "{namespace}: {documents} documents {verb} ({}).",
                        HumanBytes(bytes)
                    );
                } else if due {
                    let of = expected.get(&namespace).copied().unwrap_or(0);
                    let rate = documents as f64 / start.elapsed().as_secs_f64().max(0.001);
                    let _ = writeln!(
                        out,
                        "{namespace}: {documents}/{of} documents, {}, {rate:.0} docs/s",
                        HumanBytes(bytes)
                    );
                    last.insert(namespace, Instant::now());
                }
            }
            Progress::Changes { count, done: true } => {
                let _ = writeln!(
                    out,
                    "{count} changes made during the run captured or replayed."
                );
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A terminal in memory: every line indicatif writes, in order (cursor moves and clears
    /// are how it redraws; only the text matters here).
    #[derive(Debug, Default, Clone)]
    struct Screen(Arc<Mutex<Vec<String>>>);

    impl Screen {
        fn lines(&self) -> Vec<String> {
            self.0.lock().unwrap().clone()
        }
    }

    impl indicatif::TermLike for Screen {
        fn width(&self) -> u16 {
            200
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().extend(s.lines().map(str::to_owned));
            Ok(())
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.write_line(s)
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Plain lines in memory.
    #[derive(Debug, Default, Clone)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A backup of two collections: planned, half of `a.x`, `a.x` done, `a.y` done, changes.
    async fn run(display: Display) {
        let tx = display.sender();
        let events = [
            Progress::Planned {
                namespaces: vec![("a.x".into(), 100), ("a.y".into(), 50)],
            },
            Progress::Namespace {
                namespace: "a.x".into(),
                documents: 50,
                bytes: 5_000,
                done: false,
            },
            Progress::Namespace {
                namespace: "a.x".into(),
                documents: 100,
                bytes: 10_000,
                done: true,
            },
            Progress::Namespace {
                namespace: "a.y".into(),
                documents: 50,
                bytes: 2_048,
                done: true,
            },
            Progress::Changes {
                count: 3,
                done: true,
            },
        ];
        for event in events {
            tx.send(event).await.unwrap();
        }
        drop(tx);
        display.finish().await;
    }

    /// The last line drawn that starts (after the label's padding) with `label`.
    fn last_bar<'a>(lines: &'a [String], label: &str) -> &'a str {
        lines
            .iter()
            .rev()
            .find(|l| l.trim_start().starts_with(&format!("{label} [")))
            .unwrap_or_else(|| panic!("no bar for {label} in {lines:#?}"))
    }

    #[tokio::test]
    async fn a_terminal_gets_a_bar_per_collection_and_one_overall() {
        let screen = Screen::default();
        let target = ProgressDrawTarget::term_like(Box::new(screen.clone()));
        run(Display::start_on(Output::Bars(target), "backed up")).await;
        let lines = screen.lines();
        let x = last_bar(&lines, "a.x");
        assert!(x.contains("[==============================]"), "{x}");
        assert!(x.contains("100/100 docs 9.77 KiB"), "{x}");
        assert!(x.contains(" docs/s ETA "), "{x}");
        let y = last_bar(&lines, "a.y");
        assert!(y.contains("50/50 docs 2.00 KiB"), "{y}");
        let overall = last_bar(&lines, "overall");
        assert!(overall.contains("150/150 docs 11.77 KiB"), "{overall}");
        assert!(overall.contains(" docs/s ETA "), "{overall}");
        // Half-way, the collection's bar was half full and the overall one a third.
        assert!(
            lines
                .iter()
                .any(|l| l.contains("a.x [===============>") && l.contains("50/100 docs")),
            "{lines:#?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("changes during the run: 3 captured")),
            "{lines:#?}"
        );
    }

    #[tokio::test]
    async fn elsewhere_plain_lines_say_the_same() {
        let out = Lines::default();
        run(Display::start_on(
            Output::Plain(Box::new(out.clone())),
            "backed up",
        ))
        .await;
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert_eq!(lines[0], "2 namespaces, about 150 documents");
        assert!(
            lines[1].starts_with("a.x: 50/100 documents, 4.88 KiB, ")
                && lines[1].ends_with(" docs/s"),
            "{}",
            lines[1]
        );
        assert_eq!(lines[2], "a.x: 100 documents backed up (9.77 KiB).");
        assert_eq!(lines[3], "a.y: 50 documents backed up (2.00 KiB).");
        assert_eq!(
            lines[4],
            "3 changes made during the run captured or replayed."
        );
    }
}
