//! Interleaved measurement of lookups: each round runs every variant once (starting at a
//! different one each round, so no variant always follows the same one), under one load (one
//! caller, or concurrent callers as a server's request handlers are), and records the time and
//! the client's CPU time per call. The figures are medians over rounds with their interquartile
//! range, and each variant's ratio to variant 0 (the raw driver) is taken round by round, so
//! both sides of a ratio saw the same moment of machine noise.

use std::future::Future;
use std::time::{Duration, Instant};

use super::cpu::thread_cpu;
use super::stats::{Micros, Ratio, Spread};

/// One way of looking a document up by `_id`, cheap to clone into a caller's task.
pub(crate) trait Lookup: Clone + Send + Sync + 'static {
    /// Looks up the document with `_id` `id` (in `0..100`), panicking if it is not found.
    fn find(&self, id: u32) -> impl Future<Output = ()> + Send;
}

/// How many callers call at once, and how many calls each makes per round.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Load {
    pub(crate) callers: u32,
    pub(crate) calls_per_caller: u32,
}

impl Load {
    /// The two loads every bench reports: one caller making `calls` calls one after the other,
    /// and 16 concurrent callers making `calls` calls between them.
    pub(crate) fn both(calls: u32) -> [Load; 2] {
        [
            Load {
                callers: 1,
                calls_per_caller: calls,
            },
            Load {
                callers: 16,
                calls_per_caller: calls / 16,
            },
        ]
    }

    /// `one caller` or `16 concurrent callers`.
    pub(crate) fn label(&self) -> String {
        match self.callers {
            1 => "one caller".to_owned(),
            n => format!("{n} concurrent callers"),
        }
    }

    fn calls(&self) -> u32 {
        self.callers * self.calls_per_caller
    }
}

/// The time and the client's CPU time of one call, averaged over a round.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PerCall {
    pub(crate) wall: Duration,
    pub(crate) cpu: Option<Duration>,
}

/// Runs one round of `load` through `lookup`. The callers run as tasks of the current
/// (current-thread) runtime, so this thread's CPU time covers all of them and the driver's
/// connection tasks.
pub(crate) async fn per_call<L: Lookup>(lookup: &L, load: Load) -> PerCall {
    let (started, cpu_started) = (Instant::now(), thread_cpu());
    if load.callers == 1 {
        for i in 0..load.calls_per_caller {
            lookup.find(i % 100).await;
        }
    } else {
        let mut tasks = tokio::task::JoinSet::new();
        for caller in 0..load.callers {
            let lookup = lookup.clone();
            tasks.spawn(async move {
                for i in 0..load.calls_per_caller {
                    lookup.find((caller + i) % 100).await;
                }
            });
        }
        tasks.join_all().await;
    }
    let cpu = match (cpu_started, thread_cpu()) {
        (Some(before), Some(after)) => Some((after - before) / load.calls()),
        _ => None,
    };
    PerCall {
        wall: started.elapsed() / load.calls(),
        cpu,
    }
}

/// The rounds of every variant under one load.
pub(crate) struct Rounds {
    names: Vec<&'static str>,
    load: Load,
    rounds: usize,
    /// `samples[variant][round]`; empty for a variant left out with `only`.
    samples: Vec<Vec<PerCall>>,
}

/// Runs `rounds` interleaved rounds (after one warm-up round) of `load` through every variant
/// (or only variant `only`).
pub(crate) async fn compare<L: Lookup>(
    variants: &[(&'static str, L)],
    load: Load,
    rounds: usize,
    only: Option<usize>,
) -> Rounds {
    let mut samples = vec![Vec::new(); variants.len()];
    for round in 0..=rounds {
        for step in 0..variants.len() {
            let variant = (step + round) % variants.len();
            if only.is_some_and(|only| only != variant) {
                continue;
            }
            let took = per_call(&variants[variant].1, load).await;
            // Round 0 warms every path up.
            if round > 0 {
                samples[variant].push(took);
            }
        }
    }
    Rounds {
        names: variants.iter().map(|(name, _)| *name).collect(),
        load,
        rounds,
        samples,
    }
}

impl Rounds {
    /// Prints a table: per variant the time and CPU per call, and against variant 0 the
    /// throughput ratio (its time over this one's) and the CPU ratio (this one's CPU over its).
    pub(crate) fn print(&self, cpu_label: &str) {
        println!(
            "{}, {} interleaved rounds of {} calls; median [interquartile range]:",
            self.load.label(),
            self.rounds,
            self.load.calls()
        );
        println!(
            "  {:<24} {:<26} {:<26} {:<22} CPU this/raw",
            "path", "time per call", cpu_label, "throughput this/raw"
        );
        let micros = |f: fn(&PerCall) -> Option<Duration>, samples: &[PerCall]| {
            Spread::of(samples.iter().filter_map(f).map(|d| d.as_secs_f64() * 1e6))
        };
        let base = &self.samples[0];
        for (name, samples) in self.names.iter().zip(&self.samples) {
            if samples.is_empty() {
                continue;
            }
            let wall = Micros(micros(|s| Some(s.wall), samples)).to_string();
            let cpu = Micros(micros(|s| s.cpu, samples)).to_string();
            let (throughput, cpu_ratio) = if std::ptr::eq(samples, base) || base.is_empty() {
                (String::new(), String::new())
            } else {
                let pairs = || base.iter().zip(samples);
                let throughput =
                    Spread::of(pairs().map(|(b, s)| b.wall.as_secs_f64() / s.wall.as_secs_f64()));
                let cpu = Spread::of(
                    pairs().filter_map(|(b, s)| Some(s.cpu?.as_secs_f64() / b.cpu?.as_secs_f64())),
                );
                (Ratio(throughput).to_string(), Ratio(cpu).to_string())
            };
            println!("  {name:<24} {wall:<26} {cpu:<26} {throughput:<22} {cpu_ratio}");
        }
    }
}
