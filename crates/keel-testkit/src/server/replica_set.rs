//! Replica-set state shared by every member: who is primary, the election term, and the
//! `topologyVersion` that awaitable `hello` requests wait on.
//!
//! The members share one data set (there is no replication lag), so an election only moves
//! the primary role. Fields follow the SDAM specification's `hello` response for replica-set
//! members. Which members answer (listening and not frozen) is tracked here too, so the
//! election monitor ([`super::election`]) can replace a primary that stopped answering.

use std::sync::Mutex;
use std::time::Duration;

use bson::oid::ObjectId;
use bson::{Bson, Document, Timestamp, doc};
use tokio::sync::watch;

use super::lock;

/// The current roles.
#[derive(Debug)]
struct Roles {
    primary: Option<usize>,
    /// The election term; `electionId` is derived from it, so it only grows.
    term: i64,
    /// `topologyVersion.counter`: bumped on every role change.
    counter: i64,
    /// `topologyVersion.processId` per member: a new one each time the member (re)starts.
    process_ids: Vec<ObjectId>,
}

/// A replica set's configuration and roles.
#[derive(Debug)]
pub(crate) struct ReplicaSet {
    pub(crate) name: String,
    /// `host:port` of each member, exactly as it listens (drivers compare them to `me`).
    pub(crate) hosts: Vec<String>,
    roles: Mutex<Roles>,
    /// Carries `counter`; awaitable `hello`s wait for it to change.
    changes: watch::Sender<i64>,
    /// Whether each member answers (its listener runs and it is not paused): what mongod's
    /// members learn from each other's heartbeats.
    liveness: watch::Sender<Vec<bool>>,
    /// How long the secondaries wait for a primary that stopped answering before electing
    /// another (mongod's `settings.electionTimeoutMillis`).
    pub(crate) election_timeout: Duration,
}

/// mongod's default `settings.electionTimeoutMillis`.
pub(crate) const DEFAULT_ELECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a role change was refused.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ElectionError {
    /// `elect(member)` with a member that does not exist.
    UnknownMember(usize),
    /// `step_down` with nobody else to take over (mongod: `ExceededTimeLimit`).
    NobodyToTakeOver,
    /// `step_down` while there is no primary.
    PrimaryMissing,
}

/// `replSetGetStatus`'s state of a member that does not answer heartbeats.
const STATE_DOWN: i32 = 8;

/// The member states `replSetGetStatus` reports.
pub(crate) const STATE_PRIMARY: i32 = 1;
/// See [`STATE_PRIMARY`].
pub(crate) const STATE_SECONDARY: i32 = 2;

impl ReplicaSet {
    /// A set whose member 0 is primary, with mongod's default election timeout.
    #[cfg(test)]
    pub(crate) fn new(name: String, hosts: Vec<String>) -> Self {
        Self::with_election_timeout(name, hosts, DEFAULT_ELECTION_TIMEOUT)
    }

    /// A set whose member 0 is primary.
    pub(crate) fn with_election_timeout(
        name: String,
        hosts: Vec<String>,
        election_timeout: Duration,
    ) -> Self {
        let process_ids = hosts.iter().map(|_| ObjectId::new()).collect();
        Self {
            liveness: watch::Sender::new(vec![true; hosts.len()]),
            election_timeout,
            name,
            hosts,
            roles: Mutex::new(Roles {
                primary: Some(0),
                term: 1,
                counter: 0,
                process_ids,
            }),
            changes: watch::Sender::new(0),
        }
    }

    /// The primary member's index.
    pub(crate) fn primary(&self) -> Option<usize> {
        lock(&self.roles).primary
    }

    /// Whether `member` is the primary.
    pub(crate) fn is_primary(&self, member: usize) -> bool {
        lock(&self.roles).primary == Some(member)
    }

    /// The election term.
    #[cfg(test)]
    pub(crate) fn term(&self) -> i64 {
        lock(&self.roles).term
    }

    /// Makes `member` primary (a no-op if it already is); the old primary becomes secondary.
    pub(crate) fn elect(&self, member: usize) -> Result<(), ElectionError> {
        if member >= self.hosts.len() {
            return Err(ElectionError::UnknownMember(member));
        }
        let mut roles = lock(&self.roles);
        if roles.primary == Some(member) {
            return Ok(());
        }
        roles.primary = Some(member);
        roles.term += 1;
        self.bump(&mut roles);
        Ok(())
    }

