//! Forwarding one direction of a connection with latency, bandwidth, byte-budget and
//! black-hole faults applied.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::config::ProxyConfig;

/// How a direction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PumpEnd {
    /// The source closed; the write side was shut down.
    Eof,
    /// The connection must be reset (byte budget spent).
    Reset,
    /// An I/O error; the connection is closed.
    Error,
}

/// Reads chunks (stamped with their arrival time) and writes each one once its delay has
/// passed, so latency does not accumulate across chunks.
pub(super) async fn pump(
    mut from: ReadHalf<'_>,
    mut to: WriteHalf<'_>,
    config: &watch::Sender<ProxyConfig>,
    forwarded: &AtomicU64,
) -> PumpEnd {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(64);
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) => return PumpEnd::Eof,
                Ok(n) => {
                    if config.borrow().black_hole {
                        continue;
                    }
                    if tx.send((Instant::now(), buf[..n].to_vec())).await.is_err() {
                        return PumpEnd::Error;
                    }
                }
                Err(_) => return PumpEnd::Error,
            }
        }
    };
    let writer = async {
        while let Some((arrived, chunk)) = rx.recv().await {
            let cfg = config.borrow().clone();
            if cfg.black_hole {
                continue;
            }
            tokio::time::sleep_until(arrived + cfg.delay()).await;
            if let Some(end) = write_limited(&mut to, &chunk, &cfg, forwarded).await {
                return end;
            }
        }
        let _ = to.shutdown().await;
        PumpEnd::Eof
    };
    tokio::pin!(reader, writer);
    let mut read_end = None;
    loop {
        tokio::select! {
            end = &mut reader, if read_end.is_none() => {
                if end == PumpEnd::Error {
                    return end;
                }
                // The reader's sender is gone now; the writer drains what is queued, then ends.
                read_end = Some(end);
            }
            // A reset or error on the write side ends the direction without waiting for the
            // reader, which may be blocked on a peer with nothing more to say.
            end = &mut writer => return if end == PumpEnd::Eof { read_end.unwrap_or(end) } else { end },
        }
    }
}

/// Writes a chunk respecting the bandwidth limit and byte budget; `Some` ends the direction.
async fn write_limited(
    to: &mut WriteHalf<'_>,
    chunk: &[u8],
    cfg: &ProxyConfig,
    forwarded: &AtomicU64,
) -> Option<PumpEnd> {
    let mut chunk = chunk;
    let mut reset = false;
    if let Some(budget) = cfg.reset_after {
        let used = forwarded.load(Ordering::Relaxed);
        let left = usize::try_from(budget.saturating_sub(used)).unwrap_or(usize::MAX);
        if left <= chunk.len() {
            chunk = &chunk[..left];
            reset = true;
        }
    }
    // Send in slices of ~1/20 s worth of bytes so the rate is smooth, not bursty.
    let slice = cfg.bandwidth.map_or(chunk.len().max(1), |bw| {
        usize::try_from(bw / 20).unwrap_or(usize::MAX).max(1)
    });
    for piece in chunk.chunks(slice) {
        if to.write_all(piece).await.is_err() {
            return Some(PumpEnd::Error);
        }
        forwarded.fetch_add(piece.len() as u64, Ordering::Relaxed);
        if let Some(bw) = cfg.bandwidth {
            tokio::time::sleep(Duration::from_secs_f64(piece.len() as f64 / bw as f64)).await;
        }
    }
    if reset { Some(PumpEnd::Reset) } else { None }
}
