//! `keel demo`: a workload through the full Keel stack while faults are injected on a schedule,
//! a live status line, and a final report proving every acknowledged write is in the database
//! exactly once.
//!
//! Without `--uri` it runs against an embedded keel-testkit replica set (three members), so it
//! needs nothing but the Rust toolchain. With `--uri` it runs the same workload against a real
//! deployment, in a database it creates and drops, and injects no faults there.

mod console;
mod deployment;
mod faults;
mod report;
mod retries;
mod stats;
mod stream;
mod sync;
mod workload;

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use keel_config::{KeelConfig, LoadOptions, Profile};
use keel_core::redact::redact_uri;
use keel_health::dashboard::{Dashboard, DashboardConfig};
use mongokeel::{ConnectionState, Keel};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use console::Console;
use deployment::Deployment;
use faults::{Fault, FaultKind};
use report::Report;
use stats::{Latency, Stats, human};
use workload::Workload;

/// The longest run `--duration` accepts.
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// Settings the demo uses on top of the development profile, each with the reason, shown at
/// the start so what the demo shows can be reproduced in an application.
const DEMO_SETTINGS: &[(&str, &str, &str)] = &[
    (
        "app_name",
        "keel-demo",
        "names the demo's connections in server logs",
    ),
    (
        "heartbeat",
        "500ms",
        "notices the server's return within half a second",
    ),
    (
        "timeouts.connect",
        "2s",
        "a local server answers in milliseconds",
    ),
    (
        "timeouts.server_selection",
        "2s",
        "a call waits at most 2s for a server",
    ),
    (
        "timeouts.attempt",
        "3s",
        "a hung call (black hole) is cut after 3s and retried",
    ),
    (
        "timeouts.checkout_wait",
        "1s",
        "a call waits at most 1s for a pooled connection",
    ),
    (
        "timeouts.deadline",
        "15s",
        "a call gives up after 15s in all, retries included",
    ),
    (
        "breaker.open_wait",
        "2s",
        "an open breaker probes again after 2s",
    ),
];

/// `keel demo` arguments.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Run against this deployment instead of the embedded test server. The demo writes only to
    /// a database it creates (`keel_demo_<random>`) and drops it at the end, and injects no faults
    /// into a deployment it does not own. Credentials are never printed.
    #[arg(long, value_name = "URI")]
    uri: Option<String>,
    /// How long the workload runs: a whole number and a unit (ms, s, m, h), such as 20s or 2m.
    /// Faults are scaled down in proportion for runs shorter than a minute.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_run_duration)]
    duration: Duration,
    /// Seed for the workload's choices (which calls, which documents, what payloads); printed at
    /// the start so a run can be replayed [default: random].
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Calls per second, across all workers.
    #[arg(long, value_name = "N", default_value_t = 200,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    rate: u32,
    /// Workers making calls at the same time.
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=1_000))]
    workers: u32,
    /// With --uri, keep the demo's database instead of dropping it, to inspect it.
    #[arg(long, requires = "uri")]
    keep: bool,
}

fn parse_run_duration(text: &str) -> Result<Duration, String> {
    let duration = keel_config::parse_duration(text).map_err(|e| e.to_string())?;
    if duration.is_zero() {
        return Err("the duration must be longer than zero, such as \"20s\"".to_owned());
    }
    if duration > MAX_DURATION {
        return Err("the duration must be at most 24h".to_owned());
    }
    Ok(duration)
}

/// Counts of state changes seen during the run, for the report.
#[derive(Debug, Default)]
struct Transitions {
    reconnects: AtomicU64,
    breaker_opens: AtomicU64,
}

