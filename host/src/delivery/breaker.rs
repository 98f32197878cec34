//! A per-endpoint circuit breaker, so a dead endpoint costs nothing: after
//! enough failures in a window it opens (no attempts at all), after a pause
//! it lets one probe through (half-open), and the probe's outcome closes it
//! or opens it again for longer. Only failures worth retrying count (no
//! answer, timeouts, 5xx, 429): an endpoint answering 4xx is up.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// When the breaker opens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    /// Share of failures in the window that opens it.
    pub failure_ratio: f64,
    /// Fewest outcomes in the window before it may open.
    pub min_requests: usize,
    /// The window outcomes are counted over.
    pub window: Duration,
    /// The first pause when open; doubles on each failed probe.
    pub open_for: Duration,
    /// The longest pause.
    pub max_open_for: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_ratio: 0.5,
            min_requests: 10,
            window: Duration::from_secs(30),
            open_for: Duration::from_secs(5),
            max_open_for: Duration::from_secs(300),
        }
    }
}

/// Where the breaker is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BreakerState {
    /// Attempts flow.
    #[default]
    Closed,
    /// No attempts until the pause ends.
    Open,
    /// One probe is allowed.
    HalfOpen,
}

impl BreakerState {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        }
    }
}

/// Outcomes counted in one slice of the window.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    start: Instant,
    total: u32,
    failures: u32,
}

/// Slices per window: the window slides in steps of a tenth of itself, and
/// recording an outcome costs the same however many attempts it holds.
const BUCKETS: u32 = 10;

/// The breaker.
#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    buckets: VecDeque<Bucket>,
    total: u64,
    failures: u64,
    state: BreakerState,
    open_until: Option<Instant>,
    pause: Duration,
    probe_in_flight: bool,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            buckets: VecDeque::new(),
            total: 0,
            failures: 0,
            state: BreakerState::Closed,
            open_until: None,
            pause: config.open_for,
            probe_in_flight: false,
        }
    }

    /// Use new settings (keeps the current state).
    pub fn reconfigure(&mut self, config: BreakerConfig) {
        self.config = config;
    }

    /// The state at `now`.
    pub fn state(&mut self, now: Instant) -> BreakerState {
        if self.state == BreakerState::Open && self.open_until.is_some_and(|until| now >= until) {
            self.state = BreakerState::HalfOpen;
            self.probe_in_flight = false;
        }
        self.state
    }

    /// When an open breaker will let a probe through.
    pub fn reopens_at(&self) -> Option<Instant> {
        (self.state == BreakerState::Open)
            .then_some(self.open_until)
            .flatten()
    }

    /// Whether an attempt may start now (a half-open breaker allows one).
    pub fn try_acquire(&mut self, now: Instant) -> bool {
        match self.state(now) {
            BreakerState::Closed => true,
            BreakerState::Open => false,
            BreakerState::HalfOpen if self.probe_in_flight => false,
            BreakerState::HalfOpen => {
                self.probe_in_flight = true;
                true
            }
        }
    }

    /// Record an attempt's outcome: `healthy` unless it is a failure worth retrying.
    pub fn record(&mut self, now: Instant, healthy: bool) {
        match self.state(now) {
            BreakerState::HalfOpen => {
                self.probe_in_flight = false;
                if healthy {
                    self.state = BreakerState::Closed;
                    self.pause = self.config.open_for;
                    self.forget();
                } else {
                    self.pause = (self.pause * 2).min(self.config.max_open_for);
                    self.open(now);
                }
            }
            BreakerState::Open => {}
            BreakerState::Closed => {
                self.count(now, healthy);
                if self.total >= self.config.min_requests as u64
                    && self.failures as f64 >= self.config.failure_ratio * self.total as f64
                {
                    self.open(now);
                }
            }
        }
    }

    /// Add an outcome at `now`, dropping the slices that left the window.
    fn count(&mut self, now: Instant, healthy: bool) {
        while let Some(oldest) = self.buckets.front()
            && now.duration_since(oldest.start) > self.config.window
        {
            self.total -= u64::from(oldest.total);
            self.failures -= u64::from(oldest.failures);
            self.buckets.pop_front();
        }
        let width = (self.config.window / BUCKETS).max(Duration::from_millis(1));
        match self.buckets.back_mut() {
            Some(bucket) if now.duration_since(bucket.start) < width => {
                bucket.total += 1;
                bucket.failures += u32::from(!healthy);
            }
            _ => self.buckets.push_back(Bucket {
                start: now,
                total: 1,
                failures: u32::from(!healthy),
            }),
        }
        self.total += 1;
        self.failures += u64::from(!healthy);
    }

    fn forget(&mut self) {
        self.buckets.clear();
        self.total = 0;
        self.failures = 0;
    }

    fn open(&mut self, now: Instant) {
        self.state = BreakerState::Open;
        self.open_until = Some(now + self.pause);
        self.forget();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BreakerConfig {
        BreakerConfig {
            failure_ratio: 0.5,
            min_requests: 4,
            window: Duration::from_secs(10),
            open_for: Duration::from_secs(1),
            max_open_for: Duration::from_secs(4),
        }
    }

    #[test]
    fn opens_after_enough_failures_then_probes() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(config());
        for _ in 0..3 {
            assert!(breaker.try_acquire(t0));
            breaker.record(t0, false);
        }
        assert_eq!(
            breaker.state(t0),
            BreakerState::Closed,
            "too few outcomes to judge"
        );
        breaker.record(t0, false);
        assert_eq!(breaker.state(t0), BreakerState::Open);
        assert!(!breaker.try_acquire(t0 + Duration::from_millis(999)));
        let later = t0 + Duration::from_secs(1);
        assert!(breaker.try_acquire(later), "one probe when half-open");
        assert!(!breaker.try_acquire(later), "only one");
        breaker.record(later, false);
        assert_eq!(breaker.state(later), BreakerState::Open);
        assert_eq!(
            breaker.reopens_at(),
            Some(later + Duration::from_secs(2)),
            "the pause doubles"
        );
        let probe = later + Duration::from_secs(2);
        assert!(breaker.try_acquire(probe));
        breaker.record(probe, true);
        assert_eq!(breaker.state(probe), BreakerState::Closed);
    }

    #[test]
    fn outcomes_leave_the_window() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(config());
        for _ in 0..3 {
            breaker.record(t0, false);
        }
        // 11 s later those three failures are out of the 10 s window.
        let later = t0 + Duration::from_secs(11);
        for _ in 0..3 {
            breaker.record(later, false);
        }
        assert_eq!(breaker.state(later), BreakerState::Closed);
        breaker.record(later, false);
        assert_eq!(breaker.state(later), BreakerState::Open);
    }

    #[test]
    fn a_million_outcomes_cost_a_few_buckets() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(config());
        for i in 0..1_000_000u64 {
            breaker.record(t0 + Duration::from_micros(i * 30), true);
        }
        assert!(breaker.buckets.len() <= BUCKETS as usize + 1);
        assert_eq!(breaker.failures, 0);
    }

    #[test]
    fn healthy_traffic_keeps_it_closed() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(config());
        for i in 0..100 {
            breaker.record(t0, i % 4 != 0);
        }
        assert_eq!(breaker.state(t0), BreakerState::Closed);
    }
}
