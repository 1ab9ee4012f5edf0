//! [`MongoPolicy`]: MongoDB retry safety (design notes §4) from keel-core's classifier.

use keel_core::{Error, Operation};
use tokio::time::Instant;

use crate::{ConfigError, Decision, Policy, RetryConfig, RetryLayer, StopReason};

/// Retries `keel_core::Operation`s exactly when the design notes' §4 says it is safe.
///
/// | failure | read, idempotent write/command | other write or command |
/// |---|---|---|
/// | network, state change, pool cleared, server selection, overloaded, timeout | retry | retry only if the error proves nothing was applied |
/// | auth, config, invalid input (incl. duplicate key), write concern, cursor, change stream, unavailable, unknown | never | never |
/// | the caller's deadline has passed | never | never |
///
/// The table itself lives in [`keel_core::is_retry_safe`] (each row cites the MongoDB
/// specification it follows); this policy adds the rest:
/// * a `retry_after` hint ([`Error::retry_after`]) lengthens the backoff delay;
/// * the deadline is the operation's own ([`Operation::deadline`]) when earlier than the
///   layer's total timeout; an operation that arrives after its deadline is refused with
///   [`Error::deadline_exceeded`] without being sent, and an attempt (or a wait for the
///   service to be ready) still running at the deadline is dropped and answered with
///   [`Error::deadline_exceeded`] (class `Timeout`, not retried: whether a dropped write
///   applied is unknown);
/// * the final error records the attempts and why the layer stopped
///   ([`Error::attempts`], [`Error::stopped_because`]: one of `"not retryable"`,
///   `"max attempts reached"`, `"retry budget exhausted"`, `"deadline exceeded"`), keeping the
///   class of the last failure;
/// * metrics are labelled with [`Operation::name`] and [`keel_core::ErrorClass::as_str`].
///
/// ```
/// use keel_core::{Error, Operation};
/// use keel_retry::{Decision, MongoPolicy, Policy};
///
/// let insert = Operation::write("users.insert", false, |_client| async { Ok(()) });
/// let shed = Error::overloaded("checkout wait limit reached", None); // nothing was sent
/// let io = Error::from_facts(&keel_core::ErrorFacts::new(keel_core::DriverFailure::Io), "reset");
/// assert_eq!(MongoPolicy.decide(&insert, &shed), Decision::RETRY);
/// assert_eq!(MongoPolicy.decide(&insert, &io), Decision::Stop, "it may have applied");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MongoPolicy;

impl<T> Policy<Operation<T>, Error> for MongoPolicy {
    fn decide(&self, request: &Operation<T>, error: &Error) -> Decision {
        if error.is_retryable(request.kind()) {
            Decision::Retry {
                at_least: error.retry_after(),
            }
        } else {
            Decision::Stop
        }
    }

    fn deadline(&self, request: &Operation<T>) -> Option<Instant> {
        request.deadline()
    }

    fn reject_expired(&self, request: &Operation<T>) -> Option<Error> {
        let reason = StopReason::DeadlineExceeded;
        let detail = format!(
            "{}: the deadline passed before the first attempt",
            request.name()
        );
        Some(Error::deadline_exceeded(detail).with_attempts(0, reason.as_str()))
    }

    fn deadline_error(&self, request: &Operation<T>) -> Option<Error> {
        Some(Error::deadline_exceeded(format!(
            "{}: the deadline passed before an attempt finished",
            request.name()
        )))
    }

    fn on_give_up(&self, error: Error, attempts: u32, reason: StopReason) -> Error {
        error.with_attempts(attempts, reason.as_str())
    }

    fn operation_name<'r>(&self, request: &'r Operation<T>) -> &'r str {
        request.name()
    }

    fn error_class(&self, error: &Error) -> &'static str {
        error.class().as_str()
    }
}

impl RetryLayer<MongoPolicy> {
    /// A retry layer for MongoDB operations with [`MongoPolicy`].
    ///
    /// ```
    /// use keel_retry::{RetryConfig, RetryLayer};
    /// let layer = RetryLayer::mongodb(RetryConfig::default())?;
    /// assert_eq!(layer.config().max_attempts, 3);
    /// # Ok::<(), keel_retry::ConfigError>(())
    /// ```
    pub fn mongodb(config: RetryConfig) -> Result<Self, ConfigError> {
        RetryLayer::new(MongoPolicy, config)
    }
}
