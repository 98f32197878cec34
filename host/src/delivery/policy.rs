//! Retry policies: when to try again, and whether an answer counts as
//! delivered, as each provider does it (FORMATS.md §5.5; each provider's
//! own is in its module under `providers/`), overridable per endpoint.
//! Small pure functions; the dispatcher applies them.
//!
//! | format    | success     | retried on                         | schedule                                 |
//! |-----------|-------------|------------------------------------|------------------------------------------|
//! | waha      | 2xx         | network errors, timeouts, 5xx, 429 | constant/linear/exponential, 2 s × 15    |
//! | wahooks   | 2xx         | anything else                      | 5 attempts: gaps 5, 10, 20, 40 s         |
//! | eazewa    | 2xx         | timeouts / no response only        | every 3 s, no limit (capped at 24 h)     |
//! | green-api | exactly 200 | anything else                      | every 60 s for up to 24 h                |
//! | meta      | exactly 200 | anything else                      | gaps growing 15 s → 8 h, for up to 7 days |
//! | other     | 2xx         | network errors, timeouts, 5xx, 429 | exponential from 2 s, 10 attempts        |
//!
//! On top of every policy: `Retry-After` on 429/503 is honoured (capped),
//! `410 Gone` is final, and 3xx is a failure (redirects are not followed).

use std::time::Duration;

use crate::config::{RetriesConfig, RetryPolicyKind};

/// Longest `Retry-After` wasp honours.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// What an answer (or its absence) means for a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Delivered.
    Delivered,
    /// Try again (after the given delay if the receiver asked for one).
    Retry(Option<Duration>),
    /// Give up: the answer is final.
    Fail,
    /// Give up and stop sending to this endpoint (`410 Gone`).
    Gone,
}

/// What happened on one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// The receiver answered with this status (and maybe `Retry-After`).
    Status(u16, Option<Duration>),
    /// No answer within the timeout.
    Timeout,
    /// Could not connect or the connection broke.
    Network,
}

/// Which failures are worth another attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryOn {
    /// Network errors, timeouts, 5xx and 429 (WAHA, generic).
    TransientErrors,
    /// Anything but success (WAHooks, Green-API).
    AnyFailure,
    /// Only timeouts and network errors; any status is final (eazeWA).
    NoResponseOnly,
}

/// How far apart attempts are.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// The same delay every time.
    Constant(Duration),
    /// delay × attempt number.
    Linear(Duration),
    /// delay × 2^(n−1), ±`jitter` (a fraction).
    Exponential { delay: Duration, jitter: f64 },
    /// Explicit gaps; the last one repeats.
    Gaps(Vec<Duration>),
}

/// A complete retry policy.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Gaps between attempts.
    pub schedule: Schedule,
    /// Most attempts, the first included (`None`: until `max_age`).
    pub attempts: Option<u32>,
    /// Stop retrying this long after the first attempt.
    pub max_age: Duration,
    /// Which failures are retried.
    pub retry_on: RetryOn,
    /// Whether any 2xx counts as delivered (else only 200).
    pub any_2xx: bool,
}

/// A day, the longest most providers keep retrying.
pub const DAY: Duration = Duration::from_secs(24 * 3600);

impl RetryPolicy {
    /// The provider's own behaviour for built-in format `format`
    /// ([`Provider::retry_policy`](crate::providers::Provider::retry_policy)),
    /// else [`generic`](Self::generic).
    pub fn for_format(format: &str) -> Self {
        crate::providers::by_name(format).map_or_else(Self::generic, |p| p.retry_policy())
    }

    /// Any other format: exponential from 2 s (±20 %), 10 attempts, on
    /// network errors, timeouts, 5xx and 429.
    pub fn generic() -> Self {
        Self {
            schedule: Schedule::Exponential {
                delay: Duration::from_secs(2),
                jitter: 0.2,
            },
            attempts: Some(10),
            max_age: DAY,
            retry_on: RetryOn::TransientErrors,
            any_2xx: true,
        }
    }

    /// `for_format(format)` with an endpoint's `retries:` overrides.
    pub fn resolve(format: &str, overrides: &RetriesConfig) -> Self {
        let mut policy = Self::for_format(format);
        let base_delay = overrides
            .delay
            .map(|d| d.0)
            .unwrap_or_else(|| policy.schedule.base());
        if overrides.policy.is_some() || overrides.delay.is_some() {
            policy.schedule = match overrides.policy {
                Some(RetryPolicyKind::Constant) => Schedule::Constant(base_delay),
                Some(RetryPolicyKind::Linear) => Schedule::Linear(base_delay),
                Some(RetryPolicyKind::Exponential) => Schedule::Exponential {
                    delay: base_delay,
                    jitter: 0.2,
                },
                None => policy.schedule.with_base(base_delay),
            };
        }
        if let Some(attempts) = overrides.attempts {
            policy.attempts = Some(attempts);
        }
        policy
    }

