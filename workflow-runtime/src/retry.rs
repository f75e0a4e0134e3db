//! Retry policies: how often, and how patiently, a failed step is tried again.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::codec::{FNV_OFFSET, fnv1a};
use crate::step::StepError;

/// How the engine retries a step: how many attempts, how long to wait between them, and how
/// long one attempt may take.
///
/// Every `#[function]` has one: [`RetryPolicy::DEFAULT`] unless its attribute says otherwise
/// (`#[function(max_attempts = 5, initial_backoff = "1s", timeout = "30s")]`), and a workflow
/// can choose another for one call with `ctx.step(f, input).retry(policy).await`.
///
/// A step is tried again when its attempt fails with a retryable [`StepError`] (a timed-out
/// attempt is one) and attempts are left. The wait before attempt `n + 1` is
/// `initial_backoff * multiplier^(n - 1)`, capped at `max_backoff`, then shortened by up to
/// `jitter` of itself. It is a durable timer: its absolute deadline is committed with the
/// failed attempt, so a restart resumes the remaining wait instead of starting a fresh one.
/// When the error is permanent or no attempt is left, the workflow receives the last error at
/// its `ctx.step(..).await`.
///
/// Build policies with the `const` methods, ideally in a `const` so that an invalid value is a
/// compile error:
///
/// ```
/// use std::time::Duration;
/// use workflow_runtime::RetryPolicy;
///
/// const PAYMENT: RetryPolicy = RetryPolicy::DEFAULT
///     .max_attempts(5)
///     .initial_backoff(Duration::from_millis(500))
///     .max_backoff(Duration::from_secs(30))
///     .jitter(0.2)
///     .timeout(Duration::from_secs(10));
/// assert_eq!(PAYMENT.max_attempts, 5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// How many attempts in total, at least 1 (1: never retry).
    pub max_attempts: u32,
    /// The wait before the second attempt.
    #[serde(rename = "initial_backoff_ms", with = "millis")]
    pub initial_backoff: Duration,
    /// The longest wait between two attempts.
    #[serde(rename = "max_backoff_ms", with = "millis")]
    pub max_backoff: Duration,
    /// The factor by which the wait grows after each failed attempt, at least 1.0.
    pub multiplier: f64,
    /// The fraction (0.0 to 1.0) by which each wait may be shortened at random, so that runs
    /// failing together do not retry together. 0.0 waits exactly.
    pub jitter: f64,
    /// How long one attempt may run before it is cut off and counted as a retryable failure;
    /// `None` lets it run as long as it takes.
    #[serde(
        rename = "timeout_ms",
        with = "opt_millis",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// Whether a panicking attempt is retried; by default a panic is a permanent error.
    #[serde(skip_serializing_if = "is_false")]
    pub retry_panics: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl RetryPolicy {
    /// The policy of a `#[function]` without retry arguments: 3 attempts, waiting 1 s and then
    /// 2 s (doubling, at most 60 s), no jitter, no per-attempt timeout, panics not retried.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workflow_runtime::RetryPolicy;
    /// let p = RetryPolicy::DEFAULT;
    /// assert_eq!(p.max_attempts, 3);
    /// assert_eq!(p.backoff(1, "key"), Duration::from_secs(1));
    /// assert_eq!(p.backoff(2, "key"), Duration::from_secs(2));
    /// ```
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(60),
        multiplier: 2.0,
        jitter: 0.0,
        timeout: None,
        retry_panics: false,
    };

    /// One attempt only: the first error reaches the workflow.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::{RetryPolicy, StepError};
    /// assert!(!RetryPolicy::NO_RETRY.retries(1, &StepError::retryable("timeout")));
    /// ```
    pub const NO_RETRY: RetryPolicy = Self::DEFAULT.max_attempts(1);

    /// [`RetryPolicy::DEFAULT`].
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::RetryPolicy;
    /// assert_eq!(RetryPolicy::new(), RetryPolicy::DEFAULT);
    /// ```
    pub const fn new() -> Self {
        Self::DEFAULT
    }

    /// Sets how many attempts are made in total.
    ///
    /// # Panics
    /// If `n` is 0 (a compile error in a `const`).
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::RetryPolicy;
    /// const FIVE: RetryPolicy = RetryPolicy::new().max_attempts(5);
    /// assert_eq!(FIVE.max_attempts, 5);
    /// ```
    #[must_use]
    pub const fn max_attempts(mut self, n: u32) -> Self {
        assert!(n >= 1, "`max_attempts` must be at least 1");
        self.max_attempts = n;
        self
    }

    /// Sets the wait before the second attempt; raises `max_backoff` to it if that was lower.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workflow_runtime::RetryPolicy;
    /// let p = RetryPolicy::new().initial_backoff(Duration::from_millis(200));
    /// assert_eq!(p.backoff(1, "key"), Duration::from_millis(200));
    /// ```
    #[must_use]
    pub const fn initial_backoff(mut self, d: Duration) -> Self {
        self.initial_backoff = d;
        if self.max_backoff.as_millis() < d.as_millis() {
            self.max_backoff = d;
        }
        self
    }

    /// Sets the longest wait between two attempts.
    ///
    /// # Panics
    /// If `d` is shorter than `initial_backoff` (a compile error in a `const`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workflow_runtime::RetryPolicy;
    /// let p = RetryPolicy::new().max_attempts(10).max_backoff(Duration::from_secs(5));
    /// assert_eq!(p.backoff(9, "key"), Duration::from_secs(5));
    /// ```
    #[must_use]
    pub const fn max_backoff(mut self, d: Duration) -> Self {
        assert!(
            d.as_millis() >= self.initial_backoff.as_millis(),
            "`max_backoff` must not be shorter than `initial_backoff`"
        );
        self.max_backoff = d;
        self
    }

    /// Sets the factor by which the wait grows after each failed attempt.
    ///
    /// # Panics
    /// If `m` is below 1.0 or not finite (a compile error in a `const`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workflow_runtime::RetryPolicy;
    /// let p = RetryPolicy::new().multiplier(3.0);
    /// assert_eq!(p.backoff(2, "key"), Duration::from_secs(3));
    /// ```
    #[must_use]
    pub const fn multiplier(mut self, m: f64) -> Self {
        assert!(
            m.is_finite() && m >= 1.0,
            "`multiplier` must be a finite number of at least 1.0"
        );
        self.multiplier = m;
        self
    }

    /// Sets the fraction by which each wait may be shortened at random.
    ///
    /// # Panics
    /// If `fraction` is outside 0.0..=1.0 (a compile error in a `const`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workflow_runtime::RetryPolicy;
    /// let p = RetryPolicy::new().jitter(0.5);
    /// let wait = p.backoff(1, "order-17/charge#1");
    /// assert!(wait >= Duration::from_millis(500) && wait <= Duration::from_millis(1_500));
    /// // The same invocation always computes the same wait.
    /// assert_eq!(wait, p.backoff(1, "order-17/charge#1"));
    /// ```
    #[must_use]
    pub const fn jitter(mut self, fraction: f64) -> Self {
        assert!(
            fraction >= 0.0 && fraction <= 1.0,
            "`jitter` must be between 0.0 and 1.0"
        );
        self.jitter = fraction;
        self
    }

    /// Sets how long one attempt may run before it is cut off and retried.
    ///
    /// # Panics
    /// If `d` is shorter than a millisecond (a compile error in a `const`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workflow_runtime::RetryPolicy;
    /// let p = RetryPolicy::new().timeout(Duration::from_secs(30));
    /// assert_eq!(p.timeout, Some(Duration::from_secs(30)));
    /// ```
    #[must_use]
    pub const fn timeout(mut self, d: Duration) -> Self {
        assert!(
            d.as_millis() >= 1,
            "`timeout` must be at least one millisecond"
        );
        self.timeout = Some(d);
        self
    }

    /// Lets attempts run as long as they take.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workflow_runtime::RetryPolicy;
    /// let p = RetryPolicy::new().timeout(Duration::from_secs(5)).no_timeout();
    /// assert_eq!(p.timeout, None);
    /// ```
    #[must_use]
    pub const fn no_timeout(mut self) -> Self {
        self.timeout = None;
        self
    }

    /// Sets whether a panicking attempt is retried (by default it is a permanent error).
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::RetryPolicy;
    /// assert!(RetryPolicy::new().retry_panics(true).retry_panics);
    /// ```
    #[must_use]
    pub const fn retry_panics(mut self, retry: bool) -> Self {
        self.retry_panics = retry;
        self
    }

    /// Checks every rule the builder methods enforce, for a policy whose fields were set
    /// directly.
    ///
    /// # Errors
    /// The first rule broken.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::RetryPolicy;
    /// let mut p = RetryPolicy::DEFAULT;
    /// p.multiplier = 0.5;
    /// assert_eq!(p.check().unwrap_err().rule(), "`multiplier` must be a finite number of at least 1.0");
    /// ```
    pub fn check(&self) -> Result<(), PolicyError> {
        if self.max_attempts == 0 {
            return Err(PolicyError {
                rule: "`max_attempts` must be at least 1",
            });
        }
        if self.max_backoff < self.initial_backoff {
            return Err(PolicyError {
                rule: "`max_backoff` must not be shorter than `initial_backoff`",
            });
        }
        if !(self.multiplier.is_finite() && self.multiplier >= 1.0) {
            return Err(PolicyError {
                rule: "`multiplier` must be a finite number of at least 1.0",
            });
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(PolicyError {
                rule: "`jitter` must be between 0.0 and 1.0",
            });
        }
        if self.timeout.is_some_and(|t| t.as_millis() == 0) {
            return Err(PolicyError {
                rule: "`timeout` must be at least one millisecond",
            });
        }
        Ok(())
    }

    /// Whether attempt number `attempt` (from 1), failing with `error`, is tried again.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::{RetryPolicy, StepError};
    /// let p = RetryPolicy::DEFAULT; // 3 attempts
    /// assert!(p.retries(2, &StepError::retryable("the provider timed out")));
    /// assert!(!p.retries(3, &StepError::retryable("the provider timed out")));
    /// assert!(!p.retries(1, &StepError::permanent("card declined")));
    /// ```
    pub fn retries(&self, attempt: u32, error: &StepError) -> bool {
        error.is_retryable() && attempt < self.max_attempts
    }

    /// The wait after attempt number `attempt` (from 1) failed, before the next one.
    ///
    /// The jitter is drawn from a hash of `key` (the step's idempotency key) and the attempt,
    /// so that runs failing together spread out, while the same invocation always computes the
    /// same wait.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workflow_runtime::RetryPolicy;
    /// let p = RetryPolicy::DEFAULT;
    /// let waits: Vec<Duration> = (1..=3).map(|a| p.backoff(a, "key")).collect();
    /// assert_eq!(waits, [Duration::from_secs(1), Duration::from_secs(2), Duration::from_secs(4)]);
    /// ```
    pub fn backoff(&self, attempt: u32, key: &str) -> Duration {
        let initial = self.initial_backoff.as_secs_f64() * 1000.0;
        let max = (self.max_backoff.as_secs_f64() * 1000.0).max(initial);
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let grown = initial * self.multiplier.max(1.0).powi(exponent);
        // NaN (a hand-made policy) and overflow both end at the cap.
        let mut ms = if grown.is_finite() {
            grown.min(max)
        } else {
            max
        };
        let jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        if jitter > 0.0 {
            let h = fnv1a(fnv1a(FNV_OFFSET, key.as_bytes()), &attempt.to_le_bytes());
            // The top 53 bits make a uniform fraction in [0, 1).
            #[allow(clippy::cast_precision_loss)]
            let unit = (h >> 11) as f64 / (1u64 << 53) as f64;
            ms *= 1.0 - jitter * unit;
        }
        Duration::from_millis(ms.round() as u64)
    }
}

