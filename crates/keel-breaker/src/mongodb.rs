//! The MongoDB policy: infrastructure failures count, the caller's mistakes do not, and an open
//! circuit fails with Keel's own `keel_core::Error`.

use keel_core::{Error, ErrorKind};

use crate::{CallOutcome, CircuitOpen, Policy};

/// Judges calls of Keel's MongoDB services (`Service<Operation<T>, Error = keel_core::Error>`).
///
/// * an error whose class [`is_infrastructure`](keel_core::ErrorClass::is_infrastructure)
///   (network, state change, server selection, overload, timeout…) is a failure;
/// * so is keel-pool-core's refusal while no member of the deployment is reachable
///   ([`Error::no_member_reachable`], kind `Unreachable`, class `Unavailable`): the deployment
///   is down as plainly as if the call had failed, and these refusals come in microseconds, so
///   the breaker opens within its first few refused calls instead of never;
/// * any other error (invalid input such as a duplicate key or a validation failure, a lost
///   cursor, a circuit opened further down) is ignored: the database answered;
/// * an open circuit fails with [`Error::circuit_open`], class `Unavailable`, carrying
///   `retry_after`, so the whole stack keeps one error type.
///
/// ```
/// use keel_breaker::{CallOutcome, MongoPolicy, Policy};
/// use keel_core::{DriverFailure, Error, ErrorFacts};
///
/// let network = Error::from_facts(&ErrorFacts::new(DriverFailure::Io), "connection reset");
/// let duplicate = Error::from_facts(&ErrorFacts::new(DriverFailure::WriteError).with_code(11000), "E11000");
/// assert_eq!(Policy::<(), Error>::classify(&MongoPolicy, &Err(network)), CallOutcome::Failure);
/// assert_eq!(Policy::<(), Error>::classify(&MongoPolicy, &Err(duplicate)), CallOutcome::Ignored);
/// let second = std::time::Duration::from_secs(1);
/// let outage = Error::no_member_reachable(second, second);
/// assert_eq!(Policy::<(), Error>::classify(&MongoPolicy, &Err(outage)), CallOutcome::Failure);
/// let open = Error::circuit_open(second);
/// assert_eq!(Policy::<(), Error>::classify(&MongoPolicy, &Err(open)), CallOutcome::Ignored);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct MongoPolicy;

impl<Res> Policy<Res, Error> for MongoPolicy {
    type Error = Error;

    fn classify(&self, result: &Result<Res, Error>) -> CallOutcome {
        match result {
            Ok(_) => CallOutcome::Success,
            Err(e) if e.class().is_infrastructure() => CallOutcome::Failure,
            Err(e) if e.kind() == ErrorKind::Unreachable => CallOutcome::Failure,
            Err(_) => CallOutcome::Ignored,
        }
    }

    fn rejected(&self, open: CircuitOpen) -> Error {
        open.into()
    }

    fn error(&self, error: Error) -> Error {
        error
    }
}

impl From<CircuitOpen> for Error {
    fn from(open: CircuitOpen) -> Self {
        Error::circuit_open(open.retry_after())
    }
}
