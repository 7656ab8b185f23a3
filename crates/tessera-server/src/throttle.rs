//! Login throttling per client address and per account name (OWASP ASVS V2.2.1), with
//! governor's keyed GCRA limiters, and the gate on failed admin-token lookups per address. Per
//! node: a cluster of N nodes allows up to N times the rate, which the account lock (stored,
//! shared) bounds anyway.
//!
//! Time comes from the injected domain [`Clock`](tessera_domain::clock::Clock), as everywhere in
//! the server (governor's own clock would read the machine's): tests move it, and the limits
//! follow the same time as sessions and locks. Its resolution is one second, which the
//! per-minute quotas do not notice.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::Clock as _;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter, middleware::NoOpMiddleware};
use tessera_domain::clock::{Clock, UnixTime};

use crate::config::ThrottleConfig;

/// governor's view of the domain clock: the time since the Unix epoch.
#[derive(Clone)]
struct DomainClock(Arc<dyn Clock>);

impl governor::clock::Clock for DomainClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        Duration::from_secs(u64::try_from(self.0.now().0).unwrap_or(0))
    }
}

type Limiter =
    RateLimiter<String, HashMapStateStore<String>, DomainClock, NoOpMiddleware<Duration>>;

/// Failed admin-token lookups allowed per client address per minute; further bearer tokens
/// from that address are refused without reaching the store until the minute is over.
pub(crate) const ADMIN_FAILURES_PER_MINUTE: u32 = 10;

/// The most addresses the admin gate remembers; past it, the oldest windows are dropped.
const ADMIN_GATE_CAPACITY: usize = 100_000;

/// The login limiters and the admin-token gate.
pub(crate) struct Throttle {
    by_ip: Limiter,
    by_account: Limiter,
    clock: DomainClock,
    /// Per address key: the start of its one-minute window and the failures in it.
    admin_failures: Mutex<HashMap<String, (UnixTime, u32)>>,
}

fn quota(per_minute: u32, burst: u32) -> Quota {
    let per_minute = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(per_minute).allow_burst(burst)
}

/// The throttling key of a client address: the address itself for IPv4, its /64 for IPv6 (one
/// subscriber usually holds a whole /64, so per-/128 keys would give it 2^64 budgets).
/// IPv4-mapped IPv6 addresses count as IPv4. Text that is not an address is its own key.
pub(crate) fn address_key(ip: &str) -> String {
    match ip.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
        Ok(IpAddr::V6(v6)) => {
            let net = u128::from(v6) & (u128::MAX << 64);
            format!("{}/64", std::net::Ipv6Addr::from(net))
        }
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => ip.to_owned(),
    }
}

