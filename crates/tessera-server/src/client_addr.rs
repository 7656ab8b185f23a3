//! The client's address behind trusted reverse proxies: CIDR ranges (`trusted_proxies`) and the
//! right-to-left walk of `X-Forwarded-For`.
//!
//! Each proxy appends the address of the peer it received the request from, so the entries a
//! client cannot forge are the ones on the right, up to and including the first one appended by
//! a trusted proxy about an untrusted peer. The walk goes from the right and stops at the first
//! entry that is not a trusted proxy: that is the client (OWASP ASVS 5.0 V4.1 and MDN's
//! X-Forwarded-For "Security and privacy concerns": use the right-most untrusted address).

use std::fmt;
use std::net::IpAddr;

/// An address range such as `10.0.0.0/8` or `fd00::/8`; a bare address is a /32 or /128.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `ADDR/PREFIX` or a bare address. Host bits below the prefix must be zero, so that
    /// a typo such as `10.0.0.1/8` is caught rather than silently widened.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or CIDR range"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => Some(p)
                .filter(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<u8>().ok())
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0..={max}"))?,
        };
        let cidr = Cidr { network, prefix };
        if cidr.mask(network) != network {
            return Err(format!(
                "{text:?} has host bits set below /{prefix} (did you mean {}/{prefix}?)",
                cidr.mask(network)
            ));
        }
        // An IPv4-mapped range (`::ffff:10.0.0.0/104`, what a dual-stack socket reports) is
        // its IPv4 range: `contains` compares addresses in that form, so kept as IPv6 it
        // would never match anything.
        if let (IpAddr::V6(_), IpAddr::V4(v4)) = (network, network.to_canonical()) {
            return Ok(Cidr {
                network: IpAddr::V4(v4),
                prefix: prefix - 96,
            });
        }
        Ok(cidr)
    }

    /// `addr` with the bits below this range's prefix cleared.
    fn mask(&self, addr: IpAddr) -> IpAddr {
        match addr {
            IpAddr::V4(a) => {
                let bits = u32::from(a);
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4((bits & mask).into())
            }
            IpAddr::V6(a) => {
                let bits = u128::from(a);
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6((bits & mask).into())
            }
        }
    }

    /// Whether `addr` is in the range. IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`, what a
    /// dual-stack socket reports) count as their IPv4 address.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        addr.is_ipv4() == self.network.is_ipv4() && self.mask(addr) == self.network
    }

    /// The default of `trusted_proxies`: the loopback ranges, where a proxy on the same host
    /// connects from.
    pub fn loopback() -> Vec<Cidr> {
        vec![
            Cidr {
                network: IpAddr::V4([127, 0, 0, 0].into()),
                prefix: 8,
            },
            Cidr {
                network: IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
                prefix: 128,
            },
        ]
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// Parses one `X-Forwarded-For` entry: an address, optionally with a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:443`), as some proxies write it.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<std::net::SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// At most this many `X-Forwarded-For` entries are examined: a longer chain of trusted proxies
/// does not exist, and the walk must stay cheap whatever the client sends.
const MAX_HOPS: usize = 32;

/// The client's address. `lines` are the `X-Forwarded-For` header lines in the order received
/// (several lines form one list, RFC 9110 §5.3). Unless the socket `peer` is a trusted proxy,
/// the peer is the client and the header is ignored. Otherwise the entries are walked from the
/// right, skipping trusted proxies; the first untrusted one is the client. A malformed entry
/// ends the walk at the last address known to be good (a trusted proxy), and so does a chain
/// made only of trusted proxies or longer than [`MAX_HOPS`].
pub(crate) fn client_address<'a>(
    peer: IpAddr,
    lines: impl DoubleEndedIterator<Item = &'a [u8]>,
    trusted: &[Cidr],
) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    let mut client = peer.to_canonical();
    if !is_trusted(client) {
        return client;
    }
    let entries = lines.rev().flat_map(|line| {
        // A line that is not text is one malformed entry.
        let text = std::str::from_utf8(line).unwrap_or("\u{0}");
        text.rsplit(',')
    });
    for entry in entries.take(MAX_HOPS) {
        match parse_entry(entry) {
            Some(ip) => {
                client = ip;
                if !is_trusted(ip) {
                    return ip;
                }
            }
            None => return client,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn walk(peer: &str, lines: &[&str], trusted: &[&str]) -> IpAddr {
        let trusted: Vec<Cidr> = trusted
            .iter()
            .map(|c| Cidr::parse(c).expect("cidr"))
            .collect();
        client_address(ip(peer), lines.iter().map(|l| l.as_bytes()), &trusted)
    }

    /// Found by the `edge_inputs` fuzz target: `::ffff:127.0.0.1` was accepted in
    /// `trusted_proxies` but contained no address, not even its own.
    #[test]
    fn an_ipv4_mapped_range_is_its_ipv4_range() {
        for (text, printed, inside, outside) in [
            ("::ffff:127.0.0.1", "127.0.0.1/32", "127.0.0.1", "127.0.0.2"),
            (
                "::ffff:10.0.0.0/104",
                "10.0.0.0/8",
                "::ffff:10.9.8.7",
                "11.0.0.1",
            ),
            ("::FFFF:0.0.0.0/96", "0.0.0.0/0", "192.0.2.1", "2001:db8::1"),
        ] {
            let c = Cidr::parse(text).expect(text);
            assert_eq!(c.to_string(), printed, "{text}");
            assert_eq!(Cidr::parse(printed), Ok(c), "{text}");
            assert!(c.contains(ip(inside)), "{text} contains {inside}");
            assert!(!c.contains(ip(outside)), "{text} lacks {outside}");
        }
        assert_eq!(
            walk(
                "::ffff:10.0.0.2",
                &["203.0.113.5"],
                &["::ffff:10.0.0.0/104"]
            ),
            ip("203.0.113.5"),
            "a proxy listed in the mapped form is trusted"
        );
        assert!(Cidr::parse("::ffff:10.0.0.0/95").is_err(), "host bits");
    }

    #[test]
    fn cidr_parsing_and_membership() {
        let c = Cidr::parse("10.0.0.0/8").expect("parse");
        assert!(c.contains(ip("10.255.1.2")));
        assert!(!c.contains(ip("11.0.0.1")));
        assert!(!c.contains(ip("::ffff:11.0.0.1")));
        assert!(
            c.contains(ip("::ffff:10.0.0.1")),
            "IPv4-mapped counts as IPv4"
        );
        let v6 = Cidr::parse("2001:db8::/32").expect("parse");
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .expect("all")
                .contains(ip("8.8.8.8"))
        );
        assert!(
            Cidr::parse("::/0")
                .expect("all")
                .contains(ip("2001:db8::1"))
        );
        assert_eq!(
            Cidr::parse("192.0.2.7").expect("bare").to_string(),
            "192.0.2.7/32"
        );
        assert_eq!(Cidr::parse("::1").expect("bare").to_string(), "::1/128");
        for bad in [
            "",
            "10.0.0.0/",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.1/8",
            "10.0.0.0/+8",
            "host/8",
            "10.0.0.0/8/8",
            "fe80::1%eth0",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad:?}");
        }
        let default = Cidr::loopback();
        assert!(default.iter().any(|c| c.contains(ip("127.0.0.53"))));
        assert!(default.iter().any(|c| c.contains(ip("::1"))));
        assert!(!default.iter().any(|c| c.contains(ip("::2"))));
    }

    #[test]
    fn a_spoofed_first_line_does_not_choose_the_address() {
        // The client sent `X-Forwarded-For: 6.6.6.6`; nginx appended another line with the real
        // peer (hyper keeps them as two lines).
        let lines = ["6.6.6.6", "203.0.113.9"];
        assert_eq!(
            walk("127.0.0.1", &lines, &["127.0.0.0/8"]),
            ip("203.0.113.9")
        );
        // The same in one line, as Caddy or `$proxy_add_x_forwarded_for` write it.
        assert_eq!(
            walk("127.0.0.1", &["6.6.6.6, 203.0.113.9"], &["127.0.0.0/8"]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn every_line_counts_in_order_and_trusted_hops_are_skipped() {
        let lines = ["6.6.6.6, 198.51.100.1", "203.0.113.9, 10.0.0.2", "10.0.0.3"];
        let trusted = ["127.0.0.0/8", "10.0.0.0/8"];
        assert_eq!(walk("127.0.0.1", &lines, &trusted), ip("203.0.113.9"));
        // Trusting the client's network too moves one step to the left.
        let trusted = ["127.0.0.0/8", "10.0.0.0/8", "203.0.113.0/24"];
        assert_eq!(walk("127.0.0.1", &lines, &trusted), ip("198.51.100.1"));
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        assert_eq!(
            walk("198.51.100.7", &["203.0.113.9"], &["127.0.0.0/8"]),
            ip("198.51.100.7")
        );
        // No header from a trusted peer: the peer.
        assert_eq!(walk("127.0.0.1", &[], &["127.0.0.0/8"]), ip("127.0.0.1"));
        // Nothing trusted at all.
        assert_eq!(walk("127.0.0.1", &["203.0.113.9"], &[]), ip("127.0.0.1"));
    }

    #[test]
    fn ipv6_peers_and_entries() {
        let trusted = ["::1/128", "fd00::/8"];
        assert_eq!(
            walk("::1", &["2001:db8::66", "2001:db8::9, fd00::2"], &trusted),
            ip("2001:db8::9")
        );
        assert_eq!(
            walk("fd00::1", &["[2001:db8::9]:443"], &trusted),
            ip("2001:db8::9")
        );
        // A dual-stack socket reports an IPv4 proxy as IPv4-mapped IPv6.
        assert_eq!(
            walk("::ffff:127.0.0.1", &["203.0.113.9"], &["127.0.0.0/8"]),
            ip("203.0.113.9")
        );
        assert_eq!(
            walk("2001:db8::5", &["203.0.113.9"], &trusted),
            ip("2001:db8::5")
        );
    }

    #[test]
    fn malformed_or_all_trusted_chains_stop_at_the_last_good_hop() {
        let trusted = ["127.0.0.0/8", "10.0.0.0/8"];
        assert_eq!(
            walk("127.0.0.1", &["203.0.113.9, garbage, 10.0.0.2"], &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(walk("127.0.0.1", &["unknown"], &trusted), ip("127.0.0.1"));
        assert_eq!(
            walk("127.0.0.1", &["10.0.0.9, 10.0.0.2"], &trusted),
            ip("10.0.0.9")
        );
        assert_eq!(walk("127.0.0.1", &[""], &trusted), ip("127.0.0.1"));
        let long = vec!["10.0.0.1"; 100].join(",");
        let mut lines = vec!["203.0.113.9"];
        lines.push(&long);
        assert_eq!(walk("127.0.0.1", &lines, &trusted), ip("10.0.0.1"));
    }
}
