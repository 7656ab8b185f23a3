//! The retry rule shared by the channels: `attempts` tries in all, waiting `base × 2^(n-1)`
//! after the n-th failure (capped at [`MAX_BACKOFF`]), or what the server asked for with
//! `Retry-After` (RFC 9110 §10.2.3), capped at the configured maximum.

use std::time::Duration;

use tessera_domain::clock::UnixTime;

/// The longest exponential backoff step.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How many times and how long to wait between tries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    /// Tries in all (at least 1).
    pub(crate) attempts: u32,
    /// The wait after the first failure.
    pub(crate) base: Duration,
    /// The longest `Retry-After` obeyed.
    pub(crate) retry_after_max: Duration,
}

impl RetryPolicy {
    /// The wait after failed attempt `n` (1-based), given what the server asked for.
    pub(crate) fn delay(&self, n: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(asked) => asked.min(self.retry_after_max),
            None => {
                let factor = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
                self.base.saturating_mul(factor).min(MAX_BACKOFF)
            }
        }
    }
}

/// Reads a `Retry-After` value: delay-seconds or an HTTP-date (RFC 9110 §10.2.3), measured
/// from `now`. A date in the past is no wait; anything else unreadable is ignored.
pub(crate) fn parse_retry_after(value: &str, now: UnixTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Longer than u64 seconds: wait "forever", which the cap turns into the maximum.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = parse_http_date(value)?;
    Some(Duration::from_secs(
        u64::try_from(at.since(now)).unwrap_or(0),
    ))
}

/// IMF-fixdate only (`Sun, 06 Nov 1994 08:49:37 GMT`), the form RFC 9110 §5.6.7 says senders
/// must use; the obsolete forms are ignored.
fn parse_http_date(s: &str) -> Option<UnixTime> {
    let rest = s.get(5..)?; // "Sun, "
    let mut parts = rest.split(' ');
    let day: i64 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':');
    let h: i64 = hms.next()?.parse().ok()?;
    let m: i64 = hms.next()?.parse().ok()?;
    let sec: i64 = hms.next()?.parse().ok()?;
    if parts.next()? != "GMT" || parts.next().is_some() {
        return None;
    }
    if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some(UnixTime(
        days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec,
    ))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_retry_after_is_capped() {
        let p = RetryPolicy {
            attempts: 5,
            base: Duration::from_millis(100),
            retry_after_max: Duration::from_secs(30),
        };
        assert_eq!(p.delay(1, None), Duration::from_millis(100));
        assert_eq!(p.delay(2, None), Duration::from_millis(200));
        assert_eq!(p.delay(4, None), Duration::from_millis(800));
        assert_eq!(p.delay(40, None), MAX_BACKOFF);
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(3600))),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn retry_after_seconds_or_http_date() {
        // 1994-11-06T08:49:37Z is 784111777 (RFC 9110's example date).
        let now = UnixTime(784_111_777);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:51:37 GMT", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sat, 29 Feb 2020 00:00:00 GMT", UnixTime(1_582_934_400 - 5)),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        for junk in ["", "-1", "soon", "Sun, 06 Nov 1994 08:49:37 PST", "1.5"] {
            assert_eq!(parse_retry_after(junk, now), None, "{junk:?}");
        }
    }
}
