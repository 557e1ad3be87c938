//! Trying again after losing a race to another writer: one policy for the store and for
//! the service above it.

/// How many times an operation is tried while it keeps losing races (a version conflict,
/// a transaction cancelled by a concurrent writer) before it gives up with a retryable
/// error. Each try re-reads what it decides on; the SDK has already retried each call
/// with backoff.
pub const CONFLICT_ATTEMPTS: usize = 4;

/// Counts the tries of an operation that can lose races. What counts as a lost race,
/// and what is re-read, stays with the operation, which runs in a loop and calls
/// [`Retry::lost`] each time it loses:
///
/// ```
/// # use gateway_store::{CONFLICT_ATTEMPTS, Retry};
/// let mut retry = Retry::new(CONFLICT_ATTEMPTS);
/// let mut tries = 0;
/// let out: Result<(), &str> = loop {
///     tries += 1;
///     // ... read, decide, write; a lost race:
///     if let Err(e) = retry.lost("conflict") {
///         break Err(e);
///     }
/// };
/// assert_eq!((out, tries), (Err("conflict"), CONFLICT_ATTEMPTS));
/// ```
#[derive(Debug, Clone)]
pub struct Retry {
    left: usize,
}

impl Retry {
    /// At most `attempts` tries (at least one).
    pub fn new(attempts: usize) -> Self {
        Retry { left: attempts }
    }

    /// The current try lost a race: `Ok` to try again, or `Err(lost)`, the operation's
    /// answer, when no try is left.
    pub fn lost<E>(&mut self, lost: E) -> Result<(), E> {
        self.left = self.left.saturating_sub(1);
        if self.left == 0 { Err(lost) } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_as_many_tries_as_asked_and_at_least_one() {
        let mut retry = Retry::new(3);
        assert_eq!(retry.lost(1), Ok(()));
        assert_eq!(retry.lost(2), Ok(()));
        assert_eq!(retry.lost(3), Err(3));
        assert_eq!(Retry::new(0).lost(9), Err(9));
        assert_eq!(Retry::new(1).lost(9), Err(9));
    }
}