/// A `Duration` stored as whole milliseconds, readable in checkpoints and traces.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// An optional `Duration` stored as whole milliseconds.
mod opt_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    #[allow(clippy::ref_option)]
    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::millis::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|ms| ms.map(Duration::from_millis))
    }
}

/// A [`RetryPolicy`] rule broken by a policy whose fields were set directly.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workflow_runtime::RetryPolicy;
/// let mut p = RetryPolicy::DEFAULT;
/// p.timeout = Some(Duration::ZERO);
/// let e = p.check().unwrap_err();
/// assert_eq!(e.to_string(), "`timeout` must be at least one millisecond");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{rule}")]
pub struct PolicyError {
    rule: &'static str,
}

impl PolicyError {
    /// The rule, as one sentence.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::RetryPolicy;
    /// let mut p = RetryPolicy::DEFAULT;
    /// p.jitter = 2.0;
    /// assert_eq!(p.check().unwrap_err().rule(), "`jitter` must be between 0.0 and 1.0");
    /// ```
    pub fn rule(&self) -> &'static str {
        self.rule
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_up_to_the_cap() {
        let p = RetryPolicy::DEFAULT
            .max_attempts(10)
            .max_backoff(Duration::from_secs(5));
        let waits: Vec<u64> = (1..=5)
            .map(|a| u64::try_from(p.backoff(a, "k").as_millis()).unwrap())
            .collect();
        assert_eq!(waits, [1_000, 2_000, 4_000, 5_000, 5_000]);
    }

