//! The dashboard in a real browser: headless Chromium loads the page served against a live
//! keel-testkit stack, the test reads the rendered DOM (`--dump-dom`) and saves screenshots,
//! then stops the server and checks the page shows the outage.
//!
//! Needs Debian's `chromium` (`apt-get install -y chromium`); without it the test fails and
//! says so. Screenshots go to `$CARGO_TARGET_TMPDIR/keel-dashboard-*.png`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{path::Path, process::Stdio, time::Duration};

use keel_core::Operation;
use keel_health::{
    HealthConfig, HealthMonitor, HealthStatus, OperationMetricsLayer, OperationStats,
    dashboard::{Dashboard, DashboardConfig},
};
use keel_pool_core::{ManagedClient, ManagedSettings, MongoService};
use keel_testkit::TestServer;
use mongodb::{bson::doc, options::ClientOptions};
use tower::{ServiceBuilder, ServiceExt};

const CHROMIUM: &str = "/usr/bin/chromium";
// A bound on a hung browser, not a speed check: a cold chromium start on a 2-core machine that is
// also running the workspace's other test binaries has taken over 20 s.
const PATIENCE: Duration = Duration::from_secs(90);

/// Runs headless Chromium on `url`: returns the DOM after the page's scripts ran, and saves a
/// screenshot to `png`. An old screenshot is removed first, so a stale file cannot pass.
async fn browse(url: &str, png: &Path) -> String {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: this test drives a real browser. Install it with \
         `apt-get install -y chromium` (Debian's package), then run the test again."
    );
    let _ = std::fs::remove_file(png);
    let profile = tempdir("profile");
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        // Virtual time lets the page's fetch and first server-sent event complete before the
        // DOM is dumped, without a wall-clock wait.
        "--virtual-time-budget=3000",
    ];
    let run = |extra: Vec<String>| {
        let mut command = tokio::process::Command::new(CHROMIUM);
        command
            .args(common)
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        async move {
            let output = tokio::time::timeout(PATIENCE, command.output())
                .await
                .expect("chromium did not finish in time")
                .expect("chromium could not be started");
            assert!(
                output.status.success(),
                "chromium failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8(output.stdout).unwrap()
        }
    };
    // One run both dumps the DOM and takes the screenshot, of the same rendered page.
    let dom = run(vec![
        "--dump-dom".into(),
        format!("--screenshot={}", png.display()),
        "--window-size=1280,900".into(),
        url.into(),
    ])
    .await;
    assert!(png.exists(), "no screenshot at {}", png.display());
    dom
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("keel-dashboard-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The text of the element with this id, from the dumped DOM.
fn text_of<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the page:\n{dom}"));
    let open_end = start + dom[start..].find('>').unwrap() + 1;
    let close = open_end + dom[open_end..].find('<').unwrap();
    &dom[open_end..close]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_live_state_and_the_outage_in_a_real_browser() {
    let server = TestServer::start().await.unwrap();
    let mut options = ClientOptions::parse(server.uri()).await.unwrap();
    options.server_selection_timeout = Some(Duration::from_millis(500));
    options.heartbeat_freq = Some(Duration::from_millis(500));
    options.connect_timeout = Some(Duration::from_millis(500));
    options.max_pool_size = Some(8);
    let client = ManagedClient::connect_with(options, ManagedSettings::default())
        .await
        .unwrap();

    let operations = OperationStats::default();
    let mut config = HealthConfig::default();
    config.interval = Duration::from_millis(200);
    config.check_timeout = Duration::from_millis(500);
    config.pool_max_size = 8;
    let monitor = HealthMonitor::builder(client.clone(), config)
        .operations(operations.clone())
        .spawn()
        .unwrap();
    let health = monitor.handle();

    // Some traffic, so the operation numbers are not all zero.
    let service = ServiceBuilder::new()
        .layer(OperationMetricsLayer::new().with_stats(operations.clone()))
        .service(MongoService::new(client.clone()));
    for i in 0..20 {
        let insert = Operation::write("items.insert", true, move |c: mongodb::Client| async move {
            c.database("keel")
                .collection("items")
                .insert_one(doc! { "_id": i })
                .await
                .map(|_| ())
        });
        service.clone().oneshot(insert).await.unwrap();
    }

    let mut dashboard_config = DashboardConfig::default();
    dashboard_config.bind = "127.0.0.1:0".parse().unwrap();
    dashboard_config.resolution = Duration::from_millis(200);
    let dashboard = Dashboard::new(health.clone(), dashboard_config);
    let serving = dashboard.serve().await.unwrap();

    health
        .wait_for(|s| s == HealthStatus::Healthy, PATIENCE)
        .await
        .expect("never healthy");
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"));
    // `events=2`: the page closes its event stream after two updates, so the browser sees
    // the network go quiet and dumps the DOM.
    let url = format!("{}?events=2", serving.url());
    let dom = browse(&url, &shots.join("keel-dashboard-healthy.png")).await;
    assert!(
        dom.contains("data-loaded=\"1\""),
        "the snapshot was not rendered:\n{dom}"
    );
    assert!(
        dom.contains("data-live=\"1\""),
        "no server-sent event arrived:\n{dom}"
    );
    assert_eq!(text_of(&dom, "status"), "healthy");
    assert!(dom.contains("data-status=\"healthy\""));
    assert_eq!(text_of(&dom, "connection"), "connected");
    assert_eq!(text_of(&dom, "pool-max"), "8");
    assert_eq!(text_of(&dom, "ops-total"), "20");
    assert_ne!(text_of(&dom, "ping"), "—", "no check latency shown");
    assert!(dom.contains("<polyline"), "no chart drawn");

    server.stop().await;
    health
        .wait_for(|s| s == HealthStatus::Unhealthy, PATIENCE)
        .await
        .expect("never unhealthy after the server stopped");
    let dom = browse(&url, &shots.join("keel-dashboard-unhealthy.png")).await;
    assert_eq!(text_of(&dom, "status"), "unhealthy");
    assert!(dom.contains("data-status=\"unhealthy\""));
    assert_ne!(text_of(&dom, "connection"), "connected");
    assert!(
        dom.contains("data-code=\"connection\"") || dom.contains("data-code=\"checks_failing\"")
    );
    // The status timeline holds the healthy past and the unhealthy present.
    assert!(dom.contains("fill=\"#3fb950\"") && dom.contains("fill=\"#f85149\""));

    serving.shutdown();
    monitor.shutdown().await;
    client.shutdown().await;
}
