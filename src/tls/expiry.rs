//! expiry: when a PEM certificate stops being valid (its `notAfter`), read
//! from the DER by walking the few fields before `validity` (RFC 5280
//! §4.1: version, serial, signature, issuer, validity).
//!
//! It must never trust a length it has not checked against the bytes it
//! has, nor panic on any input.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::path::Path;

/// Seconds since the epoch when the first certificate of the PEM file at
/// `path` expires.
pub fn not_after_of_file(path: &Path) -> Result<i64, String> {
    let pem = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let cert = CertificateDer::pem_slice_iter(&pem)
        .next()
        .ok_or_else(|| format!("no certificate in {}", path.display()))?
        .map_err(|e| format!("{}: {e:?}", path.display()))?;
    not_after(&cert).ok_or_else(|| format!("{}: unreadable certificate", path.display()))
}

/// One DER element: (tag, contents, the rest after it).
fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The `notAfter` of a DER certificate, in seconds since the epoch.
pub fn not_after(der: &[u8]) -> Option<i64> {
    let (0x30, cert, _) = element(der)? else {
        return None;
    };
    let (0x30, mut tbs, _) = element(cert)? else {
        return None;
    };
    if tbs.first() == Some(&0xa0) {
        tbs = element(tbs)?.2; // version
    }
    for _ in 0..3 {
        tbs = element(tbs)?.2; // serial, signature, issuer
    }
    let (0x30, validity, _) = element(tbs)? else {
        return None;
    };
    let (_, _, rest) = element(validity)?; // notBefore
    let (tag, time, _) = element(rest)?;
    let text = std::str::from_utf8(time).ok()?;
    let digits = text.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 if digits.len() == 12 => {
            let yy: i64 = digits[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &digits[2..])
        }
        0x18 if digits.len() == 14 => (digits[..4].parse().ok()?, &digits[4..]),
        _ => return None,
    };
    let field = |i: usize| -> Option<i64> { rest.get(i..i + 2)?.parse().ok() };
    let (month, day) = (field(0)?, field(2)?);
    let (h, m, s) = (field(4)?, field(6)?, field(8)?);
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
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
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    #[test]
    fn reads_the_not_after_rcgen_wrote() {
        for secs in [10 * 86_400u64, 3 * 86_400, 400 * 86_400, 40 * 365 * 86_400] {
            let at = SystemTime::now() + Duration::from_secs(secs);
            let want = at.duration_since(UNIX_EPOCH).expect("epoch").as_secs() as i64;
            let key = rcgen::KeyPair::generate().expect("key");
            let mut params = rcgen::CertificateParams::new(vec!["a.lan".into()]).expect("params");
            params.not_after = at.into();
            let cert = params.self_signed(&key).expect("cert");
            assert_eq!(not_after(cert.der()), Some(want), "{secs}");
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn garbage_is_none_never_a_panic() {
        assert_eq!(not_after(b""), None);
        assert_eq!(not_after(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(not_after(&[0x30, 0x03, 0x30, 0x01, 0xa0]), None);
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec!["a.lan".into()]).expect("params");
        let der = params.self_signed(&key).expect("cert").der().to_vec();
        for cut in 0..der.len() {
            let _ = not_after(&der[..cut]);
        }
    }
}
