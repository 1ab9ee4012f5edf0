//! The retry layer as the assembly places it: right above the attempts.

use keel_retry::{MongoPolicy, Retry, RetryLayer, RetryStats};
use tower::{Layer, util::Either};

use crate::attempt_timeout::AttemptTimeout;

/// Keel's retry layer, which the assembly can only put over its attempts: the attempt timeout,
/// or the user's attempt layers over it.
#[derive(Clone, Debug)]
pub(crate) struct RetryStage(RetryLayer<MongoPolicy>);

impl RetryStage {
    pub(crate) fn new(layer: RetryLayer<MongoPolicy>) -> Self {
        Self(layer)
    }

    pub(crate) fn stats(&self) -> &RetryStats {
        self.0.stats()
    }
}

impl<A, B> Layer<Either<AttemptTimeout<A>, B>> for RetryStage {
    type Service = Retry<Either<AttemptTimeout<A>, B>, MongoPolicy>;

    fn layer(&self, attempts: Either<AttemptTimeout<A>, B>) -> Self::Service {
        let layer = match &attempts {
            // The type says the attempt timeout is right below, and it ends every attempt by
            // the request's deadline: no second timer here.
            Either::Left(_) => self.0.clone().with_deadline_enforced_below(),
            // A user's layer sits between and could hold an attempt past the deadline: the
            // retry layer cuts it there itself.
            Either::Right(_) => self.0.clone(),
        };
        layer.layer(attempts)
    }
}
