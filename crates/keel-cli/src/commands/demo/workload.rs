//! The demo's workload: workers doing reads and idempotent writes through Keel at a steady
//! pace, and the ledger of every write the database acknowledged, checked at the end.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keel_core::{Error, Operation};
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::FindOptions;
use mongokeel::{Collection, Keel};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use super::lock;
use super::stats::Stats;

/// The collection the demo writes to, in the demo's own database.
pub(crate) const COLLECTION: &str = "events";

/// The kinds of call the workers make, for the report's mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Call {
    /// `insert_one` with a client-chosen `_id`.
    Insert,
    /// `insert_many` of a small batch, each with a client-chosen `_id`.
    InsertBatch,
    /// An upsert by `_id` with `$set`/`$setOnInsert`, run through `Keel::run`.
    Upsert,
    /// `update_one` by `_id` with `$set` on an acknowledged document.
    Update,
    /// `find_one` by `_id` of an acknowledged document.
    Read,
    /// `count_documents` over the collection.
    Count,
}

impl Call {
    /// Every call, in report order.
    pub(crate) const ALL: [Call; 6] = [
        Call::Insert,
        Call::InsertBatch,
        Call::Upsert,
        Call::Update,
        Call::Read,
        Call::Count,
    ];

    /// How the report names it.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Call::Insert => "insert_one",
            Call::InsertBatch => "insert_many",
            Call::Upsert => "upsert",
            Call::Update => "update_one",
            Call::Read => "find_one",
            Call::Count => "count_documents",
        }
    }

    fn index(self) -> usize {
        match self {
            Call::Insert => 0,
            Call::InsertBatch => 1,
            Call::Upsert => 2,
            Call::Update => 3,
            Call::Read => 4,
            Call::Count => 5,
        }
    }

    /// The call a worker makes for a roll of 0..100 (the mix of a typical service: mostly
    /// reads and inserts, some updates).
    fn for_roll(roll: u32) -> Self {
        match roll {
            0..30 => Call::Insert,
            30..38 => Call::InsertBatch,
            38..50 => Call::Upsert,
            50..62 => Call::Update,
            62..99 => Call::Read,
            _ => Call::Count,
        }
    }
}

/// The writes whose outcome the caller knows.
#[derive(Debug, Default)]
struct Ledger {
    /// Keys of writes that returned `Ok`: each must be in the database exactly once.
    acknowledged: Vec<String>,
    /// Keys of writes that returned an error: they may or may not have applied.
    unconfirmed: Vec<String>,
}

/// Everything the workers share.
pub(crate) struct Workload {
    keel: Keel,
    events: Collection<Document>,
    stats: Arc<Stats>,
    ledger: Mutex<Ledger>,
    calls: [AtomicU64; 6],
}

/// What the final read-back found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Proof {
    /// Writes that returned `Ok` (one per document key).
    pub(crate) acknowledged: u64,
    /// Acknowledged keys found exactly once.
    pub(crate) found: u64,
    /// Acknowledged keys not found at all.
    pub(crate) missing: u64,
    /// Acknowledged keys found more than once.
    pub(crate) duplicated: u64,
    /// Writes that returned an error, so the caller could not know whether they applied.
    pub(crate) unconfirmed: u64,
    /// Of those, the ones that had applied (each found exactly once, or counted as duplicated).
    pub(crate) unconfirmed_landed: u64,
    /// Documents whose key no worker wrote (must be zero: the database is the demo's own).
    pub(crate) unexpected: u64,
}

impl Proof {
    /// Whether the run kept its promise: every acknowledged write present exactly once, no
    /// write applied twice, nothing from elsewhere.
    pub(crate) fn holds(&self) -> bool {
        self.missing == 0 && self.duplicated == 0 && self.unexpected == 0
    }
}

impl Workload {
    /// A workload writing to `database.events` through `keel`.
    pub(crate) fn new(keel: Keel, database: &str, stats: Arc<Stats>) -> Self {
        Self {
            events: keel.collection(database, COLLECTION),
            keel,
            stats,
            ledger: Mutex::new(Ledger::default()),
            calls: Default::default(),
        }
    }

