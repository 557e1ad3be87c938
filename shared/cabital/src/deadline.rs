//! The time an invocation has left, passed down to every call that must end within it.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Below this a Lambda deadline cannot be wall-clock milliseconds (it would be before
/// 2001): `cargo lambda watch` sends a fixed `600000`, meant as ten minutes from now.
const WALL_CLOCK_MS_FLOOR: u64 = 1_000_000_000_000;

/// Lambda's longest timeout: the most a deadline read as relative may give.
const LONGEST_INVOCATION: Duration = Duration::from_secs(15 * 60);

/// When work must be done: an instant, or none (a caller with no deadline of its own,
/// such as a test or a command-line tool, gets the client's own limits only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    /// No deadline.
    pub const NONE: Deadline = Deadline(None);

    /// At `instant`.
    pub fn at(instant: Instant) -> Self {
        Deadline(Some(instant))
    }

    /// `duration` from now.
    pub fn after(duration: Duration) -> Self {
        Deadline(Some(Instant::now() + duration))
    }

    /// The deadline of a Lambda invocation, as its context gives it (`deadline`, in
    /// milliseconds since the Unix epoch). `0` (a context built by hand) is none; a value
    /// too small to be wall-clock time (a local emulator's) is milliseconds from now.
    pub fn from_lambda_ms(deadline_ms: u64) -> Self {
        if deadline_ms == 0 {
            return Deadline::NONE;
        }
        if deadline_ms < WALL_CLOCK_MS_FLOOR {
            return Deadline::after(Duration::from_millis(deadline_ms).min(LONGEST_INVOCATION));
        }
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        Deadline::after(Duration::from_millis(deadline_ms.saturating_sub(now_ms)))
    }

    /// The instant, if there is a deadline.
    pub fn instant(self) -> Option<Instant> {
        self.0
    }

    /// The time left (zero once past), or `None` without a deadline.
    pub fn left(self) -> Option<Duration> {
        self.0.map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// This deadline brought forward by `reserve`: the time kept for what must follow.
    pub fn less(self, reserve: Duration) -> Self {
        // Near the clock's origin the subtraction cannot be made: then no time is left.
        Deadline(self.0.map(|at| at.checked_sub(reserve).unwrap_or_else(|| at.min(Instant::now()))))
    }

    /// The earlier of the two (a deadline is earlier than none).
    pub fn min(self, other: Deadline) -> Self {
        match (self.0, other.0) {
            (Some(a), Some(b)) => Deadline(Some(a.min(b))),
            (a, b) => Deadline(a.or(b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn left(d: Deadline) -> Duration {
        d.left().unwrap()
    }

    #[test]
    fn a_lambda_deadline_is_wall_clock_or_a_local_emulators_relative_one() {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let lambda = left(Deadline::from_lambda_ms(now_ms + 29_000));
        assert!(lambda > Duration::from_secs(28) && lambda <= Duration::from_secs(29), "{lambda:?}");
        assert_eq!(left(Deadline::from_lambda_ms(now_ms - 1_000)), Duration::ZERO);
        let local = left(Deadline::from_lambda_ms(600_000));
        assert!(local > Duration::from_secs(595) && local <= Duration::from_secs(600), "{local:?}");
        assert!(left(Deadline::from_lambda_ms(WALL_CLOCK_MS_FLOOR - 1)) <= LONGEST_INVOCATION);
        assert_eq!(Deadline::from_lambda_ms(0), Deadline::NONE);
    }

    #[test]
    fn a_reserve_brings_the_deadline_forward_and_none_stays_none() {
        let d = Deadline::after(Duration::from_secs(10));
        let less = left(d.less(Duration::from_secs(4)));
        assert!(less > Duration::from_secs(5) && less <= Duration::from_secs(6), "{less:?}");
        assert_eq!(left(d.less(Duration::from_secs(60))), Duration::ZERO);
        assert_eq!(Deadline::NONE.less(Duration::from_secs(4)), Deadline::NONE);
        assert_eq!(Deadline::NONE.left(), None);
        let soon = Deadline::after(Duration::from_secs(1));
        assert_eq!(d.min(soon), soon);
        assert_eq!(Deadline::NONE.min(soon), soon);
        assert_eq!(soon.min(Deadline::NONE), soon);
    }
}