/// Runs the demo; the exit code is non-zero when an acknowledged write is missing.
pub(crate) async fn run(args: DemoArgs) -> Result<ExitCode, String> {
    let seed = args.seed.unwrap_or_else(rand::random);
    let deployment = match &args.uri {
        Some(uri) => Deployment::real(uri.clone(), rand::random()),
        None => Deployment::embedded(faults::election_timeout(args.duration)).await?,
    };
    let deployment = Arc::new(deployment);
    let faults = faults::schedule(args.duration, |kind| deployment.can_cause(kind));
    print_header(&args, seed, &deployment, &faults);

    let config = demo_config(&deployment.connection_string())?;
    let keel = Keel::builder(config).build().await.map_err(|error| {
        let uri = redact_uri(&deployment.connection_string());
        crate::failure::sentence(&format!("cannot connect to {uri}"), &uri, &error)
    })?;
    retries::watch(&keel);

    let dashboard = serve_dashboard(&keel).await;
    match &dashboard {
        Ok(serving) => println!(
            "  dashboard {} (keel-health's admin page, live while the demo runs)\n",
            serving.url()
        ),
        Err(reason) => println!("  dashboard not served: {reason}\n"),
    }

    let started = Instant::now();
    let console = Arc::new(Console::new(started));
    let stats = Arc::new(Stats::default());
    let transitions = Arc::new(Transitions::default());
    let current_fault = Arc::new(Mutex::new(None::<FaultKind>));
    let workload = Arc::new(Workload::new(
        keel.clone(),
        deployment.database(),
        Arc::clone(&stats),
    ));
    let (stop, stopped) = watch::channel(false);
    let stream = stream::StreamWatch::start(keel.clone(), deployment.database()).await;
    let sync_client = sync::SyncDemo::start(keel.clone(), deployment.database(), stopped.clone())?;

    let mut background: Vec<JoinHandle<()>> = Vec::new();
    background.push(tokio::spawn(watch_connection(
        keel.clone(),
        Arc::clone(&console),
        Arc::clone(&transitions),
    )));
    if let Some(breaker) = keel.breaker() {
        let mut states = breaker.subscribe();
        let (console, transitions) = (Arc::clone(&console), Arc::clone(&transitions));
        background.push(tokio::spawn(async move {
            while states.changed().await.is_ok() {
                let state = *states.borrow_and_update();
                let note = if state.is_open() {
                    transitions.breaker_opens.fetch_add(1, Ordering::Relaxed);
                    " — calls fail fast instead of piling up"
                } else {
                    ""
                };
                console.event(&format!("breaker → {}{note}", state.as_str()));
            }
        }));
    }
    let fault_runner = tokio::spawn(run_faults(
        Arc::clone(&deployment),
        faults.clone(),
        Arc::clone(&console),
        Arc::clone(&current_fault),
        started,
    ));
    background.push(tokio::spawn(show_status(
        Arc::clone(&console),
        Arc::clone(&stats),
        keel.clone(),
        args.duration,
        Arc::clone(&current_fault),
        Arc::clone(&stream),
    )));
    // Halfway through, the consumer crashes and restarts from its checkpoint file.
    let (crashing, crash_console) = (Arc::clone(&stream), Arc::clone(&console));
    background.push(tokio::spawn(async move {
        tokio::time::sleep(args.duration / 2).await;
        if let Some(what) = crashing.crash_and_restart().await {
            crash_console.event(&format!("⚡ {what}"));
        }
    }));
    background.push(tokio::spawn(stop_on_time_or_interrupt(
        stop,
        args.duration,
        Arc::clone(&console),
    )));

    workload.run(args.workers, args.rate, seed, stopped).await;
    let ran = console.elapsed();
    fault_runner.abort();
    let _ = fault_runner.await;
    for task in &background {
        task.abort();
    }
    console.clear_status();
    deployment.heal().await?;
    let sync = sync_client.finish().await?;

    let proof = workload
        .verify()
        .await
        .map_err(|error| format!("cannot read the collection back to check it: {error}."))?;
    let stream_proof = stream.finish(&workload.acknowledged_keys()).await;
    if deployment.is_real()
        && !args.keep
        && let Err(error) = workload.drop_database().await
    {
        console.line(&format!(
            "warning: could not drop the demo database {}: {error}",
            deployment.database()
        ));
    }
    let description = deployment.describe();
    let report = Report {
        ran,
        deployment: &description,
        seed,
        workers: args.workers,
        rate: args.rate,
        mix: workload.mix(),
        counts: stats.counts(),
        latency: stats.latency(),
        failures: stats.failures(),
        faults: &faults,
        reconnects: transitions.reconnects.load(Ordering::Relaxed),
        breaker_opens: transitions.breaker_opens.load(Ordering::Relaxed),
        proof,
        stream: Some(stream_proof),
        sync,
    };
    console.line(&report.render());
    keel.shutdown().await;
    match report.broken() {
        None => Ok(ExitCode::SUCCESS),
        Some(sentence) => Err(sentence),
    }
}