    /// Runs `workers` workers at `rate` calls per second in total until `stop` turns true, and
    /// returns once every call in flight has finished (so the ledger is complete).
    pub(crate) async fn run(
        self: &Arc<Self>,
        workers: u32,
        rate: u32,
        seed: u64,
        stop: watch::Receiver<bool>,
    ) {
        let workers = workers.max(1);
        let period = Duration::from_secs_f64(f64::from(workers) / f64::from(rate.max(1)));
        let mut tasks = Vec::new();
        for id in 0..workers {
            let this = Arc::clone(self);
            // Each worker has its own stream of choices, so a seed replays the same workload.
            let rng =
                StdRng::seed_from_u64(seed ^ u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                this.worker(id, rng, period, stop).await;
            }));
        }
        for task in tasks {
            // A worker that panicked has still recorded every call it finished.
            let _ = task.await;
        }
    }

    async fn worker(
        &self,
        id: u32,
        mut rng: StdRng,
        period: Duration,
        mut stop: watch::Receiver<bool>,
    ) {
        // Workers start spread over one period instead of all at once.
        let offset = period.mul_f64(f64::from(id) / 64.0 % 1.0);
        let mut tick = tokio::time::interval_at(Instant::now() + offset, period);
        // After a call that took long (an outage), carry on at the normal pace, no burst.
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut seq = 0_u64;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                return;
            }
            seq += 1;
            let call = Call::for_roll(rng.random_range(0..100));
            self.step(call, &format!("w{id:02}-{seq:07}"), &mut rng)
                .await;
        }
    }

    async fn step(&self, call: Call, key: &str, rng: &mut StdRng) {
        let existing = self.pick_acknowledged(rng);
        // Reads and updates need an acknowledged document; before the first, insert instead.
        let call = match (call, &existing) {
            (Call::Update | Call::Read, None) => Call::Insert,
            _ => call,
        };
        self.calls[call.index()].fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        match call {
            Call::Insert => {
                let result = self
                    .events
                    .insert_one(document(key, "insert_one", rng))
                    .await;
                self.settle(&result, started, [key.to_owned()]);
            }
            Call::InsertBatch => {
                let size = rng.random_range(2..=5);
                let keys: Vec<String> = (0..size).map(|i| format!("{key}-{i}")).collect();
                let documents: Vec<Document> = keys
                    .iter()
                    .map(|k| document(k, "insert_many", rng))
                    .collect();
                let result = self.events.insert_many(documents).await;
                self.settle(&result, started, keys);
            }
            Call::Upsert => {
                let result = self.upsert(key, rng).await;
                self.settle(&result, started, [key.to_owned()]);
            }
            Call::Update => {
                let target = existing.unwrap_or_default();
                let result = self
                    .events
                    .update_one(
                        doc! { "_id": &target },
                        doc! { "$set": { "touched_by": key, "touched": true } },
                    )
                    .await;
                self.stats.record(&result, started.elapsed());
                if result.is_ok_and(|r| r.matched_count == 0) {
                    self.stats.read_miss();
                }
            }
            Call::Read => {
                let target = existing.unwrap_or_default();
                let result = self.events.find_one(doc! { "_id": &target }).await;
                self.stats.record(&result, started.elapsed());
                if matches!(result, Ok(None)) {
                    self.stats.read_miss();
                }
            }
            Call::Count => {
                let result = self.events.count_documents(doc! {}).await;
                self.stats.record(&result, started.elapsed());
            }
        }
    }

    /// An upsert by `_id`: idempotent (the same `$set` twice is the same state), so Keel retries
    /// it after an ambiguous failure. It shows `Keel::run` for calls the typed collection does
    /// not offer.
    async fn upsert(&self, key: &str, rng: &mut StdRng) -> Result<(), Error> {
        let filter = doc! { "_id": key };
        let update = doc! {
            "$set": { "payload": payload(rng), "via": "upsert" },
            "$setOnInsert": { "key": key },
        };
        let collection = self.events.clone();
        let operation = Operation::write(
            format!("{}.{COLLECTION}.upsert", collection.database_name()),
            true,
            move |client: mongodb::Client| {
                let target = client
                    .database(collection.database_name())
                    .collection::<Document>(collection.name());
                let (filter, update) = (filter.clone(), update.clone());
                async move {
                    target
                        .update_one(filter, update)
                        .upsert(true)
                        .await
                        .map(|_| ())
                }
            },
        );
        self.keel.run(operation).await
    }

    /// Records a write's outcome in the stats and its keys in the ledger.
    fn settle<T>(
        &self,
        result: &Result<T, Error>,
        started: Instant,
        keys: impl IntoIterator<Item = String>,
    ) {
        self.stats.record(result, started.elapsed());
        let mut ledger = lock(&self.ledger);
        let list = if result.is_ok() {
            &mut ledger.acknowledged
        } else {
            &mut ledger.unconfirmed
        };
        list.extend(keys);
    }

    fn pick_acknowledged(&self, rng: &mut StdRng) -> Option<String> {
        let ledger = lock(&self.ledger);
        let known = &ledger.acknowledged;
        (!known.is_empty()).then(|| known[rng.random_range(0..known.len())].clone())
    }

    /// The keys of every acknowledged write (for the change-stream check).
    pub(crate) fn acknowledged_keys(&self) -> Vec<String> {
        lock(&self.ledger).acknowledged.clone()
    }

    /// How many calls of each kind the workers made.
    pub(crate) fn mix(&self) -> Vec<(Call, u64)> {
        Call::ALL
            .iter()
            .map(|call| (*call, self.calls[call.index()].load(Ordering::Relaxed)))
            .collect()
    }

    /// Reads the whole collection back (through Keel, so a transient failure is retried) and
    /// checks every acknowledged key is there exactly once.
    pub(crate) async fn verify(&self) -> Result<Proof, Error> {
        let options = FindOptions::builder()
            .projection(doc! { "_id": 0, "key": 1 })
            .build();
        let documents = self.events.find_with_options(doc! {}, options).await?;
        let mut seen: HashMap<String, u64> = HashMap::new();
        let mut unexpected = 0;
        for document in &documents {
            match document.get("key") {
                Some(Bson::String(key)) => *seen.entry(key.clone()).or_default() += 1,
                _ => unexpected += 1,
            }
        }
        let ledger = lock(&self.ledger);
        let acknowledged: HashSet<&str> = ledger.acknowledged.iter().map(String::as_str).collect();
        let unconfirmed: HashSet<&str> = ledger.unconfirmed.iter().map(String::as_str).collect();
        let mut proof = Proof {
            acknowledged: count(acknowledged.len()),
            unconfirmed: count(unconfirmed.len()),
            unexpected,
            ..Proof::default()
        };
        for key in &acknowledged {
            match seen.get(*key).copied().unwrap_or(0) {
                0 => proof.missing += 1,
                1 => proof.found += 1,
                _ => proof.duplicated += 1,
            }
        }
        for (key, copies) in &seen {
            if acknowledged.contains(key.as_str()) {
                continue;
            }
            if unconfirmed.contains(key.as_str()) {
                proof.unconfirmed_landed += 1;
                if *copies > 1 {
                    proof.duplicated += 1;
                }
            } else {
                proof.unexpected += copies;
            }
        }
        Ok(proof)
    }

    /// Drops the demo's database (used on real deployments, which the demo does not own).
    pub(crate) async fn drop_database(&self) -> Result<(), Error> {
        let name = self.events.database_name().to_owned();
        let operation = Operation::command(
            "keel_demo.drop_database",
            true,
            move |client: mongodb::Client| {
                let database = client.database(&name);
                async move { database.drop().await }
            },
        );
        self.keel.run(operation).await
    }
}