    /// The primary steps down and the next answering member (in member order) takes over at
    /// once, as when a stepping-down mongod hands off to a caught-up secondary. Returns the
    /// new primary.
    pub(crate) fn step_down(&self) -> Result<usize, ElectionError> {
        let current = self.primary().ok_or(ElectionError::PrimaryMissing)?;
        let next = self
            .next_answering(current)
            .ok_or(ElectionError::NobodyToTakeOver)?;
        self.elect(next)?;
        Ok(next)
    }

    /// The first member after `from` (in member order, wrapping) that answers.
    fn next_answering(&self, from: usize) -> Option<usize> {
        let alive = self.liveness.borrow();
        let n = self.hosts.len();
        (1..n)
            .map(|k| (from + k) % n)
            .find(|&i| alive.get(i).copied().unwrap_or(false))
    }

    /// Records whether each member answers (one flag per member).
    pub(crate) fn set_liveness(&self, alive: Vec<bool>) {
        self.liveness.send_if_modified(|current| {
            let changed = *current != alive;
            *current = alive;
            changed
        });
    }

    /// A receiver that sees the next change of which members answer.
    pub(crate) fn subscribe_liveness(&self) -> watch::Receiver<Vec<bool>> {
        self.liveness.subscribe()
    }

    /// Whether `member` answers (listening and not paused).
    pub(crate) fn is_answering(&self, member: usize) -> bool {
        self.liveness.borrow().get(member).copied().unwrap_or(false)
    }

    /// The primary, when it does not answer.
    pub(crate) fn silent_primary(&self) -> Option<usize> {
        let primary = self.primary()?;
        let answers = self
            .liveness
            .borrow()
            .get(primary)
            .copied()
            .unwrap_or(false);
        (!answers).then_some(primary)
    }

    /// After `silent` stopped answering for the election timeout: elects the next answering
    /// member if a majority of the set answers (mongod needs a majority of votes), and returns
    /// it. Nothing happens if `silent` is no longer the primary.
    pub(crate) fn elect_replacement(&self, silent: usize) -> Option<usize> {
        if self.primary() != Some(silent) {
            return None;
        }
        let answering = self.liveness.borrow().iter().filter(|a| **a).count();
        if answering * 2 <= self.hosts.len() {
            return None;
        }
        let next = self.next_answering(silent)?;
        self.elect(next).ok()?;
        Some(next)
    }

    /// Member `member` got a new process (it was stopped and started): a new `processId`.
    pub(crate) fn member_restarted(&self, member: usize) {
        let mut roles = lock(&self.roles);
        if let Some(id) = roles.process_ids.get_mut(member) {
            *id = ObjectId::new();
        }
        self.bump(&mut roles);
    }

    /// Every member got a new process (restart): new `processId`s, as mongod's
    /// `topologyVersion` does after a restart.
    pub(crate) fn restarted(&self) {
        let mut roles = lock(&self.roles);
        for id in &mut roles.process_ids {
            *id = ObjectId::new();
        }
        self.bump(&mut roles);
    }

    fn bump(&self, roles: &mut Roles) {
        roles.counter += 1;
        self.changes.send_replace(roles.counter);
    }

    /// A receiver that sees the next role change.
    pub(crate) fn subscribe(&self) -> watch::Receiver<i64> {
        self.changes.subscribe()
    }

    /// `topologyVersion` of `member`.
    pub(crate) fn topology_version(&self, member: usize) -> Document {
        let roles = lock(&self.roles);
        topology_version(&roles, member)
    }

    /// Whether a client's `topologyVersion` is the current one of `member` (then an awaitable
    /// `hello` waits for a change).
    pub(crate) fn is_current(&self, member: usize, tv: &Document) -> bool {
        let roles = lock(&self.roles);
        tv.get_object_id("processId").ok() == roles.process_ids.get(member).copied()
            && tv.get_i64("counter").ok() == Some(roles.counter)
    }

