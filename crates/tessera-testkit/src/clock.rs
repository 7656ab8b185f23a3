//! A clock for tests: it stands still until told to move.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use tessera_domain::clock::{Clock, UnixTime};

/// A settable, advanceable [`Clock`]. Clones share one time, so a test can keep a handle while
/// the code under test holds another (or an `Arc<dyn Clock>`).
#[derive(Clone, Debug)]
pub struct FakeClock(Arc<AtomicI64>);

impl FakeClock {
    /// A clock showing `start`.
    pub fn new(start: UnixTime) -> FakeClock {
        FakeClock(Arc::new(AtomicI64::new(start.0)))
    }

    /// Sets the time (it may go backwards, to test that code copes).
    pub fn set(&self, to: UnixTime) {
        self.0.store(to.0, Ordering::SeqCst);
    }

    /// Moves the time by `seconds` (saturating) and returns the new time.
    pub fn advance(&self, seconds: i64) -> UnixTime {
        let mut current = self.0.load(Ordering::SeqCst);
        loop {
            let next = current.saturating_add(seconds);
            match self
                .0
                .compare_exchange(current, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return UnixTime(next),
                Err(seen) => current = seen,
            }
        }
    }
}

impl Default for FakeClock {
    /// A clock at 2023-11-14T22:13:20Z (1 700 000 000), far from the epoch and from overflow.
    fn default() -> Self {
        FakeClock::new(UnixTime(1_700_000_000))
    }
}

impl Clock for FakeClock {
    fn now(&self) -> UnixTime {
        UnixTime(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_one_time() {
        let clock = FakeClock::new(UnixTime(100));
        let shared: Arc<dyn Clock> = Arc::new(clock.clone());
        assert_eq!(shared.now(), UnixTime(100));
        assert_eq!(clock.advance(5), UnixTime(105));
        assert_eq!(shared.now(), UnixTime(105));
        clock.set(UnixTime(7));
        assert_eq!(shared.now(), UnixTime(7));
        clock.set(UnixTime(i64::MAX - 1));
        assert_eq!(clock.advance(10), UnixTime(i64::MAX));
        assert_eq!(FakeClock::default().now(), UnixTime(1_700_000_000));
    }
}