/// A document with the client-chosen `_id` `key`; `key` is stored again as a field so the
/// final check counts copies of a write, whatever the `_id` index says.
fn document(key: &str, via: &str, rng: &mut StdRng) -> Document {
    doc! { "_id": key, "key": key, "via": via, "payload": payload(rng) }
}

/// Some bytes of seeded, printable filler, like the body of a real record.
fn payload(rng: &mut StdRng) -> String {
    let len = rng.random_range(16..256);
    (0..len)
        .map(|_| char::from(b'a' + rng.random_range(0..26_u8)))
        .collect()
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_covers_every_call_and_reads_dominate() {
        let mut counts = [0_u32; 6];
        for roll in 0..100 {
            counts[Call::for_roll(roll).index()] += 1;
        }
        assert!(counts.iter().all(|n| *n > 0), "{counts:?}");
        assert_eq!(counts.iter().sum::<u32>(), 100);
        assert_eq!(counts[Call::Read.index()], 37);
    }

    #[test]
    fn the_same_seed_gives_the_same_documents() {
        let mut a = StdRng::seed_from_u64(7);
        let mut b = StdRng::seed_from_u64(7);
        assert_eq!(document("k", "x", &mut a), document("k", "x", &mut b));
        assert_eq!(document("k", "x", &mut a).get_str("key"), Ok("k"));
    }

    #[test]
    fn a_proof_holds_only_without_missing_duplicated_or_unexpected_documents() {
        let clean = Proof {
            acknowledged: 3,
            found: 3,
            ..Proof::default()
        };
        assert!(clean.holds());
        for broken in [
            Proof {
                missing: 1,
                ..clean
            },
            Proof {
                duplicated: 1,
                ..clean
            },
            Proof {
                unexpected: 1,
                ..clean
            },
        ] {
            assert!(!broken.holds(), "{broken:?}");
        }
    }
}
