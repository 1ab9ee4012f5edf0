//! Step 7, `ping`: the round-trip latency of five `ping`s.

use std::time::Duration;

use mongodb::bson::doc;
use tokio::time::Instant;

use super::super::Check;
use super::super::advice::{self, Finding};
use super::{Diagnosis, Target, millis};

impl Diagnosis {
    pub(super) async fn ping(&mut self) -> Check {
        let Some(client) = self.direct.clone() else {
            return Check::skip("ping", "no connection");
        };
        let label = self
            .first_reachable()
            .map_or_else(String::new, Target::label);
        let mut samples = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            if let Err(error) = self.command(&client, doc! { "ping": 1 }).await {
                return Check::fail(
                    "ping",
                    advice::driver_failed("ping", &label, &error, self.tls),
                );
            }
            samples.push(started.elapsed());
        }
        samples.sort_unstable();
        let (min, median, max) = (samples[0], samples[2], samples[4]);
        self.ping = Some(median);
        let summary = format!(
            "5 pings to {label}: median {} (min {}, max {})",
            millis(median),
            millis(min),
            millis(max)
        );
        if median > Duration::from_millis(50) {
            Check::warn(
                "ping",
                Finding {
                    problem: format!(
                        "{summary}: every call pays this round trip, several times for a query \
                         that fetches more batches."
                    ),
                    fix: "run the application in the same region (or zone) as the database."
                        .to_owned(),
                },
            )
        } else {
            Check::pass("ping", summary)
        }
    }
}
