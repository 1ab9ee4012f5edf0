//! The cluster clock: the `Timestamp` each write gets in a replica set, reported as
//! `operationTime`/`$clusterTime` and as change events' `clusterTime`.

use std::sync::atomic::{AtomicU64, Ordering};

use bson::Timestamp;

/// A hybrid logical clock like mongod's: seconds of wall time, plus an increment that orders
/// events within one second. Lock-free so every reply can read it.
#[derive(Debug)]
pub(crate) struct ClusterClock {
    packed: AtomicU64,
}

fn pack(ts: Timestamp) -> u64 {
    (u64::from(ts.time) << 32) | u64::from(ts.increment)
}

fn unpack(v: u64) -> Timestamp {
    Timestamp {
        time: (v >> 32) as u32,
        increment: (v & 0xFFFF_FFFF) as u32,
    }
}

fn wall_secs() -> u32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    u32::try_from(secs).unwrap_or(u32::MAX)
}

impl Default for ClusterClock {
    fn default() -> Self {
        // A replica set always has an initial oplog entry, so its clock never reads zero.
        Self {
            packed: AtomicU64::new(pack(Timestamp {
                time: wall_secs(),
                increment: 1,
            })),
        }
    }
}

impl ClusterClock {
    /// The latest timestamp handed out.
    pub(crate) fn now(&self) -> Timestamp {
        unpack(self.packed.load(Ordering::Acquire))
    }

    /// Moves the clock to at least `ts`.
    pub(crate) fn advance_to(&self, ts: Timestamp) {
        self.packed.fetch_max(pack(ts), Ordering::AcqRel);
    }

    /// The end of the current wall-clock second: later than any timestamp an earlier process
    /// can have handed out (their seconds never run ahead of wall time).
    pub(crate) fn end_of_this_second() -> Timestamp {
        Timestamp {
            time: wall_secs(),
            increment: u32::MAX,
        }
    }

    /// A new timestamp, strictly greater than every earlier one.
    pub(crate) fn tick(&self) -> Timestamp {
        let wall = pack(Timestamp {
            time: wall_secs(),
            increment: 1,
        });
        let mut current = self.packed.load(Ordering::Acquire);
        loop {
            let next = wall.max(current + 1);
            match self.packed.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return unpack(next),
                Err(seen) => current = seen,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_strictly_increasing() {
        let clock = ClusterClock::default();
        let mut last = pack(clock.now());
        for _ in 0..1000 {
            let t = pack(clock.tick());
            assert!(t > last);
            last = t;
        }
        assert_eq!(pack(clock.now()), last);
    }
}
