//! Login throttling per client address and per account name (OWASP ASVS V2.2.1), with
//! governor's keyed GCRA limiters. Per node: a cluster of N nodes allows up to N times the
//! rate, which the account lock (stored, shared) bounds anyway.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::ThrottleConfig;

/// The two login limiters.
pub(crate) struct Throttle {
    by_ip: DefaultKeyedRateLimiter<String>,
    by_account: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

fn quota(per_minute: u32, burst: u32) -> Quota {
    let per_minute = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(per_minute).allow_burst(burst)
}

impl Throttle {
    pub(crate) fn new(config: &ThrottleConfig) -> Throttle {
        Throttle {
            by_ip: RateLimiter::keyed(quota(config.per_ip_per_minute, config.per_ip_burst)),
            by_account: RateLimiter::keyed(quota(
                config.per_account_per_minute,
                config.per_account_burst,
            )),
            clock: DefaultClock::default(),
        }
    }

    /// Admits one login attempt, or says how long to wait.
    pub(crate) fn admit(&self, ip: Option<&str>, username: &str) -> Result<(), Duration> {
        let key = username.to_ascii_lowercase();
        let key: String = key.chars().take(64).collect();
        if let Some(ip) = ip
            && let Err(not_until) = self.by_ip.check_key(&ip.to_owned())
        {
            return Err(not_until.wait_time_from(self.clock.now()));
        }
        if let Err(not_until) = self.by_account.check_key(&key) {
            return Err(not_until.wait_time_from(self.clock.now()));
        }
        Ok(())
    }

    /// Forgets keys whose limits have fully recovered, bounding memory under a flood of names.
    pub(crate) fn prune(&self) {
        self.by_ip.retain_recent();
        self.by_account.retain_recent();
        self.by_ip.shrink_to_fit();
        self.by_account.shrink_to_fit();
    }
}