/// Where the dashboard listens first; another free port when it is taken.
const DASHBOARD_PORT: u16 = 9400;

/// Serves keel-health's dashboard over the facade's own health monitor (and its operation
/// statistics) on 127.0.0.1, port 9400 or a free one; it lives as long as the value returned.
async fn serve_dashboard(keel: &Keel) -> Result<keel_health::dashboard::ServingDashboard, String> {
    let mut serving = Err(String::new());
    for port in [DASHBOARD_PORT, 0] {
        let mut config = DashboardConfig::default();
        config.bind = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        serving = Dashboard::new(keel.health().clone(), config)
            .serve()
            .await
            .map_err(|error| error.to_string());
        if serving.is_ok() {
            break;
        }
    }
    serving
}

/// The development profile with the demo's settings, for `uri`.
fn demo_config(uri: &str) -> Result<KeelConfig, String> {
    let mut options = LoadOptions::new()
        .profile(Profile::Development)
        .set("uri", uri);
    for (path, value, _) in DEMO_SETTINGS {
        options = options.set(*path, *value);
    }
    // `ConfigErrors` never holds a secret, so its text is safe to print as is.
    KeelConfig::load(options).map_err(|errors| errors.to_string())
}

fn print_header(args: &DemoArgs, seed: u64, deployment: &Deployment, faults: &[Fault]) {
    println!(
        "keel demo: {} of reads and idempotent writes through Keel (retry, circuit breaker, \
         bounded waits), then a check that nothing acknowledged was lost",
        keel_config::format_duration(args.duration)
    );
    println!("  against   {}", deployment.describe());
    println!(
        "  workload  {} workers, {} calls/s, seed {seed} (replay with --seed {seed})",
        args.workers, args.rate
    );
    let settings: Vec<String> = DEMO_SETTINGS
        .iter()
        .map(|(path, value, _)| format!("{path}={value}"))
        .collect();
    println!("  settings  development profile, {}", settings.join(", "));
    if faults.is_empty() {
        println!(
            "  faults    none: a deployment Keel does not own is never disturbed (cause your own, \
             such as rs.stepDown(), and watch the status line)"
        );
    } else {
        let list: Vec<String> = faults
            .iter()
            .map(|f| format!("{} at {:.1}s", f.kind, f.at.as_secs_f64()))
            .collect();
        println!("  faults    {}", list.join(", "));
    }
}

/// Starts each fault at its time, and ends those that last.
async fn run_faults(
    deployment: Arc<Deployment>,
    faults: Vec<Fault>,
    console: Arc<Console>,
    current: Arc<Mutex<Option<FaultKind>>>,
    started: Instant,
) {
    for fault in faults {
        tokio::time::sleep_until(started + fault.at).await;
        let detail = match deployment.start_fault(fault.kind).await {
            Ok(detail) => detail,
            Err(error) => {
                console.event(&format!("fault skipped: {error}"));
                continue;
            }
        };
        if fault.lasts.is_zero() {
            console.event(&format!("⚡ {}: {detail}", fault.kind));
            continue;
        }
        console.event(&format!(
            "⚡ {} for {}: {detail}",
            fault.kind,
            human(fault.lasts)
        ));
        *lock(&current) = Some(fault.kind);
        tokio::time::sleep(fault.lasts).await;
        match deployment.end_fault(fault.kind).await {
            Ok(()) => console.event(&format!("✓ {} over", fault.kind)),
            Err(error) => console.event(&format!("cannot end the {}: {error}", fault.kind)),
        }
        *lock(&current) = None;
    }
}

/// How long a connection state must last to be printed: the driver's monitors can flip the
/// state several times within a fraction of a second, and the log should show what held.
const STATE_SETTLE: Duration = Duration::from_millis(300);

/// Prints every change of the connection state that lasts.
async fn watch_connection(keel: Keel, console: Arc<Console>, transitions: Arc<Transitions>) {
    let mut states = keel.subscribe();
    let mut shown = *states.borrow_and_update();
    while states.changed().await.is_ok() {
        tokio::time::sleep(STATE_SETTLE).await;
        let state = *states.borrow_and_update();
        if state == shown {
            continue;
        }
        shown = state;
        let note = match state {
            ConnectionState::Reconnecting => {
                transitions.reconnects.fetch_add(1, Ordering::Relaxed);
                " — new calls wait in a bounded queue instead of timing out one by one"
            }
            ConnectionState::Connected => " — calls flow again",
            _ => "",
        };
        console.event(&format!("connection → {state}{note}"));
    }
}

