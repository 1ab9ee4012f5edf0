//! Client instructions per `find_one`, raw driver vs Keel, counted by callgrind: the one CPU
//! figure of the client that does not drift with the load of a shared machine. The server runs
//! in another process (see `support::server`) and valgrind does not follow children, so only the
//! client is counted.
//!
//! `cargo bench -p mongokeel --bench instructions` re-runs itself under
//! `valgrind --tool=callgrind` once per variant and call count; the per-call figure is the
//! difference of two totals divided by the difference of calls, so start-up cancels out. The
//! profiles stay in `target/callgrind/` for `callgrind_annotate`. Without valgrind on the
//! machine it says how to install it and measures nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::path::PathBuf;
use std::process::Command;

use mongodb::bson::{Document, doc};
use mongokeel::{Keel, KeelConfig};

const FEW: u32 = 500;
const MANY: u32 = 2_500;

fn main() {
    match std::env::var("KEEL_BENCH_VARIANT") {
        Ok(variant) => support::client_runtime().block_on(calls(&variant)),
        Err(_) => compare(),
    }
}

/// The parent: every variant at two call counts under callgrind, then the per-call figures.
fn compare() {
    if Command::new("valgrind").arg("--version").output().is_err() {
        println!("valgrind is not installed (`apt-get install valgrind`): nothing measured");
        return;
    }
    let me = std::env::current_exe().unwrap();
    let dir = me.ancestors().nth(3).unwrap().join("callgrind");
    std::fs::create_dir_all(&dir).unwrap();
    let per_call = |variant: &str| {
        let few = collected(&me, &dir, variant, FEW);
        let many = collected(&me, &dir, variant, MANY);
        (many - few) as f64 / f64::from(MANY - FEW)
    };
    let raw = per_call("raw");
    let keel = per_call("keel");
    println!("client instructions per find_one (callgrind, server in another process):");
    println!("  raw driver      {raw:>9.0}");
    println!("  Keel full stack {keel:>9.0}  (+{:.0})", keel - raw);
    println!(
        "  Keel/raw        {:>9.3}  (goal for CPU per call: <= 1.03)",
        keel / raw
    );
    println!("profiles: {}", dir.display());
}

/// Instructions callgrind counted for one child run.
fn collected(me: &PathBuf, dir: &std::path::Path, variant: &str, calls: u32) -> u64 {
    let out = dir.join(format!("{variant}.{calls}.out"));
    let run = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(me)
        .env("KEEL_BENCH_VARIANT", variant)
        .env("KEEL_BENCH_CALLS", calls.to_string())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{variant} under callgrind failed: {run:?}"
    );
    let log = String::from_utf8_lossy(&run.stderr);
    log.lines()
        .find_map(|line| line.split("Collected :").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `Collected` line in callgrind's output:\n{log}"))
}

/// The child: `KEEL_BENCH_CALLS` lookups by `_id` through the raw driver or through Keel.
async fn calls(variant: &str) {
    let calls: u32 = std::env::var("KEEL_BENCH_CALLS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(FEW);
    let server = support::BenchServer::from_env().await;
    let raw = support::seeded_items(server.uri(), 100).await;
    match variant {
        "raw" => {
            for id in 0..calls {
                let found = raw.find_one(doc! { "_id": id % 100 }).await.unwrap();
                assert!(found.is_some());
            }
        }
        "keel" => {
            let keel = Keel::builder(KeelConfig::for_uri(server.uri()).unwrap())
                .build()
                .await
                .unwrap();
            let items = keel.collection::<Document>("bench", "items");
            for id in 0..calls {
                let found = items.find_one(doc! { "_id": id % 100 }).await.unwrap();
                assert!(found.is_some());
            }
        }
        other => panic!("KEEL_BENCH_VARIANT={other}: use `raw` or `keel`"),
    }
}
