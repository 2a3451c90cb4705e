//! tls::names: the host names a self-made certificate covers: the operator's
//! `--hostname`s, then the machine's name, `localhost`, loopback and the
//! machine's own addresses (read from /proc), each in one canonical spelling.
//!
//! It must never send a packet (the UDP fallback only `connect`s, which sends
//! nothing) or fail because the machine has no name or no address.

use super::TlsError;
use rustls_pki_types::ServerName;
use std::fs;
use std::net::{IpAddr, Ipv6Addr, UdpSocket};

/// Canonical form of a host name for a certificate: IP addresses in their
/// standard text form (brackets removed), DNS names lower-cased without a
/// trailing dot. Duplicates are dropped, first occurrence wins.
pub(super) fn normalize_names(names: &[String]) -> Result<Vec<String>, TlsError> {
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for raw in names {
        let name = normalize_name(raw).ok_or_else(|| TlsError::InvalidName(raw.clone()))?;
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

fn normalize_name(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    let unbracketed = trimmed
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(trimmed);
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Some(ip.to_string());
    }
    let dns = trimmed.trim_end_matches('.').to_ascii_lowercase();
    match ServerName::try_from(dns.as_str()) {
        Ok(ServerName::DnsName(_)) if !dns.is_empty() => Some(dns),
        _ => None,
    }
}

/// The names a self-made certificate should cover: `extra` (as given, in
/// order), the machine's host name, `localhost`, `127.0.0.1`, `::1`, then the
/// machine's other IPv4 and global IPv6 addresses. Deduplicated, stable order.
/// Machine-derived names that are not valid certificate names are skipped;
/// invalid `extra` names are kept so that [`ensure_ca_and_leaf`] reports them.
pub fn default_names(extra: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |name: String| {
        if !out.contains(&name) {
            out.push(name);
        }
    };
    for name in extra {
        push(normalize_name(name).unwrap_or_else(|| name.clone()));
    }
    let machine = machine_hostname()
        .into_iter()
        .chain(["localhost".to_string(), "127.0.0.1".into(), "::1".into()])
        .chain(local_ipv4().into_iter().map(|ip| ip.to_string()))
        .chain(local_ipv6().into_iter().map(|ip| ip.to_string()));
    for name in machine {
        if let Some(n) = normalize_name(&name) {
            push(n);
        }
    }
    out
}

fn machine_hostname() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Local IPv4 addresses other than loopback: every `/32 host LOCAL` entry of
/// /proc/net/fib_trie, or, when that is unreadable, the source address the
/// kernel picks for a route to a documentation address (a UDP `connect`
/// sends no packet).
fn local_ipv4() -> Vec<IpAddr> {
    let mut out = Vec::new();
    if let Ok(text) = fs::read_to_string("/proc/net/fib_trie") {
        out = parse_fib_trie(&text);
    }
    if out.is_empty() {
        let primary = UdpSocket::bind("0.0.0.0:0")
            .and_then(|s| s.connect("192.0.2.1:9").map(|()| s))
            .and_then(|s| s.local_addr());
        if let Ok(addr) = primary {
            if !addr.ip().is_unspecified() && !addr.ip().is_loopback() {
                out.push(addr.ip());
            }
        }
    }
    out
}

fn parse_fib_trie(text: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut last: Option<IpAddr> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("|-- ") {
            last = rest.trim().parse().ok();
        } else if line.starts_with("/32 host LOCAL") {
            if let Some(ip) = last.take() {
                if !ip.is_loopback() && !out.contains(&ip) {
                    out.push(ip);
                }
            }
        }
    }
    out
}

/// Global-scope IPv6 addresses from /proc/net/if_inet6 (loopback and
/// link-local addresses are useless in a certificate).
fn local_ipv6() -> Vec<IpAddr> {
    fs::read_to_string("/proc/net/if_inet6")
        .map(|t| parse_if_inet6(&t))
        .unwrap_or_default()
}

fn parse_if_inet6(text: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(hex), Some(scope)) = (fields.first(), fields.get(3)) else {
            continue;
        };
        if *scope != "00" || hex.len() != 32 {
            continue;
        }
        let Ok(bits) = u128::from_str_radix(hex, 16) else {
            continue;
        };
        let ip = IpAddr::V6(Ipv6Addr::from(bits));
        if !ip.is_loopback() && !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::test_support::names;

    #[test]
    fn default_names_order_and_dedup() {
        let got = default_names(&names(&["Registry.LAN.", "localhost", "[::1]"]));
        assert_eq!(got[0], "registry.lan");
        assert_eq!(got[1], "localhost");
        assert_eq!(got[2], "::1");
        assert!(got.contains(&"127.0.0.1".to_string()));
        let mut dedup = got.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), got.len());
        // Every machine-derived name is usable in a certificate.
        normalize_names(&got).expect("all valid");
        eprintln!("default names here: {got:?}");
    }

    #[test]
    fn proc_parsers() {
        let fib = "\
Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        |-- 127.0.0.1
           /32 host LOCAL
     |-- 192.168.1.7
        /32 host LOCAL
     |-- 192.168.1.255
        /32 link BROADCAST
Local:
     |-- 192.168.1.7
        /32 host LOCAL
";
        assert_eq!(
            parse_fib_trie(fib),
            vec!["192.168.1.7".parse::<IpAddr>().expect("ip")]
        );
        let inet6 = "\
00000000000000000000000000000001 01 80 10 80       lo
fe800000000000000000000000000001 02 40 20 80     eth0
20010db8000000000000000000000042 02 40 00 00     eth0
";
        assert_eq!(
            parse_if_inet6(inet6),
            vec!["2001:db8::42".parse::<IpAddr>().expect("ip")]
        );
    }
}
