//! Log lines about misbehaving peers, at a bounded rate.
//!
//! Anyone who can reach the port can make a connection fail (a wrong key,
//! garbage, a handshake left to time out), as fast as they can connect. One
//! log line per failure would let them flood the log and bury what matters.
//! A [`LogBudget`] lets the first few events of each window through one by
//! one and folds the rest into one summary line at the end of the window:
//! at most `burst + 1` lines per window, whatever the peers do.
//!
//! The budget is a pure state machine over the time it is given, so it is
//! tested without waiting.

use std::time::{Duration, Instant};

/// Counts events per window and decides which get a line of their own.
#[derive(Debug)]
pub(crate) struct LogBudget {
    /// What the events are, for the summary: "handshakes failed", say.
    what: &'static str,
    window: Duration,
    burst: u32,
    window_start: Option<Instant>,
    logged: u32,
    suppressed: u64,
    /// The last suppressed event's line, quoted in the summary.
    last: Option<String>,
}

impl LogBudget {
    /// Lets `burst` events per `window` be logged one by one.
    pub(crate) fn new(what: &'static str, window: Duration, burst: u32) -> Self {
        LogBudget {
            what,
            window,
            burst,
            window_start: None,
            logged: 0,
            suppressed: 0,
            last: None,
        }
    }

    /// Records an event at `now`, described by `line`. Returns the lines to log, in order: the summary of an
    /// earlier window that just ended, if any, then this event's own line if
    /// the budget allows it.
    pub(crate) fn record(&mut self, now: Instant, line: String) -> Vec<String> {
        let mut lines: Vec<String> = self.summary_due(now).into_iter().collect();
        let start = *self.window_start.get_or_insert(now);
        debug_assert!(now >= start);
        if self.logged < self.burst {
            self.logged += 1;
            lines.push(line);
        } else {
            self.suppressed += 1;
            self.last = Some(line);
        }
        lines
    }

    /// The summary of the current window if it has ended (or `now` is the
    /// end, as at shutdown: pass `force`), and starts a new one.
    pub(crate) fn flush(&mut self, now: Instant, force: bool) -> Option<String> {
        if force {
            let summary = self.summary(now);
            self.reset();
            return summary;
        }
        self.summary_due(now)
    }

    fn summary_due(&mut self, now: Instant) -> Option<String> {
        let start = self.window_start?;
        if now.saturating_duration_since(start) < self.window {
            return None;
        }
        let summary = self.summary(now);
        self.reset();
        summary
    }

    fn summary(&self, now: Instant) -> Option<String> {
        let start = self.window_start?;
        if self.suppressed == 0 {
            return None;
        }
        let seconds = now.saturating_duration_since(start).as_secs_f64();
        let last = self.last.as_deref().unwrap_or("");
        Some(format!(
            "{} more {} in the last {seconds:.0} s (not logged one by one); the last: {last}",
            self.suppressed, self.what
        ))
    }

    fn reset(&mut self) {
        self.window_start = None;
        self.logged = 0;
        self.suppressed = 0;
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget() -> LogBudget {
        LogBudget::new("handshakes failed", Duration::from_secs(10), 3)
    }

    #[test]
    fn the_first_events_of_a_window_are_logged_one_by_one() {
        let mut budget = budget();
        let t0 = Instant::now();
        for i in 0..3 {
            let lines = budget.record(t0 + Duration::from_secs(i), format!("event {i}"));
            assert_eq!(lines, [format!("event {i}")]);
        }
    }

    #[test]
    fn a_flood_costs_the_burst_and_one_summary_per_window() {
        let mut budget = budget();
        let t0 = Instant::now();
        let mut lines = Vec::new();
        // 1,000 events within one window.
        for i in 0..1000u64 {
            let at = t0 + Duration::from_millis(i * 5);
            lines.extend(budget.record(at, format!("from 10.0.0.1:{i}: wrong key")));
        }
        assert_eq!(lines.len(), 3, "{lines:?}");
        // The next event after the window: the summary, then its own line.
        let lines = budget.record(t0 + Duration::from_secs(11), "later".to_owned());
        assert_eq!(
            lines,
            [
                "997 more handshakes failed in the last 11 s (not logged one by one); \
                 the last: from 10.0.0.1:999: wrong key"
                    .to_owned(),
                "later".to_owned()
            ]
        );
    }

    #[test]
    fn a_quiet_window_ends_without_a_summary() {
        let mut budget = budget();
        let t0 = Instant::now();
        budget.record(t0, "one".to_owned());
        assert_eq!(budget.flush(t0 + Duration::from_secs(20), false), None);
        assert_eq!(budget.flush(t0 + Duration::from_secs(20), true), None);
    }

    #[test]
    fn flush_reports_a_window_that_ended_or_is_forced_at_shutdown() {
        let mut budget = budget();
        let t0 = Instant::now();
        for _ in 0..5 {
            budget.record(t0, "x".to_owned());
        }
        assert_eq!(budget.flush(t0 + Duration::from_secs(1), false), None);
        let forced = budget.flush(t0 + Duration::from_secs(2), true);
        assert_eq!(
            forced.as_deref(),
            Some("2 more handshakes failed in the last 2 s (not logged one by one); the last: x")
        );
        // Forced flushing started a new window.
        assert_eq!(
            budget.record(t0 + Duration::from_secs(3), "y".to_owned()),
            ["y"]
        );
    }
}
