//! The demo's final report: what ran, what happened, and the proof that nothing was lost.

use std::fmt::Write;
use std::time::Duration;

use super::faults::Fault;
use super::stats::{Counts, Latency, human};
use super::stream::StreamProof;
use super::sync::SyncProof;
use super::workload::{Call, Proof};

/// Everything the report shows.
pub(crate) struct Report<'a> {
    /// How long the workload ran.
    pub(crate) ran: Duration,
    /// One line saying where.
    pub(crate) deployment: &'a str,
    /// The workload's seed.
    pub(crate) seed: u64,
    /// Workers and total rate.
    pub(crate) workers: u32,
    /// Calls per second asked for.
    pub(crate) rate: u32,
    /// Calls made, by kind.
    pub(crate) mix: Vec<(Call, u64)>,
    /// Outcome counters.
    pub(crate) counts: Counts,
    /// Latency percentiles of the whole run.
    pub(crate) latency: Latency,
    /// Failures by class, most frequent first.
    pub(crate) failures: Vec<(String, u64)>,
    /// The faults injected.
    pub(crate) faults: &'a [Fault],
    /// How often the connection was lost, and the breaker opened.
    pub(crate) reconnects: u64,
    /// How often the breaker opened.
    pub(crate) breaker_opens: u64,
    /// The read-back check.
    pub(crate) proof: Proof,
    /// What the change-stream consumer saw, when one ran next to the workload.
    pub(crate) stream: Option<StreamProof>,
    /// The sync client's check: its acknowledged local writes on the server exactly once.
    pub(crate) sync: SyncProof,
}