    /// The replica-set fields of `member`'s `hello` reply; `primary_field` is
    /// `isWritablePrimary` or (legacy) `ismaster`.
    pub(crate) fn hello_fields(
        &self,
        member: usize,
        primary_field: &str,
        last_write: Timestamp,
    ) -> Document {
        let roles = lock(&self.roles);
        let is_primary = roles.primary == Some(member);
        let mut d = doc! {
            "topologyVersion": topology_version(&roles, member),
            "hosts": self.hosts.clone(),
            "setName": self.name.clone(),
            "setVersion": 1,
            primary_field: is_primary,
            "secondary": !is_primary,
        };
        if let Some(p) = roles.primary {
            d.insert("primary", self.hosts[p].clone());
        }
        d.insert("me", self.hosts.get(member).cloned().unwrap_or_default());
        if is_primary {
            // Only the primary reports its election.
            d.insert("electionId", election_id(roles.term));
        }
        let op_time = doc! {"ts": last_write, "t": roles.term};
        let date = bson::DateTime::from_millis(i64::from(last_write.time) * 1000);
        d.insert(
            "lastWrite",
            doc! {
                "opTime": op_time.clone(),
                "lastWriteDate": date,
                "majorityOpTime": op_time,
                "majorityWriteDate": date,
            },
        );
        d
    }

    /// `replSetGetStatus` for `member`.
    pub(crate) fn status(&self, member: usize, last_write: Timestamp) -> Document {
        let roles = lock(&self.roles);
        let alive = self.liveness.borrow().clone();
        let state = |i: usize| {
            if i != member && !alive.get(i).copied().unwrap_or(false) {
                STATE_DOWN
            } else if roles.primary == Some(i) {
                STATE_PRIMARY
            } else {
                STATE_SECONDARY
            }
        };
        let members: Vec<Bson> = self
            .hosts
            .iter()
            .enumerate()
            .map(|(i, host)| {
                let s = state(i);
                Bson::Document(doc! {
                    "_id": i32::try_from(i).unwrap_or(i32::MAX),
                    "name": host.clone(),
                    "health": if s == STATE_DOWN { 0.0 } else { 1.0 },
                    "state": s,
                    "stateStr": match s {
                        STATE_PRIMARY => "PRIMARY",
                        STATE_SECONDARY => "SECONDARY",
                        _ => "(not reachable/healthy)",
                    },
                    "optime": {"ts": last_write, "t": roles.term},
                    "self": i == member,
                })
            })
            .collect();
        doc! {
            "set": self.name.clone(),
            "date": bson::DateTime::now(),
            "myState": state(member),
            "term": roles.term,
            "members": members,
            "ok": 1.0,
        }
    }
}

impl ReplicaSet {
    /// `replSetGetConfig`: the set as `rs.initiate` would have made it (every member votes,
    /// priority 1), with `settings.electionTimeoutMillis` as configured and mongod's other
    /// default settings. `version` is the `setVersion` `hello` reports; elections change the
    /// term, never the version, as on mongod.
    pub(crate) fn config(&self) -> Document {
        let term = lock(&self.roles).term;
        let members: Vec<Bson> = self
            .hosts
            .iter()
            .enumerate()
            .map(|(i, host)| {
                Bson::Document(doc! {
                    "_id": i32::try_from(i).unwrap_or(i32::MAX),
                    "host": host.clone(),
                    "arbiterOnly": false,
                    "buildIndexes": true,
                    "hidden": false,
                    "priority": 1.0,
                    "tags": {},
                    "secondaryDelaySecs": 0i64,
                    "votes": 1,
                })
            })
            .collect();
        let timeout = i64::try_from(self.election_timeout.as_millis()).unwrap_or(i64::MAX);
        doc! {
            "_id": self.name.clone(),
            "version": 1,
            "term": term,
            "members": members,
            "protocolVersion": 1i64,
            "writeConcernMajorityJournalDefault": true,
            "settings": {
                "chainingAllowed": true,
                "heartbeatIntervalMillis": 2000,
                "heartbeatTimeoutSecs": 10,
                "electionTimeoutMillis": timeout,
                "catchUpTimeoutMillis": -1,
                "catchUpTakeoverDelayMillis": 30000,
                "getLastErrorModes": {},
                "getLastErrorDefaults": {"w": 1, "wtimeout": 0},
            },
        }
    }
}