    /// Judge one attempt.
    pub fn judge(&self, result: AttemptResult) -> Verdict {
        match result {
            AttemptResult::Status(status, retry_after) => {
                let success = if self.any_2xx {
                    (200..300).contains(&status)
                } else {
                    status == 200
                };
                if success {
                    return Verdict::Delivered;
                }
                if status == 410 {
                    return Verdict::Gone;
                }
                let asked = if matches!(status, 429 | 503) {
                    retry_after.map(|d| d.min(MAX_RETRY_AFTER))
                } else {
                    None
                };
                let retry = match self.retry_on {
                    RetryOn::AnyFailure => true,
                    RetryOn::NoResponseOnly => false,
                    RetryOn::TransientErrors => status >= 500 || status == 429,
                };
                if retry {
                    Verdict::Retry(asked)
                } else {
                    Verdict::Fail
                }
            }
            AttemptResult::Timeout | AttemptResult::Network => Verdict::Retry(None),
        }
    }

    /// The delay before attempt `next` (2 for the first retry), or `None`
    /// when no attempt is left. `age` is the time since the first attempt;
    /// `random` is a number in [0, 1) for jitter.
    pub fn next_delay(&self, next: u32, age: Duration, random: f64) -> Option<Duration> {
        if self.attempts.is_some_and(|max| next > max) {
            return None;
        }
        let delay = self.schedule.delay(next - 1, random);
        (age + delay <= self.max_age).then_some(delay)
    }
}

impl Schedule {
    /// The gap after retry number `retry` (1 = after the first attempt).
    pub fn delay(&self, retry: u32, random: f64) -> Duration {
        let retry = retry.max(1);
        match self {
            Schedule::Constant(delay) => *delay,
            Schedule::Linear(delay) => delay.saturating_mul(retry),
            Schedule::Exponential { delay, jitter } => {
                let base = delay.as_secs_f64() * 2f64.powi((retry - 1).min(30) as i32);
                let factor = 1.0 + jitter * (2.0 * random - 1.0);
                Duration::from_secs_f64((base * factor).min(DAY.as_secs_f64()))
            }
            Schedule::Gaps(gaps) => gaps
                .get(retry as usize - 1)
                .or(gaps.last())
                .copied()
                .unwrap_or(Duration::from_secs(1)),
        }
    }

    fn base(&self) -> Duration {
        match self {
            Schedule::Constant(d)
            | Schedule::Linear(d)
            | Schedule::Exponential { delay: d, .. } => *d,
            Schedule::Gaps(gaps) => gaps.first().copied().unwrap_or(Duration::from_secs(1)),
        }
    }

    fn with_base(&self, base: Duration) -> Schedule {
        match self {
            Schedule::Constant(_) => Schedule::Constant(base),
            Schedule::Linear(_) => Schedule::Linear(base),
            Schedule::Exponential { jitter, .. } => Schedule::Exponential {
                delay: base,
                jitter: *jitter,
            },
            Schedule::Gaps(gaps) => {
                let scale = base.as_secs_f64() / gaps.first().map_or(1.0, Duration::as_secs_f64);
                Schedule::Gaps(gaps.iter().map(|g| g.mul_f64(scale)).collect())
            }
        }
    }
}

