//! The demo's terminal output: permanent event lines, and one live status line that is redrawn
//! in place on a terminal and printed as a plain line every few seconds otherwise.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::lock;

/// Erases the current terminal line and returns the cursor to its start.
const CLEAR_LINE: &str = "\r\x1b[2K";

/// Where the demo writes. Shared by the status task, the fault runner and the watchers.
pub(crate) struct Console {
    tty: bool,
    started: Instant,
    /// The status line currently drawn (terminal only), redrawn under each event line.
    drawn: Mutex<Option<String>>,
}

impl Console {
    /// A console on standard output; `started` is time zero for event timestamps.
    pub(crate) fn new(started: Instant) -> Self {
        Self {
            tty: std::io::stdout().is_terminal(),
            started,
            drawn: Mutex::new(None),
        }
    }

    /// Whether standard output is a terminal (the status line is redrawn in place).
    pub(crate) fn is_tty(&self) -> bool {
        self.tty
    }

    /// Time since the start of the run.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Prints a permanent line (above the status line on a terminal).
    pub(crate) fn line(&self, text: &str) {
        let drawn = lock(&self.drawn);
        let mut out = std::io::stdout().lock();
        // Write errors (a closed pipe) must not stop the demo: its exit code still tells.
        if self.tty {
            let _ = write!(
                out,
                "{CLEAR_LINE}{text}\n{}",
                drawn.as_deref().unwrap_or("")
            );
        } else {
            let _ = writeln!(out, "{text}");
        }
        let _ = out.flush();
    }

    /// Prints an event of the run, stamped with the time since the start.
    pub(crate) fn event(&self, text: &str) {
        let at = self.elapsed().as_secs_f64();
        self.line(&format!("  {at:6.1}s  {text}"));
    }

    /// Shows the live status: redrawn in place on a terminal, a plain line otherwise.
    pub(crate) fn status(&self, text: String) {
        if !self.tty {
            self.line(&text);
            return;
        }
        let mut drawn = lock(&self.drawn);
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "{CLEAR_LINE}{text}");
        let _ = out.flush();
        *drawn = Some(text);
    }

    /// Removes the status line (before the final report).
    pub(crate) fn clear_status(&self) {
        let mut drawn = lock(&self.drawn);
        if self.tty && drawn.take().is_some() {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "{CLEAR_LINE}");
            let _ = out.flush();
        }
    }
}

/// A progress bar of `width` cells for `done` out of `total`.
pub(crate) fn bar(done: Duration, total: Duration, width: usize) -> String {
    let fraction = if total.is_zero() {
        1.0
    } else {
        (done.as_secs_f64() / total.as_secs_f64()).clamp(0.0, 1.0)
    };
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let filled = ((fraction * width as f64).round() as usize).min(width);
    format!("{}{}", "█".repeat(filled), "░".repeat(width - filled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_in_proportion() {
        let total = Duration::from_secs(10);
        assert_eq!(bar(Duration::ZERO, total, 4), "░░░░");
        assert_eq!(bar(Duration::from_secs(5), total, 4), "██░░");
        assert_eq!(bar(Duration::from_secs(99), total, 4), "████");
        assert_eq!(bar(Duration::ZERO, Duration::ZERO, 2), "██");
    }
}