impl Report<'_> {
    /// The report as text, ending with the machine-readable `result:` line and the verdict.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let c = &self.counts;
        let per_second = if self.ran.is_zero() {
            0.0
        } else {
            #[allow(clippy::cast_precision_loss)]
            let total = c.total() as f64;
            total / self.ran.as_secs_f64()
        };
        let _ = writeln!(out, "\nKeel demo report");
        let _ = writeln!(
            out,
            "  ran         {:.1}s against {}",
            self.ran.as_secs_f64(),
            self.deployment
        );
        let _ = writeln!(
            out,
            "  workload    seed {}, {} workers, {} calls/s asked, {per_second:.0} calls/s done",
            self.seed, self.workers, self.rate
        );
        let mut mix: Vec<_> = self.mix.iter().filter(|(_, n)| *n > 0).collect();
        mix.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        let mix: Vec<String> = mix
            .iter()
            .map(|(call, n)| format!("{} {}", call.label(), thousands(*n)))
            .collect();
        let _ = writeln!(
            out,
            "  calls       {} ({})",
            thousands(c.total()),
            mix.join(" · ")
        );
        let _ = writeln!(
            out,
            "  outcomes    {} ok · {} retried · {} failed fast · {} failed after trying",
            thousands(c.ok),
            thousands(c.retried),
            thousands(c.failed_fast),
            thousands(c.failed)
        );
        let _ = writeln!(
            out,
            "  latency     p50 {} · p99 {} · max {}",
            human(self.latency.p50),
            human(self.latency.p99),
            human(self.latency.max)
        );
        let faults = if self.faults.is_empty() {
            "none injected".to_owned()
        } else {
            self.faults
                .iter()
                .map(|f| {
                    let at = f.at.as_secs_f64();
                    if f.lasts.is_zero() {
                        format!("{} at {at:.1}s", f.kind)
                    } else {
                        format!("{} at {at:.1}s for {:.1}s", f.kind, f.lasts.as_secs_f64())
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(out, "  faults      {faults}");
        let _ = writeln!(
            out,
            "  recovery    connection lost {} · breaker opened {}",
            times(self.reconnects),
            times(self.breaker_opens)
        );
        if !self.failures.is_empty() {
            let failures: Vec<String> = self
                .failures
                .iter()
                .map(|(label, n)| format!("{label} {}", thousands(*n)))
                .collect();
            let _ = writeln!(out, "  failures    {}", failures.join(" · "));
        }
        self.render_proof(&mut out);
        out
    }

    fn render_proof(&self, out: &mut String) {
        let p = &self.proof;
        let c = &self.counts;
        let _ = writeln!(
            out,
            "\n  Every write the database acknowledged, checked by reading the collection back:"
        );
        let row = |out: &mut String, label: &str, n: u64, note: &str| {
            let _ = writeln!(out, "    {label:<13}{:>9}  {note}", thousands(n));
        };
        row(
            out,
            "acknowledged",
            p.acknowledged,
            "writes that returned Ok, each with its own client-chosen _id",
        );
        row(out, "found", p.found, "present exactly once");
        row(
            out,
            "missing",
            p.missing,
            "acknowledged but not in the database",
        );
        row(out, "duplicated", p.duplicated, "applied more than once");
        row(
            out,
            "unconfirmed",
            p.unconfirmed,
            &format!(
                "returned an error: {} had applied anyway (once each), {} had not",
                thousands(p.unconfirmed_landed),
                thousands(p.unconfirmed.saturating_sub(p.unconfirmed_landed))
            ),
        );
        if p.unexpected > 0 {
            row(out, "unexpected", p.unexpected, "documents no worker wrote");
        }
        if c.read_misses > 0 {
            row(
                out,
                "read misses",
                c.read_misses,
                "reads of an acknowledged write that found nothing",
            );
        }
        if let Some(stream) = &self.stream {
            stream.render(out);
        }
        let stream = self
            .stream
            .as_ref()
            .map(StreamProof::fields)
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "\nresult: acknowledged={} found={} missing={} duplicated={} unconfirmed={} failed_fast={} retried={} read_misses={} sync_acked={} sync_missing={} sync_duplicated={}{stream}",
            p.acknowledged,
            p.found,
            p.missing,
            p.duplicated,
            p.unconfirmed,
            c.failed_fast,
            c.retried,
            c.read_misses,
            self.sync.acked,
            self.sync.missing,
            self.sync.duplicated
        );
        if self.holds() {
            let _ = writeln!(
                out,
                "✓ Nothing was lost: all {} acknowledged writes are in the database exactly once{}.",
                thousands(p.acknowledged),
                if self.sync.acked > 0 {
                    format!(
                        ", and so are all {} writes the sync client made locally through the faults",
                        thousands(self.sync.acked)
                    )
                } else {
                    String::new()
                }
            );
        }
    }

    /// Whether the run kept its promise (the proof holds and every read found its write).
    pub(crate) fn holds(&self) -> bool {
        self.proof.holds()
            && self.counts.read_misses == 0
            && !self.stream.as_ref().is_some_and(StreamProof::broken)
            && self.sync.holds()
    }

    /// The one sentence that says what went wrong, when the promise was broken.
    pub(crate) fn broken(&self) -> Option<String> {
        if self.holds() {
            return None;
        }
        let p = &self.proof;
        if p.holds()
            && self.counts.read_misses == 0
            && let Some(stream) = &self.stream
        {
            return Some(match &stream.stopped {
                Some(reason) => format!(
                    "the change-stream check failed: the consumer stopped before the end ({reason})."
                ),
                None => format!(
                    "the change-stream check failed: the consumer never saw {} acknowledged writes.",
                    stream.missing
                ),
            });
        }
        Some(format!(
            "the check failed: {} acknowledged writes missing, {} duplicated, {} unexpected documents, {} reads that missed an acknowledged write, and {} of the sync client's acknowledged writes missing on the server, {} applied twice.",
            p.missing,
            p.duplicated,
            p.unexpected,
            self.counts.read_misses,
            self.sync.missing,
            self.sync.duplicated
        ))
    }
}

/// `12345` as `12,345`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `never`, `once`, `3 times`.
pub(crate) fn times(n: u64) -> String {
    match n {
        0 => "never".to_owned(),
        1 => "once".to_owned(),
        n => format!("{n} times"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(proof: Proof) -> Report<'static> {
        Report {
            ran: Duration::from_secs(10),
            deployment: "a test",
            seed: 1,
            workers: 2,
            rate: 10,
            mix: vec![(Call::Insert, 60), (Call::Read, 40)],
            counts: Counts {
                ok: 95,
                failed_fast: 4,
                failed: 1,
                retried: 7,
                read_misses: 0,
            },
            latency: Latency::default(),
            failures: vec![("unavailable (circuit_open)".to_owned(), 4)],
            faults: &[],
            reconnects: 1,
            breaker_opens: 0,
            proof,
            stream: None,
            sync: SyncProof::default(),
        }
    }

    #[test]
    fn a_clean_run_reports_zero_missing_and_says_so() {
        let report = report(Proof {
            acknowledged: 1234,
            found: 1234,
            unconfirmed: 5,
            unconfirmed_landed: 2,
            ..Proof::default()
        });
        let text = report.render();
        assert!(
            text.contains("result: acknowledged=1234 found=1234 missing=0 duplicated=0"),
            "{text}"
        );
        assert!(
            text.contains("✓ Nothing was lost: all 1,234 acknowledged writes"),
            "{text}"
        );
        assert!(
            text.contains("2 had applied anyway (once each), 3 had not"),
            "{text}"
        );
        assert!(text.contains("insert_one 60 · find_one 40"), "{text}");
        assert!(
            text.contains("connection lost once · breaker opened never"),
            "{text}"
        );
        assert_eq!(report.broken(), None);
    }

    #[test]
    fn a_missing_write_breaks_the_promise() {
        let report = report(Proof {
            acknowledged: 10,
            found: 9,
            missing: 1,
            ..Proof::default()
        });
        assert!(!report.render().contains('✓'));
        let sentence = report.broken().unwrap_or_default();
        assert!(
            sentence.starts_with("the check failed: 1 acknowledged writes missing"),
            "{sentence}"
        );
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn a_sync_write_missing_on_the_server_breaks_the_promise() {
        let mut report = report(Proof::default());
        report.sync = SyncProof {
            acked: 40,
            missing: 1,
            duplicated: 0,
        };
        let text = report.render();
        assert!(
            text.contains("sync_acked=40 sync_missing=1 sync_duplicated=0"),
            "{text}"
        );
        assert!(!text.contains("Nothing was lost"), "{text}");
        let sentence = report.broken().unwrap_or_default();
        assert!(sentence.contains("1 of the sync client's"), "{sentence}");
    }
}