    #[test]
    fn jitter_only_shortens_and_is_stable_per_key_and_attempt() {
        let p = RetryPolicy::DEFAULT.jitter(0.5);
        let mut distinct = std::collections::BTreeSet::new();
        for i in 0..50 {
            let key = format!("run-{i}:charge:3");
            let w = p.backoff(2, &key);
            assert!(
                w >= Duration::from_secs(1) && w <= Duration::from_secs(2),
                "{w:?}"
            );
            assert_eq!(w, p.backoff(2, &key));
            distinct.insert(w);
        }
        assert!(distinct.len() > 10, "{distinct:?}");
    }

    #[test]
    fn only_retryable_errors_with_attempts_left_are_retried() {
        let p = RetryPolicy::DEFAULT;
        assert!(p.retries(1, &StepError::retryable("rate limited")));
        assert!(p.retries(2, &StepError::retryable("rate limited")));
        assert!(!p.retries(3, &StepError::retryable("rate limited")));
        assert!(!p.retries(1, &StepError::permanent("card declined")));
        assert!(!RetryPolicy::NO_RETRY.retries(1, &StepError::retryable("x")));
    }

    #[test]
    fn builders_keep_the_policy_valid_and_check_catches_direct_edits() {
        let p = RetryPolicy::new().initial_backoff(Duration::from_secs(120));
        assert_eq!(p.max_backoff, Duration::from_secs(120));
        assert_eq!(p.check(), Ok(()));
        let mut bad = RetryPolicy::DEFAULT;
        bad.max_attempts = 0;
        assert!(
            bad.check()
                .unwrap_err()
                .to_string()
                .contains("max_attempts")
        );
        let mut bad = RetryPolicy::DEFAULT;
        bad.multiplier = f64::NAN;
        assert!(bad.check().unwrap_err().to_string().contains("multiplier"));
        assert_eq!(bad.backoff(3, "k"), Duration::from_secs(1));
    }

    #[test]
    #[should_panic(expected = "`jitter` must be between 0.0 and 1.0")]
    fn a_bad_builder_argument_panics_outside_a_const() {
        let _ = RetryPolicy::DEFAULT.jitter(1.5);
    }

    #[test]
    fn the_stored_form_is_readable_and_fills_missing_fields_from_the_default() {
        let p = RetryPolicy::DEFAULT.timeout(Duration::from_secs(30));
        let json = serde_json::to_value(p).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "max_attempts": 3,
                "initial_backoff_ms": 1000,
                "max_backoff_ms": 60000,
                "multiplier": 2.0,
                "jitter": 0.0,
                "timeout_ms": 30000
            })
        );
        assert_eq!(serde_json::from_value::<RetryPolicy>(json).unwrap(), p);
        let sparse: RetryPolicy =
            serde_json::from_value(serde_json::json!({ "max_attempts": 7 })).unwrap();
        assert_eq!(sparse, RetryPolicy::DEFAULT.max_attempts(7));
    }
}
