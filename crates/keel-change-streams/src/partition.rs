//! Ordered parallelism (`partition_by_document_key(n)`): up to `n` handlers at once, events of
//! one `documentKey` strictly one after the other in server order, and a checkpoint that only
//! advances over a prefix of finished events (the oldest unfinished event bounds it).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use futures_util::{StreamExt, future::BoxFuture, stream::FuturesUnordered};
use keel_core::Error;
use mongodb::bson::{RawDocument, Timestamp};

use crate::token::Token;

/// One event to run: its partition key (`None`: no `documentKey`, runs alone), its token and
/// cluster time (what the checkpoint becomes once it and everything before it finished).
pub(crate) struct Item<E> {
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) token: Token,
    pub(crate) cluster_time: Option<Timestamp>,
    pub(crate) event: E,
}

/// The checkpoint may move to `token`: `count` more events finished, all before it included.
#[derive(Debug, PartialEq)]
pub(crate) struct Advance {
    pub(crate) token: Token,
    pub(crate) cluster_time: Option<Timestamp>,
    pub(crate) count: u32,
    /// Sequence number of the last event it covers (for tests).
    pub(crate) last: u64,
}

struct Slot {
    token: Token,
    cluster_time: Option<Timestamp>,
    /// Events it stands for (0: a quiet batch's token).
    weight: u32,
    done: bool,
}

/// Events in flight by sequence number; the finished prefix becomes an [`Advance`].
#[derive(Default)]
pub(crate) struct Progress {
    slots: BTreeMap<u64, Slot>,
    next: u64,
}

impl Progress {
    /// Registers the next event (`weight` 1) or quiet token (0) in server order; its sequence
    /// number.
    pub(crate) fn begin(
        &mut self,
        token: Token,
        cluster_time: Option<Timestamp>,
        weight: u32,
    ) -> u64 {
        let seq = self.next;
        self.next += 1;
        self.slots.insert(
            seq,
            Slot {
                token,
                cluster_time,
                weight,
                done: false,
            },
        );
        seq
    }

    /// Marks `seq` finished; the checkpoint may advance when the oldest events all finished.
    pub(crate) fn finish(&mut self, seq: u64) -> Option<Advance> {
        if let Some(slot) = self.slots.get_mut(&seq) {
            slot.done = true;
        }
        let mut advance: Option<Advance> = None;
        while let Some(entry) = self.slots.first_entry() {
            if !entry.get().done {
                break;
            }
            let (last, slot) = entry.remove_entry();
            let count = advance.as_ref().map_or(0, |a| a.count) + slot.weight;
            advance = Some(Advance {
                token: slot.token,
                cluster_time: slot.cluster_time,
                count,
                last,
            });
        }
        advance
    }
}

/// The key a `documentKey` partitions by (its BSON bytes: equal keys, equal bytes).
pub(crate) fn partition_key(raw: &RawDocument) -> Option<Vec<u8>> {
    let key = raw.get_document("documentKey").ok()?;
    Some(key.as_bytes().to_vec())
}

type Step<'a> = BoxFuture<'a, (Option<Vec<u8>>, u64, Result<(), Error>)>;

/// Runs events as they are read, with at most `limit` handlers at once and one at a time per
/// key; a keyless event waits for everything before it and runs alone. Reading goes on while
/// handlers run (a slow document does not hold up the others), up to `capacity` unfinished
/// events, so memory stays bounded.
pub(crate) struct Scheduler<'a, E, H> {
    handle: &'a H,
    limit: usize,
    capacity: usize,
    progress: Progress,
    /// Events waiting for their key's previous event (or for a free slot).
    queued: HashMap<Vec<u8>, VecDeque<(u64, E)>>,
    /// Keys with a handler running.
    busy: HashSet<Vec<u8>>,
    /// Idle keys with queued events, in arrival order, waiting for a free slot.
    ready: VecDeque<Vec<u8>>,
    /// A keyless event waiting for everything before it.
    barrier: Option<(u64, E)>,
    running: FuturesUnordered<Step<'a>>,
    unfinished: usize,
}

