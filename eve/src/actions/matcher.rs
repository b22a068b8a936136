//! Which alerts an action takes, and how often.

use super::ActionConfig;
use crate::event::{Alert, AlertCategory};
use std::time::Instant;

/// An action's filter: categories and severity.
pub(super) struct Matcher {
    categories: Vec<AlertCategory>,
    min_severity: u8,
}

impl Matcher {
    pub(super) fn new(config: &ActionConfig) -> Self {
        Matcher {
            categories: config.categories.clone(),
            min_severity: config.min_severity,
        }
    }

    /// Whether `alert` is in the categories (any, when none are given) and
    /// at least as severe as the threshold (1 is the most severe).
    pub(super) fn matches(&self, alert: &Alert) -> bool {
        alert.severity <= self.min_severity
            && (self.categories.is_empty() || self.categories.contains(&alert.category))
    }
}

/// A token bucket of `per_minute` tokens refilled evenly over a minute.
/// Written here: ten lines, where the rate-limiting crates bring clocks and
/// keyed stores this does not need.
pub(super) struct RateLimit {
    per_minute: u32,
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    /// A full bucket; `0` means unlimited.
    pub(super) fn per_minute(per_minute: u32) -> Self {
        RateLimit {
            per_minute,
            tokens: f64::from(per_minute),
            last: Instant::now(),
        }
    }

    /// Take a token if there is one.
    pub(super) fn take(&mut self) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let now = Instant::now();
        let cap = f64::from(self.per_minute);
        let refill = now.duration_since(self.last).as_secs_f64() * cap / 60.0;
        self.tokens = (self.tokens + refill).min(cap);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(category: AlertCategory, severity: u8) -> Alert {
        Alert::new("x", 1, category, severity)
    }

    #[test]
    fn severity_one_is_highest() {
        let mut c = ActionConfig::named("a");
        c.min_severity = 2;
        c.categories = vec![AlertCategory::WeightsKnown];
        let m = Matcher::new(&c);
        assert!(m.matches(&alert(AlertCategory::WeightsKnown, 1)));
        assert!(m.matches(&alert(AlertCategory::WeightsKnown, 2)));
        assert!(!m.matches(&alert(AlertCategory::WeightsKnown, 3)));
        assert!(!m.matches(&alert(AlertCategory::EgressVolume, 1)));
    }

    #[test]
    fn bucket_empties() {
        let mut r = RateLimit::per_minute(3);
        let taken = (0..10).filter(|_| r.take()).count();
        assert_eq!(taken, 3);
        assert!((0..100).all(|_| RateLimit::per_minute(0).take()));
    }
}
