//! Step 9, `pool` (no network needed): the pool and timeout settings against the profile and
//! what the server told, with keel-config's lints.

use keel_config::lints::{self, Deployment};
use mongodb::bson::{Bson, doc};

use super::super::Check;
use super::super::advice::Finding;
use super::Diagnosis;

/// Step 9 (no network needed): the pool and timeout settings against the profile.
pub(crate) async fn pool(diagnosis: &Diagnosis) -> Check {
    let config = &diagnosis.loaded.config;
    let explain = config.explain();
    let shown = |field: &str| {
        explain.row(field).map_or_else(String::new, |row| {
            format!("{field} {} ({})", row.value(), row.source())
        })
    };
    let summary = [
        shown("pool.max_size"),
        shown("pool.min_size"),
        shown("timeouts.checkout_wait"),
        shown("timeouts.server_selection"),
    ]
    .join(", ");
    let local = !diagnosis.targets.is_empty()
        && diagnosis
            .targets
            .iter()
            .flat_map(|t| &t.addrs)
            .all(|addr| addr.ip().is_loopback());
    let mut notes = Vec::new();
    let mut available = None;
    if let Some(client) = &diagnosis.direct {
        match diagnosis.command(client, doc! { "serverStatus": 1 }).await {
            Ok(status) => {
                available = status
                    .get_document("connections")
                    .ok()
                    .and_then(|c| c.get("available"))
                    .and_then(as_i64);
            }
            Err(_) => notes.push(
                "the server's connection limit could not be read (serverStatus needs the \
                 clusterMonitor role)"
                    .to_owned(),
            ),
        }
    }
    let deployment = Deployment {
        local,
        round_trip: diagnosis.ping,
        available_connections: available,
    };
    let lints = lints::lint(config, &deployment);
    if let Some(available) = available
        && !lints.iter().any(|lint| lint.field == "pool.max_size")
    {
        notes.push(format!("the server has {available} connections available"));
    }
    let findings: Vec<Finding> = lints
        .into_iter()
        .map(|lint| Finding::new(lint.problem, lint.fix))
        .collect();
    let mut check = match findings.first() {
        None => Check::pass(
            "pool",
            format!("{summary}: suit the {} profile", config.profile.as_str()),
        ),
        Some(first) => {
            let mut check = Check::warn("pool", first.clone()).note(summary);
            for more in &findings[1..] {
                check = check
                    .note(format!("also: {}", more.problem))
                    .note(format!("fix: {}", more.fix));
            }
            check
        }
    };
    for note in notes {
        check = check.note(note);
    }
    check
}

fn as_i64(value: &Bson) -> Option<i64> {
    match value {
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Int64(n) => Some(*n),
        #[allow(clippy::cast_possible_truncation)]
        Bson::Double(n) => Some(*n as i64),
        _ => None,
    }
}