fn topology_version(roles: &Roles, member: usize) -> Document {
    doc! {
        "processId": roles.process_ids.get(member).copied().unwrap_or_else(ObjectId::new),
        "counter": roles.counter,
    }
}

/// mongod's `electionId`: `OID::fromTerm`, i.e. `0x7fffffff` then the term, big-endian, so
/// later terms compare greater.
pub(crate) fn election_id(term: i64) -> ObjectId {
    let mut bytes = [0u8; 12];
    bytes[..4].copy_from_slice(&[0x7f, 0xff, 0xff, 0xff]);
    bytes[4..].copy_from_slice(&term.to_be_bytes());
    ObjectId::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: usize) -> ReplicaSet {
        ReplicaSet::new(
            "rs0".into(),
            (0..n).map(|i| format!("127.0.0.1:{}", 1000 + i)).collect(),
        )
    }

    #[test]
    fn step_down_moves_the_primary_and_grows_the_term() {
        let rs = set(3);
        let tv = rs.topology_version(1);
        assert!(rs.is_current(1, &tv));
        assert_eq!(rs.step_down(), Ok(1));
        assert!(rs.is_primary(1) && !rs.is_primary(0));
        assert_eq!(rs.term(), 2);
        assert!(
            !rs.is_current(1, &tv),
            "a role change bumps topologyVersion"
        );
        assert!(election_id(2) > election_id(1));
        assert_eq!(rs.elect(1), Ok(()));
        assert_eq!(rs.term(), 2, "electing the primary again changes nothing");
        assert_eq!(rs.elect(7), Err(ElectionError::UnknownMember(7)));
    }

    #[test]
    fn a_single_member_cannot_step_down() {
        assert_eq!(set(1).step_down(), Err(ElectionError::NobodyToTakeOver));
    }

    #[test]
    fn a_silent_primary_is_replaced_only_with_a_majority() {
        let rs = set(3);
        assert_eq!(rs.silent_primary(), None);
        rs.set_liveness(vec![false, true, true]);
        assert_eq!(rs.silent_primary(), Some(0));
        assert_eq!(rs.elect_replacement(1), None, "member 1 is not the primary");
        assert_eq!(rs.elect_replacement(0), Some(1));
        assert_eq!(rs.term(), 2);
        assert_eq!(rs.silent_primary(), None);
        // Member 1 dies too: one of three answers, no majority, no election.
        rs.set_liveness(vec![false, false, true]);
        assert_eq!(rs.silent_primary(), Some(1));
        assert_eq!(rs.elect_replacement(1), None);
        // step_down skips members that do not answer.
        rs.set_liveness(vec![false, true, true]);
        assert_eq!(rs.step_down(), Ok(2));
        let status = rs.status(
            2,
            Timestamp {
                time: 1,
                increment: 1,
            },
        );
        let members = status.get_array("members").unwrap();
        let down = members[0].as_document().unwrap();
        assert_eq!(down.get_i32("state").unwrap(), STATE_DOWN);
        assert_eq!(down.get_f64("health").unwrap(), 0.0);
        let settings = rs.config().get_document("settings").unwrap().clone();
        assert_eq!(settings.get_i64("electionTimeoutMillis").unwrap(), 10_000);
    }

    #[test]
    fn hello_fields_describe_each_member() {
        let rs = set(2);
        let ts = Timestamp {
            time: 5,
            increment: 1,
        };
        let p = rs.hello_fields(0, "isWritablePrimary", ts);
        assert!(p.get_bool("isWritablePrimary").unwrap());
        assert!(!p.get_bool("secondary").unwrap());
        assert_eq!(p.get_str("me").unwrap(), "127.0.0.1:1000");
        assert!(p.contains_key("electionId"));
        let s = rs.hello_fields(1, "isWritablePrimary", ts);
        assert!(!s.get_bool("isWritablePrimary").unwrap());
        assert!(s.get_bool("secondary").unwrap());
        assert_eq!(s.get_str("primary").unwrap(), "127.0.0.1:1000");
        assert!(!s.contains_key("electionId"));
    }
}