/// Parse a `Retry-After` header: seconds, or an HTTP date.
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::units::Span;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn schedule(policy: &RetryPolicy) -> Vec<u64> {
        (2..=30)
            .map_while(|n| policy.next_delay(n, Duration::ZERO, 0.5))
            .map(|d| d.as_secs())
            .collect()
    }

    #[test]
    fn provider_schedules() {
        assert_eq!(schedule(&RetryPolicy::for_format("waha")), vec![2; 14]);
        assert_eq!(
            schedule(&RetryPolicy::for_format("wahooks")),
            vec![5, 10, 20, 40]
        );
        let overrides = RetriesConfig {
            policy: Some(RetryPolicyKind::Linear),
            delay: None,
            attempts: Some(5),
        };
        assert_eq!(
            schedule(&RetryPolicy::resolve("waha", &overrides)),
            vec![2, 4, 6, 8]
        );
        let overrides = RetriesConfig {
            policy: Some(RetryPolicyKind::Exponential),
            delay: Some(Span(secs(1))),
            attempts: Some(6),
        };
        assert_eq!(
            schedule(&RetryPolicy::resolve("waha", &overrides)),
            vec![1, 2, 4, 8, 16]
        );
    }

    #[test]
    fn exponential_jitter_stays_within_twenty_percent() {
        let policy = RetryPolicy::for_format("other");
        let low = policy
            .next_delay(4, Duration::ZERO, 0.0)
            .unwrap()
            .as_secs_f64();
        let high = policy
            .next_delay(4, Duration::ZERO, 0.999)
            .unwrap()
            .as_secs_f64();
        assert!((6.39..=6.41).contains(&low), "{low}");
        assert!((9.58..=9.61).contains(&high), "{high}");
    }

    #[test]
    fn unbounded_policies_stop_at_max_age() {
        let green = RetryPolicy::for_format("green-api");
        assert_eq!(
            green.next_delay(1000, Duration::from_secs(3600), 0.0),
            Some(secs(60))
        );
        assert_eq!(green.next_delay(1000, DAY - secs(30), 0.0), None);
    }

    #[test]
    fn meta_retries_less_and_less_often_for_seven_days() {
        let meta = RetryPolicy::for_format("meta");
        assert_eq!(
            meta.judge(AttemptResult::Status(204, None)),
            Verdict::Retry(None)
        );
        assert_eq!(
            meta.judge(AttemptResult::Status(200, None)),
            Verdict::Delivered
        );
        assert_eq!(meta.next_delay(2, secs(0), 0.5), Some(secs(15)));
        assert_eq!(meta.next_delay(12, secs(3600), 0.5), Some(secs(8 * 3600)));
        assert_eq!(meta.next_delay(40, 7 * DAY - secs(60), 0.5), None);
        let mut age = Duration::ZERO;
        let mut attempts = 1;
        while let Some(delay) = meta.next_delay(attempts + 1, age, 0.5) {
            age += delay;
            attempts += 1;
        }
        assert!(age <= 7 * DAY && age > 6 * DAY, "{age:?}");
        assert_eq!(attempts, 31, "attempts in 7 days");
    }

    #[test]
    fn verdicts() {
        let waha = RetryPolicy::for_format("waha");
        assert_eq!(
            waha.judge(AttemptResult::Status(204, None)),
            Verdict::Delivered
        );
        assert_eq!(
            waha.judge(AttemptResult::Status(500, None)),
            Verdict::Retry(None)
        );
        assert_eq!(waha.judge(AttemptResult::Status(404, None)), Verdict::Fail);
        assert_eq!(waha.judge(AttemptResult::Status(301, None)), Verdict::Fail);
        assert_eq!(waha.judge(AttemptResult::Status(410, None)), Verdict::Gone);
        assert_eq!(
            waha.judge(AttemptResult::Status(429, Some(secs(7)))),
            Verdict::Retry(Some(secs(7)))
        );
        assert_eq!(
            waha.judge(AttemptResult::Status(503, Some(secs(9999)))),
            Verdict::Retry(Some(MAX_RETRY_AFTER))
        );
        assert_eq!(waha.judge(AttemptResult::Timeout), Verdict::Retry(None));

        let wahooks = RetryPolicy::for_format("wahooks");
        assert_eq!(
            wahooks.judge(AttemptResult::Status(404, None)),
            Verdict::Retry(None)
        );

        let eazewa = RetryPolicy::for_format("eazewa");
        assert_eq!(
            eazewa.judge(AttemptResult::Status(500, None)),
            Verdict::Fail
        );
        assert_eq!(eazewa.judge(AttemptResult::Network), Verdict::Retry(None));

        let green = RetryPolicy::for_format("green-api");
        assert_eq!(
            green.judge(AttemptResult::Status(204, None)),
            Verdict::Retry(None)
        );
        assert_eq!(
            green.judge(AttemptResult::Status(200, None)),
            Verdict::Delivered
        );
    }

    #[test]
    fn retry_after_forms() {
        let now = std::time::UNIX_EPOCH + secs(1_000_000);
        assert_eq!(parse_retry_after("120", now), Some(secs(120)));
        let later = httpdate::fmt_http_date(now + secs(30));
        assert_eq!(parse_retry_after(&later, now), Some(secs(30)));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
