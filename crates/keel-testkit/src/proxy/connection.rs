//! One proxied connection: connect upstream, pump both directions, reset on demand.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use tokio::net::TcpStream;

use super::Inner;
use super::pump::{PumpEnd, pump};

pub(super) async fn run(inner: Arc<Inner>, mut client: TcpStream) {
    let mut resets = inner.resets.subscribe();
    resets.mark_unchanged();
    let Ok(mut upstream) = TcpStream::connect(inner.upstream).await else {
        // Upstream down: the client sees a reset, as it would from a dead server.
        let _ = client.set_zero_linger();
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let forwarded = AtomicU64::new(0);
    let reset = {
        let (client_read, client_write) = client.split();
        let (upstream_read, upstream_write) = upstream.split();
        let up = pump(client_read, upstream_write, &inner.config, &forwarded);
        let down = pump(upstream_read, client_write, &inner.config, &forwarded);
        tokio::pin!(up, down);
        let (mut up_done, mut down_done) = (false, false);
        loop {
            let end = tokio::select! {
                end = &mut up, if !up_done => { up_done = true; end }
                end = &mut down, if !down_done => { down_done = true; end }
                _ = resets.changed() => PumpEnd::Reset,
            };
            match end {
                PumpEnd::Reset => break true,
                PumpEnd::Error => break false,
                PumpEnd::Eof if up_done && down_done => break false,
                PumpEnd::Eof => {}
            }
        }
    };
    if reset {
        let _ = client.set_zero_linger();
        let _ = upstream.set_zero_linger();
    }
}
