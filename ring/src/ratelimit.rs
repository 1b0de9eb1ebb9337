//! A log-line budget: at most [`LINES_PER_WINDOW`] lines per [`WINDOW`], the rest counted and
//! reported with the next line let through. A corrupt ring can reject every slot it holds, many
//! times a second; this keeps that from becoming gigabytes of log.

use std::time::{Duration, Instant};

/// Lines let through per window.
pub const LINES_PER_WINDOW: u32 = 3;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(1);

/// The budget of one kind of log line.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogLimit {
    window: Option<Instant>,
    lines: u32,
    suppressed: u64,
}

impl LogLimit {
    /// A fresh budget.
    pub const fn new() -> Self {
        Self { window: None, lines: 0, suppressed: 0 }
    }

    /// May a line be logged at `now`? `Some(n)`: yes, and `n` lines were suppressed since the last
    /// one let through (say so in the line); `None`: no (it is counted).
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        if self.window.is_none_or(|w| now.saturating_duration_since(w) >= WINDOW) {
            self.window = Some(now);
            self.lines = 0;
        }
        if self.lines < LINES_PER_WINDOW {
            self.lines += 1;
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed = self.suppressed.saturating_add(1);
            None
        }
    }

    /// Lines suppressed and not yet reported.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

/// `""`, or `" (N similar lines suppressed)"` for a line [`LogLimit::allow`]ed with `n`.
pub fn suppressed_note(n: u64) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" ({n} similar line(s) suppressed)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_lines_a_second_and_the_rest_counted() {
        let mut l = LogLimit::new();
        let t0 = Instant::now();
        let allowed = (0..1000).filter(|_| l.allow(t0).is_some()).count();
        assert_eq!(allowed, 3);
        assert_eq!(l.suppressed(), 997);
        assert_eq!(l.allow(t0 + Duration::from_millis(999)), None);
        assert_eq!(l.allow(t0 + WINDOW), Some(998), "the next window reports what was held back");
        assert_eq!(l.allow(t0 + WINDOW), Some(0));
        assert_eq!(suppressed_note(0), "");
        assert_eq!(suppressed_note(2), " (2 similar line(s) suppressed)");
    }
}