impl Throttle {
    /// The limiters of `config`, reading time from `clock`.
    pub(crate) fn new(config: &ThrottleConfig, clock: Arc<dyn Clock>) -> Throttle {
        let clock = DomainClock(clock);
        Throttle {
            by_ip: RateLimiter::hashmap_with_clock(
                quota(config.per_ip_per_minute, config.per_ip_burst),
                clock.clone(),
            ),
            by_account: RateLimiter::hashmap_with_clock(
                quota(config.per_account_per_minute, config.per_account_burst),
                clock.clone(),
            ),
            clock,
            admin_failures: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one login attempt, or says how long to wait.
    pub(crate) fn admit(&self, ip: Option<&str>, username: &str) -> Result<(), Duration> {
        let key = username.to_ascii_lowercase();
        let key: String = key.chars().take(64).collect();
        if let Some(ip) = ip
            && let Err(not_until) = self.by_ip.check_key(&address_key(ip))
        {
            return Err(not_until.wait_time_from(self.clock.now()));
        }
        if let Err(not_until) = self.by_account.check_key(&key) {
            return Err(not_until.wait_time_from(self.clock.now()));
        }
        Ok(())
    }

    /// Whether an admin bearer token from `ip` may be looked up: `Err(wait)` once the address
    /// had [`ADMIN_FAILURES_PER_MINUTE`] failed lookups in its current minute.
    pub(crate) fn admin_lookup_allowed(&self, ip: Option<&str>) -> Result<(), Duration> {
        let key = ip.map(address_key).unwrap_or_default();
        let now = self.clock.0.now();
        let map = self
            .admin_failures
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match map.get(&key) {
            Some((start, n)) if now.since(*start) < 60 && *n >= ADMIN_FAILURES_PER_MINUTE => {
                let left = 60 - now.since(*start).max(0);
                Err(Duration::from_secs(u64::try_from(left).unwrap_or(60)))
            }
            _ => Ok(()),
        }
    }

    /// Counts a failed admin-token lookup from `ip`.
    pub(crate) fn admin_lookup_failed(&self, ip: Option<&str>) {
        let key = ip.map(address_key).unwrap_or_default();
        let now = self.clock.0.now();
        let mut map = self
            .admin_failures
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if map.len() >= ADMIN_GATE_CAPACITY && !map.contains_key(&key) {
            map.retain(|_, (start, _)| now.since(*start) < 60);
            if map.len() >= ADMIN_GATE_CAPACITY {
                map.clear();
            }
        }
        let entry = map.entry(key).or_insert((now, 0));
        if now.since(entry.0) >= 60 {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// Forgets keys whose limits have fully recovered, bounding memory under a flood of names.
    pub(crate) fn prune(&self) {
        self.by_ip.retain_recent();
        self.by_account.retain_recent();
        self.by_ip.shrink_to_fit();
        self.by_account.shrink_to_fit();
        let now = self.clock.0.now();
        let mut map = self
            .admin_failures
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        map.retain(|_, (start, _)| now.since(*start) < 60);
        map.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};

    struct Manual(AtomicI64);

    impl Clock for Manual {
        fn now(&self) -> UnixTime {
            UnixTime(self.0.load(Ordering::SeqCst))
        }
    }

    fn throttle(per_minute: u32, burst: u32) -> (Throttle, Arc<Manual>) {
        let clock = Arc::new(Manual(AtomicI64::new(1_800_000_000)));
        let config = ThrottleConfig {
            per_ip_per_minute: per_minute,
            per_ip_burst: burst,
            per_account_per_minute: 1000,
            per_account_burst: 1000,
        };
        (Throttle::new(&config, clock.clone()), clock)
    }

    #[test]
    fn ipv6_addresses_share_their_64() {
        assert_eq!(address_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(
            address_key("2001:db8:1:2:ffff:ffff:ffff:ffff"),
            "2001:db8:1:2::/64"
        );
        assert_ne!(
            address_key("2001:db8:1:3::1"),
            address_key("2001:db8:1:2::1")
        );
        assert_eq!(address_key("::ffff:192.0.2.1"), "192.0.2.1");
        assert_eq!(address_key("192.0.2.1"), "192.0.2.1");

        let (t, _) = throttle(1, 2);
        assert!(t.admit(Some("2001:db8:1:2::1"), "a").is_ok());
        assert!(t.admit(Some("2001:db8:1:2::2"), "b").is_ok());
        // A third address of the same /64 is the same client.
        assert!(t.admit(Some("2001:db8:1:2:dead:beef:0:3"), "c").is_err());
        assert!(t.admit(Some("2001:db8:1:3::1"), "d").is_ok());
    }

    #[test]
    fn the_limits_follow_the_injected_clock() {
        let (t, clock) = throttle(1, 1);
        assert!(t.admit(Some("192.0.2.1"), "a").is_ok());
        let wait = t.admit(Some("192.0.2.1"), "a").expect_err("over the burst");
        assert!(wait <= Duration::from_secs(60), "{wait:?}");
        // One quota period later on the injected clock (the machine's has hardly moved).
        clock.0.fetch_add(60, Ordering::SeqCst);
        assert!(t.admit(Some("192.0.2.1"), "a").is_ok());
    }

    #[test]
    fn failed_admin_lookups_close_the_gate_per_address_for_a_minute() {
        let (t, clock) = throttle(30, 20);
        for _ in 0..ADMIN_FAILURES_PER_MINUTE {
            assert!(t.admin_lookup_allowed(Some("192.0.2.1")).is_ok());
            t.admin_lookup_failed(Some("192.0.2.1"));
        }
        assert!(t.admin_lookup_allowed(Some("192.0.2.1")).is_err());
        assert!(t.admin_lookup_allowed(Some("192.0.2.2")).is_ok());
        clock.0.fetch_add(60, Ordering::SeqCst);
        assert!(t.admin_lookup_allowed(Some("192.0.2.1")).is_ok());
        t.prune();
        assert!(t.admin_failures.lock().expect("lock").is_empty());
    }
}
