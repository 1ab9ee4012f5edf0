//! Step 3, `tcp`: open a TCP connection to each resolved host.

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::super::Check;
use super::super::advice::{self, Finding};
use super::Diagnosis;

impl Diagnosis {
    pub(super) async fn tcp(&mut self) -> Check {
        let mut reached = Vec::new();
        let mut failures = Vec::new();
        for target in &mut self.targets {
            let mut last = None;
            for addr in target.addrs.clone() {
                let started = Instant::now();
                match tokio::time::timeout(self.limit, TcpStream::connect(addr)).await {
                    Ok(Ok(_stream)) => {
                        target.connected = Some(addr);
                        reached.push(format!(
                            "{} ({} ms)",
                            target.label(),
                            started.elapsed().as_millis()
                        ));
                        break;
                    }
                    Ok(Err(error)) => last = Some(advice::tcp_failed(&target.label(), &error)),
                    Err(_) => last = Some(advice::tcp_timeout(&target.label(), Some(self.limit))),
                }
            }
            if target.connected.is_none()
                && let Some(finding) = last
            {
                failures.push(finding);
            }
        }
        match (reached.is_empty(), failures.first()) {
            (true, Some(first)) => Check::fail("tcp", first.clone()),
            (true, None) => Check::skip("tcp", "no host to connect to"),
            (false, Some(first)) => Check::warn(
                "tcp",
                Finding {
                    problem: format!(
                        "connected to {}, but not to every host: {}",
                        reached.join(", "),
                        first.problem
                    ),
                    fix: first.fix.clone(),
                },
            ),
            (false, None) => Check::pass("tcp", format!("connected to {}", reached.join(", "))),
        }
    }
}
