//! [`RetryLayer`]: validates a configuration once and wraps services in [`Retry`].

use std::{fmt, sync::Arc, time::Duration};

use tokio::time::Instant;
use tower_layer::Layer;

use crate::{
    Backoff, ConfigError, JitterSource, Policy, RetryBudget, RetryConfig, RetryStats, StopReason,
    ThreadRngJitter, service::Retry,
};

/// What every [`Retry`] service built from one layer shares: policy, limits, budget, jitter.
pub(crate) struct Shared<P> {
    pub(crate) policy: P,
    pub(crate) max_attempts: u32,
    pub(crate) backoff: Backoff,
    pub(crate) budget: Option<Arc<RetryBudget>>,
    pub(crate) total_timeout: Option<Duration>,
    pub(crate) attempt_timeout: Option<Duration>,
    pub(crate) jitter: Arc<dyn JitterSource>,
    pub(crate) deadline_enforced_below: bool,
    pub(crate) stats: RetryStats,
}

impl<P> Shared<P> {
    /// Whether an attempt starting at `start` starts before `deadline` and, with an
    /// `attempt_timeout`, can finish by then. An attempt starting at the deadline has no time
    /// at all; one that would end after it is wasted work for the database.
    pub(crate) fn fits(&self, start: Instant, deadline: Option<Instant>) -> bool {
        deadline.is_none_or(|deadline| {
            start < deadline && start + self.attempt_timeout.unwrap_or(Duration::ZERO) <= deadline
        })
    }

    /// What to do after attempt number `attempts` failed: the delay before the next attempt,
    /// or why not to make one.
    pub(crate) fn next_delay<Req, E>(
        &self,
        request: &Req,
        error: &E,
        attempts: u32,
        deadline: Option<Instant>,
        previous_delay: &mut Duration,
    ) -> Result<Duration, StopReason>
    where
        P: Policy<Req, E>,
    {
        let at_least = match self.policy.decide(request, error) {
            crate::Decision::Retry { at_least } => at_least,
            crate::Decision::Stop => return Err(StopReason::NotRetryable),
        };
        if attempts >= self.max_attempts {
            return Err(StopReason::MaxAttempts);
        }
        let backoff = self
            .backoff
            .delay(attempts - 1, *previous_delay, self.jitter.unit());
        let delay = at_least.map_or(backoff, |hint| backoff.max(hint));
        if !self.fits(Instant::now() + delay, deadline) {
            return Err(StopReason::DeadlineExceeded);
        }
        // Checked last so that a retry refused for another reason does not spend a token.
        if let Some(budget) = &self.budget
            && !budget.withdraw()
        {
            return Err(StopReason::BudgetExhausted);
        }
        *previous_delay = backoff;
        Ok(delay)
    }
}

/// A [`tower_layer::Layer`] that retries failed requests under a [`Policy`].
///
/// All services built from one layer share its retry budget, so build the layer once per
/// client. See the [crate documentation](crate) for a complete example.
///
/// ```
/// use keel_retry::{RetryConfig, RetryIf, RetryLayer};
/// let layer = RetryLayer::new(RetryIf::new(|_: &std::io::Error| true), RetryConfig::default())?;
/// assert_eq!(layer.config().max_attempts, 3);
/// # Ok::<(), keel_retry::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct RetryLayer<P> {
    policy: P,
    config: RetryConfig,
    backoff: Backoff,
    budget: Option<Arc<RetryBudget>>,
    jitter: Arc<dyn JitterSource>,
    deadline_enforced_below: bool,
    stats: RetryStats,
}

impl<P> RetryLayer<P> {
    /// Validates `config` and builds the layer; every invalid setting is a typed
    /// [`ConfigError`].
    pub fn new(policy: P, config: RetryConfig) -> Result<Self, ConfigError> {
        config.check_limits()?;
        let backoff = Backoff::new(config.backoff)?;
        let budget = config
            .budget
            .map(RetryBudget::new)
            .transpose()?
            .map(Arc::new);
        Ok(Self {
            policy,
            config,
            backoff,
            budget,
            jitter: Arc::new(ThreadRngJitter),
            deadline_enforced_below: false,
            stats: RetryStats::new(),
        })
    }

    /// Replaces the source of randomness (by default the thread-local generator), e.g. with a
    /// [`SeededJitter`](crate::SeededJitter) for deterministic tests.
    #[must_use]
    pub fn with_jitter_source(mut self, source: impl JitterSource + 'static) -> Self {
        self.jitter = Arc::new(source);
        self
    }

    /// Declares that the service below ends every attempt by the request's deadline, as an
    /// attempt timeout capped at the deadline does (mongokeel's stack is built that way).
    ///
    /// The layer then arms no timer of its own while an attempt runs, which saves a timer
    /// and an allocation per request; waits between attempts (backoff, readiness) are still
    /// cut at the deadline here. Without such a service below, an attempt that hangs would
    /// outlive the deadline, so leave this off unless the service really does it.
    ///
    /// ```
    /// use keel_retry::{RetryConfig, RetryLayer};
    ///
    /// let layer = RetryLayer::mongodb(RetryConfig::default())
    ///     .unwrap()
    ///     .with_deadline_enforced_below();
    /// assert!(layer.deadline_is_enforced_below());
    /// ```
    #[must_use]
    pub fn with_deadline_enforced_below(mut self) -> Self {
        self.deadline_enforced_below = true;
        self
    }

    /// Whether [`with_deadline_enforced_below`](Self::with_deadline_enforced_below) was set.
    pub fn deadline_is_enforced_below(&self) -> bool {
        self.deadline_enforced_below
    }

    /// Shares `budget` instead of the layer's own (`None` disables the budget), so several
    /// layers can draw from one budget.
    #[must_use]
    pub fn with_budget(mut self, budget: Option<Arc<RetryBudget>>) -> Self {
        self.budget = budget;
        self
    }

    /// The configuration the layer was built from.
    pub fn config(&self) -> &RetryConfig {
        &self.config
    }

    /// The retry budget, when one is set (to share it or watch it).
    pub fn budget(&self) -> Option<&Arc<RetryBudget>> {
        self.budget.as_ref()
    }

    /// The counters of every service built from this layer (attempts, retries, give-ups by
    /// reason), readable without a metrics recorder.
    pub fn stats(&self) -> &RetryStats {
        &self.stats
    }

    /// The policy.
    pub fn policy(&self) -> &P {
        &self.policy
    }

    pub(crate) fn shared(&self) -> Arc<Shared<P>>
    where
        P: Clone,
    {
        Arc::new(Shared {
            policy: self.policy.clone(),
            max_attempts: self.config.max_attempts,
            backoff: self.backoff,
            budget: self.budget.clone(),
            total_timeout: self.config.total_timeout,
            attempt_timeout: self.config.attempt_timeout,
            jitter: Arc::clone(&self.jitter),
            deadline_enforced_below: self.deadline_enforced_below,
            stats: self.stats.clone(),
        })
    }
}

impl<P: Clone, S> Layer<S> for RetryLayer<P> {
    type Service = Retry<S, P>;

    fn layer(&self, inner: S) -> Self::Service {
        Retry::from_shared(inner, self.shared())
    }
}

impl<P: fmt::Debug> fmt::Debug for RetryLayer<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryLayer")
            .field("policy", &self.policy)
            .field("config", &self.config)
            .field("jitter", &self.jitter)
            .finish_non_exhaustive()
    }
}
