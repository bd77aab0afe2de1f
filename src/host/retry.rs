//! The one write-retry policy of a hosted run: when a write fails, the trainer pauses (nothing
//! is lost) and the host asks it to try again (`Command::Resume`) after a wait that starts at
//! `first` and doubles after each further failure up to `max`; an evaluation written resets it.

use std::time::{Duration, Instant};

/// How long a host waits before asking a paused trainer to retry its writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub first: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    /// A run in a terminal or in the background: 1 s, 2 s, 4 s … up to 30 s, so that a disk
    /// freed by hand is used again soon.
    pub const INTERACTIVE: RetryPolicy = RetryPolicy {
        first: Duration::from_secs(1),
        max: Duration::from_secs(30),
    };
    /// A sweep cell, one of many on a shared disk: every 30 s.
    pub const SWEEP_CELL: RetryPolicy = RetryPolicy {
        first: Duration::from_secs(30),
        max: Duration::from_secs(30),
    };
}

/// Where a run stands with its retries: the retry due, if any, and the wait after that.
#[derive(Debug, Clone)]
pub struct Retries {
    policy: RetryPolicy,
    due: Option<Instant>,
    wait: Duration,
}

impl Retries {
    pub fn new(policy: RetryPolicy) -> Self {
        Retries {
            policy,
            due: None,
            wait: policy.first,
        }
    }

    /// A write failed at `now`: the next retry is due after the current wait, which grows.
    pub fn failed(&mut self, now: Instant) {
        self.due = Some(now + self.wait);
        self.wait = (self.wait * 2).min(self.policy.max);
    }

    /// A write succeeded: the next failure waits `first` again.
    pub fn written(&mut self) {
        self.wait = self.policy.first;
    }

    /// How long to wait for events before a retry is due (`None`: no retry is waiting).
    pub fn time_left(&self, now: Instant) -> Option<Duration> {
        self.due.map(|t| t.saturating_duration_since(now))
    }

    /// Whether a retry is due at `now`; it counts as taken.
    pub fn take_due(&mut self, now: Instant) -> bool {
        match self.due {
            Some(t) if t <= now => {
                self.due = None;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_up_to_its_limit_and_an_evaluation_resets_it() {
        let mut r = Retries::new(RetryPolicy::INTERACTIVE);
        let t0 = Instant::now();
        assert_eq!(r.time_left(t0), None);
        let mut waits = Vec::new();
        for _ in 0..7 {
            r.failed(t0);
            waits.push(r.time_left(t0).unwrap().as_secs());
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        assert!(!r.take_due(t0));
        assert!(r.take_due(t0 + Duration::from_secs(30)));
        assert_eq!(r.time_left(t0), None, "a retry is taken once");
        r.written();
        r.failed(t0);
        assert_eq!(r.time_left(t0), Some(Duration::from_secs(1)));
    }

    #[test]
    fn a_sweep_cell_retries_every_30_seconds() {
        let mut r = Retries::new(RetryPolicy::SWEEP_CELL);
        let t0 = Instant::now();
        for _ in 0..3 {
            r.failed(t0);
            assert_eq!(r.time_left(t0), Some(Duration::from_secs(30)));
        }
    }
}