impl<'a, E, H> Scheduler<'a, E, H>
where
    E: Send + 'a,
    H: Fn(E) -> BoxFuture<'a, Result<(), Error>> + Sync,
{
    /// A scheduler of at most `limit` handlers and `capacity` unfinished events.
    pub(crate) fn new(handle: &'a H, limit: usize, capacity: usize) -> Self {
        Self {
            handle,
            limit: limit.max(1),
            capacity: capacity.max(1),
            progress: Progress::default(),
            queued: HashMap::new(),
            busy: HashSet::new(),
            ready: VecDeque::new(),
            barrier: None,
            running: FuturesUnordered::new(),
            unfinished: 0,
        }
    }

    /// Whether it takes another event now (no keyless event waiting, below capacity).
    pub(crate) fn accepting(&self) -> bool {
        self.barrier.is_none() && self.unfinished < self.capacity
    }

    /// Whether every event pushed has finished.
    pub(crate) fn idle(&self) -> bool {
        self.unfinished == 0
    }

    fn start(&mut self, key: Option<Vec<u8>>, seq: u64, event: E) {
        let future = (self.handle)(event);
        self.running
            .push(Box::pin(async move { (key, seq, future.await) }));
    }

    /// Takes the next event in server order (call only while [`accepting`](Self::accepting)).
    pub(crate) fn push(&mut self, item: Item<E>) {
        let seq = self.progress.begin(item.token, item.cluster_time, 1);
        self.unfinished += 1;
        match item.key {
            None if self.running.is_empty() && self.ready.is_empty() => {
                self.start(None, seq, item.event);
            }
            None => self.barrier = Some((seq, item.event)),
            Some(key) if self.busy.contains(&key) => {
                self.queued
                    .entry(key)
                    .or_default()
                    .push_back((seq, item.event));
            }
            Some(key) if self.running.len() < self.limit && !self.queued.contains_key(&key) => {
                self.busy.insert(key.clone());
                self.start(Some(key), seq, item.event);
            }
            Some(key) => {
                let queue = self.queued.entry(key.clone()).or_default();
                if queue.is_empty() {
                    self.ready.push_back(key);
                }
                queue.push_back((seq, item.event));
            }
        }
    }

    /// A quiet batch's token, which follows everything pushed so far: the checkpoint may move
    /// to it once they finished (at once when they have).
    pub(crate) fn marker(
        &mut self,
        token: Token,
        cluster_time: Option<Timestamp>,
    ) -> Option<Advance> {
        let seq = self.progress.begin(token, cluster_time, 0);
        self.progress.finish(seq)
    }

    /// Waits for the next handler to finish: `None` when none is running; the advance of the
    /// checkpoint it allows, if any; or the handler's error.
    pub(crate) async fn next(&mut self) -> Option<Result<Option<Advance>, Error>> {
        let (key, seq, result) = self.running.next().await?;
        self.unfinished -= 1;
        if let Err(error) = result {
            return Some(Err(error));
        }
        let advance = self.progress.finish(seq);
        if let Some(key) = key {
            let next = self.queued.get_mut(&key).and_then(VecDeque::pop_front);
            match next {
                // The key keeps its slot: its next event runs after this one finished.
                Some((seq, event)) => self.start(Some(key), seq, event),
                None => {
                    self.queued.remove(&key);
                    self.busy.remove(&key);
                }
            }
        }
        while self.running.len() < self.limit {
            let Some(key) = self.ready.pop_front() else {
                break;
            };
            if let Some((seq, event)) = self.queued.get_mut(&key).and_then(VecDeque::pop_front) {
                self.busy.insert(key.clone());
                self.start(Some(key), seq, event);
            }
        }
        if self.running.is_empty()
            && self.ready.is_empty()
            && let Some((seq, event)) = self.barrier.take()
        {
            self.start(None, seq, event);
        }
        Some(Ok(advance))
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            Arc, Mutex,
            atomic::{AtomicUsize, Ordering},
        },
        time::Duration,
    };

    use futures_util::FutureExt;
    use mongodb::bson::doc;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    use super::*;

    fn rawdoc(d: mongodb::bson::Document) -> mongodb::bson::RawDocumentBuf {
        mongodb::bson::RawDocumentBuf::from_document(&d).unwrap()
    }

    #[test]
    fn the_checkpoint_waits_for_the_oldest_unfinished_event() {
        let mut p = Progress::default();
        let seqs: Vec<u64> = (0..4)
            .map(|i| p.begin(doc! {"t": i}.into(), None, 1))
            .collect();
        assert_eq!(p.finish(seqs[2]), None);
        assert_eq!(p.finish(seqs[1]), None);
        let a = p.finish(seqs[0]).unwrap();
        assert_eq!((a.token, a.count, a.last), (doc! {"t": 2}.into(), 3, 2));
        let quiet = p.begin(doc! {"t": "quiet"}.into(), None, 0);
        assert_eq!(p.finish(quiet), None, "a quiet token waits for event 3");
        let a = p.finish(seqs[3]).unwrap();
        assert_eq!((a.token, a.count), (doc! {"t": "quiet"}.into(), 1));
    }

    #[test]
    fn equal_document_keys_are_one_partition() {
        let a = partition_key(&rawdoc(doc! {"documentKey": {"_id": 1}}));
        let b = partition_key(&rawdoc(doc! {"documentKey": {"_id": 1}, "x": 2}));
        let c = partition_key(&rawdoc(doc! {"documentKey": {"_id": 2}}));
        assert!(a.is_some() && a == b && a != c);
        assert_eq!(partition_key(&rawdoc(doc! {"operationType": "drop"})), None);
    }

    /// Drives a scheduler as the consumer does: pushes while it accepts (a few at a time, so
    /// reading and handling interleave), otherwise waits for a handler.
    async fn drive<'a, E: Send + 'a, H>(
        scheduler: &mut Scheduler<'a, E, H>,
        items: Vec<Item<E>>,
        mut on: impl FnMut(Advance),
        rng: &mut StdRng,
    ) -> Result<(), Error>
    where
        H: Fn(E) -> BoxFuture<'a, Result<(), Error>> + Sync,
    {
        let mut items = items.into_iter().peekable();
        loop {
            let burst = rng.random_range(1..8);
            for _ in 0..burst {
                if !scheduler.accepting() {
                    break;
                }
                match items.next() {
                    Some(item) => scheduler.push(item),
                    None => break,
                }
            }
            match scheduler.next().await {
                Some(result) => on.extend_advance(result?),
                None if items.peek().is_none() => return Ok(()),
                None => {}
            }
        }
    }

    trait ExtendAdvance {
        fn extend_advance(&mut self, advance: Option<Advance>);
    }
    impl<F: FnMut(Advance)> ExtendAdvance for F {
        fn extend_advance(&mut self, advance: Option<Advance>) {
            if let Some(a) = advance {
                self(a);
            }
        }
    }

    /// Random handler delays (paused time): order per key kept, at most `n` at once, more than
    /// one at once, keyless events alone, and no advance ever covers an unfinished event.
    #[tokio::test(start_paused = true)]
    async fn order_per_key_is_kept_and_the_checkpoint_never_passes_an_unfinished_event() {
        for seed in 0..20u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let limit = rng.random_range(2..6);
            let items: Vec<Item<(u64, i32, u64)>> = (0..120u64)
                .map(|seq| {
                    let key = if seq % 37 == 36 {
                        None
                    } else {
                        Some(rng.random_range(0..8))
                    };
                    let delay = rng.random_range(0..20);
                    Item {
                        key: key.map(|k: i32| k.to_le_bytes().to_vec()),
                        token: doc! {"seq": seq as i64}.into(),
                        cluster_time: None,
                        event: (seq, key.unwrap_or(-1), delay),
                    }
                })
                .collect();
            let finished = Arc::new(Mutex::new(HashSet::new()));
            let order = Arc::new(Mutex::new(HashMap::<i32, Vec<u64>>::new()));
            let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
            let keyless_alone = Arc::new(Mutex::new(true));
            let handle = {
                let (finished, order, now, peak, alone) = (
                    finished.clone(),
                    order.clone(),
                    now.clone(),
                    peak.clone(),
                    keyless_alone.clone(),
                );
                move |(seq, key, delay): (u64, i32, u64)| {
                    let (finished, order, now, peak, alone) = (
                        finished.clone(),
                        order.clone(),
                        now.clone(),
                        peak.clone(),
                        alone.clone(),
                    );
                    async move {
                        let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(running, Ordering::SeqCst);
                        if key == -1 && running != 1 {
                            *alone.lock().unwrap() = false;
                        }
                        order.lock().unwrap().entry(key).or_default().push(seq);
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                        finished.lock().unwrap().insert(seq);
                        now.fetch_sub(1, Ordering::SeqCst);
                        Ok(())
                    }
                    .boxed()
                }
            };
            let mut covered = 0u32;
            let check = finished.clone();
            let on = |advance: Advance| {
                let done = check.lock().unwrap();
                assert!(
                    (0..=advance.last).all(|s| done.contains(&s)),
                    "seed {seed}: the checkpoint passed an unfinished event"
                );
                covered += advance.count;
                assert_eq!(u64::from(covered), advance.last + 1, "seed {seed}");
            };
            let capacity = rng.random_range(4..40);
            let mut scheduler = Scheduler::new(&handle, limit, capacity);
            drive(&mut scheduler, items, on, &mut rng).await.unwrap();
            assert!(scheduler.idle());
            assert_eq!(covered, 120, "seed {seed}");
            for (key, seqs) in order.lock().unwrap().iter() {
                assert!(
                    seqs.windows(2).all(|w| w[0] < w[1]),
                    "seed {seed} key {key}: {seqs:?}"
                );
            }
            let peak = peak.load(Ordering::SeqCst);
            assert!(
                peak <= limit && peak >= 2,
                "seed {seed}: peak {peak}, limit {limit}"
            );
            assert!(
                *keyless_alone.lock().unwrap(),
                "seed {seed}: a keyless event ran alongside"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_document_does_not_hold_up_the_others_nor_the_checkpoint_passes_it() {
        let items: Vec<Item<u64>> = (0..30u64)
            .map(|seq| Item {
                key: Some(vec![u8::from(seq % 3 == 1)]),
                token: doc! {"seq": seq as i64}.into(),
                cluster_time: None,
                event: seq,
            })
            .collect();
        let handle = |seq: u64| {
            async move {
                if seq == 1 {
                    std::future::pending::<()>().await;
                }
                Ok(())
            }
            .boxed()
        };
        let mut scheduler = Scheduler::new(&handle, 2, 100);
        for item in items {
            scheduler.push(item);
        }
        let mut advanced = 0;
        let mut handled = 0;
        while handled < 20 {
            let r = tokio::time::timeout(Duration::from_secs(1), scheduler.next()).await;
            let advance = r.expect("the other document kept going").unwrap().unwrap();
            handled += 1;
            advanced += advance.map_or(0, |a| a.count);
        }
        assert_eq!(advanced, 1, "only event 0 is before the stuck event 1");
        assert!(!scheduler.accepting() || !scheduler.idle());
    }

    #[tokio::test(start_paused = true)]
    async fn a_handler_error_stops_without_covering_the_failed_event() {
        let handle = |seq: u64| {
            async move {
                if seq == 4 {
                    Err(Error::config("handler failed"))
                } else {
                    Ok(())
                }
            }
            .boxed()
        };
        let mut scheduler = Scheduler::new(&handle, 3, 100);
        for seq in 0..10u64 {
            scheduler.push(Item {
                key: Some(vec![u8::try_from(seq % 3).unwrap()]),
                token: doc! {"seq": seq as i64}.into(),
                cluster_time: None,
                event: seq,
            });
        }
        let mut last = None;
        let error = loop {
            match scheduler.next().await {
                Some(Ok(a)) => last = a.map(|a| a.last).or(last),
                Some(Err(e)) => break e,
                None => panic!("the error never came"),
            }
        };
        assert!(error.to_string().contains("handler failed"));
        assert!(last.is_none_or(|l| l < 4), "covered {last:?}");
    }
}