/// The live status line: every second on a terminal; otherwise every five seconds, or more
/// often in a short run so it shows at least four lines.
async fn show_status(
    console: Arc<Console>,
    stats: Arc<Stats>,
    keel: Keel,
    run: Duration,
    current_fault: Arc<Mutex<Option<FaultKind>>>,
    stream: Arc<stream::StreamWatch>,
) {
    let every: u64 = if console.is_tty() {
        1
    } else {
        (run.as_secs() / 4).clamp(1, 5)
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    // The last few seconds: totals for the rate, latencies for the p99.
    let mut totals: VecDeque<(Instant, u64)> = VecDeque::from([(Instant::now(), 0)]);
    let mut recent: VecDeque<Vec<u32>> = VecDeque::new();
    let mut seconds = 0_u64;
    loop {
        tick.tick().await;
        seconds += 1;
        let counts = stats.counts();
        totals.push_back((Instant::now(), counts.total()));
        recent.push_back(stats.take_recent());
        while totals.len() as u64 > every + 1 {
            totals.pop_front();
        }
        while recent.len() as u64 > every.max(3) {
            recent.pop_front();
        }
        if !seconds.is_multiple_of(every) {
            continue;
        }
        let (Some(first), Some(last)) = (totals.front(), totals.back()) else {
            continue;
        };
        let span = last.0.duration_since(first.0).as_secs_f64().max(0.001);
        #[allow(clippy::cast_precision_loss)]
        let rate = (last.1 - first.1) as f64 / span;
        let p99 = Latency::of(recent.iter().flatten().copied().collect()).p99;
        let breaker = keel.breaker().map_or("off", |b| b.state().as_str());
        let fault = lock(&current_fault)
            .map(|kind| format!(" │ fault: {kind}"))
            .unwrap_or_default();
        let elapsed = console.elapsed().min(run);
        let progress = format!(
            "{} {:>4}s/{}s",
            console::bar(elapsed, run, 20),
            elapsed.as_secs(),
            run.as_secs()
        );
        console.status(format!(
            "{progress} │ {rate:>5.0} ops/s │ retried {} │ failed fast {} │ breaker {breaker} │ connection {} │ p99 {} │ {}{fault}",
            counts.retried,
            counts.failed_fast,
            keel.state(),
            human(p99),
            stream.status(),
        ));
    }
}

/// Turns `stop` on when the run's time is up, or at the first Ctrl-C; a second Ctrl-C quits.
async fn stop_on_time_or_interrupt(
    stop: watch::Sender<bool>,
    run: Duration,
    console: Arc<Console>,
) {
    tokio::select! {
        () = tokio::time::sleep(run) => {}
        interrupted = tokio::signal::ctrl_c() => {
            if interrupted.is_ok() {
                console.event(
                    "interrupted: finishing the calls in flight, then checking what was written \
                     (Ctrl-C again to quit at once)",
                );
                tokio::spawn(async {
                    if tokio::signal::ctrl_c().await.is_ok() {
                        std::process::exit(130);
                    }
                });
            }
        }
    }
    stop.send_replace(true);
}

/// Locks a mutex, carrying on with the data if a thread panicked while holding it: what the
/// demo keeps behind a mutex (counters, ledger entries, the current fault, a status line) is
/// whole after every update, and a demo that stopped counting would hide the panic's effect.
/// Shared by the demo's modules.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit_and_a_sane_size() {
        assert_eq!(parse_run_duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_run_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_run_duration("5").is_err_and(|e| e.contains("no unit")));
        assert!(parse_run_duration("0s").is_err_and(|e| e.contains("longer than zero")));
        assert!(parse_run_duration("48h").is_err_and(|e| e.contains("at most 24h")));
    }

    #[test]
    fn the_demo_settings_load_on_top_of_the_development_profile() {
        let config = demo_config("mongodb://127.0.0.1:1/").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.profile, Profile::Development);
        assert_eq!(config.heartbeat, Duration::from_millis(500));
        assert_eq!(config.timeouts.attempt, Duration::from_secs(3));
        assert!(demo_config("not a uri").is_err());
    }
}
