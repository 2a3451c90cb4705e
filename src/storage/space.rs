//! space: the bounds on what uploads may take from the disk. Sizes as an
//! operator writes them (`64GiB`, `500MB`, `5%`), the disk reserve (the free
//! space uploads must leave on the data folder's filesystem, so SQLite, its
//! WAL and manifest pushes keep working on a full SD card) and the
//! filesystem's size and free space (`sys::statvfs`).
//!
//! It must never write to the disk or decide what is refused: the registry
//! compares; this only measures and parses.

pub use super::sys::FsSpace;
use std::fmt;
use std::io;
use std::path::Path;

pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * KIB;
pub const GIB: u64 = 1024 * MIB;
pub const TIB: u64 = 1024 * GIB;

/// The default largest blob: generous (the largest real layers are a few GiB)
/// but below what fills a small board's disk from one request.
pub const DEFAULT_MAX_BLOB_SIZE: u64 = 64 * GIB;

/// Free space uploads must leave: a byte count, a share of the filesystem,
/// or (both given) the smaller of the two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskReserve {
    pub bytes: Option<u64>,
    /// Hundredths of a percent of the filesystem's size (500 = 5 %).
    pub basis_points: Option<u32>,
}

impl DiskReserve {
    /// 1 GiB or 5 % of the filesystem, whichever is smaller: what a full disk
    /// must keep is room for metadata (database, WAL, manifests), which does
    /// not grow with the disk. 5 % keeps a small card usable (410 MiB of
    /// 8 GiB); 1 GiB stops a large disk from wasting a twentieth of itself.
    pub const DEFAULT: DiskReserve = DiskReserve {
        bytes: Some(GIB),
        basis_points: Some(500),
    };
    /// No reserve: uploads run until the disk is full (then 507, as always).
    pub const OFF: DiskReserve = DiskReserve {
        bytes: Some(0),
        basis_points: None,
    };

    /// The reserve in bytes on a filesystem of `total` bytes.
    pub fn resolve(&self, total: u64) -> u64 {
        let share = self
            .basis_points
            .map(|bp| (u128::from(total) * u128::from(bp) / 10_000) as u64);
        match (self.bytes, share) {
            (Some(b), Some(s)) => b.min(s),
            (Some(b), None) => b,
            (None, Some(s)) => s,
            (None, None) => 0,
        }
    }

    pub fn is_off(&self) -> bool {
        self.bytes == Some(0) || self.basis_points == Some(0)
    }

    /// How `check-config` shows it, resolved on a filesystem of `total` bytes
    /// when that is known.
    pub fn describe(&self, total: Option<u64>) -> String {
        if self.is_off() {
            return "off (uploads may fill the disk)".into();
        }
        let pct = |bp: u32| format!("{} %", Percent(bp));
        match (self.bytes, self.basis_points, total) {
            (Some(b), None, _) => format_size(b),
            (b, Some(bp), Some(total)) => {
                let share = format!(
                    "{} of {} = {}",
                    pct(bp),
                    format_size(total),
                    format_size(
                        DiskReserve {
                            bytes: None,
                            ..*self
                        }
                        .resolve(total)
                    )
                );
                let resolved = format_size(self.resolve(total));
                match b {
                    Some(b) => {
                        format!("{resolved} (the smaller of {} and {share})", format_size(b))
                    }
                    None => format!("{resolved} ({share})"),
                }
            }
            (b, Some(bp), None) => {
                let share = format!("{} of the data folder's filesystem", pct(bp));
                match b {
                    Some(b) => format!("the smaller of {} and {share}", format_size(b)),
                    None => share,
                }
            }
            (None, None, _) => "off".into(),
        }
    }
}

/// Hundredths of a percent, printed as a percentage (`500` is `5`, `250` is `2.5`).
struct Percent(u32);

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.0 / 100, self.0 % 100);
        if frac == 0 {
            write!(f, "{whole}")
        } else if frac % 10 == 0 {
            write!(f, "{whole}.{}", frac / 10)
        } else {
            write!(f, "{whole}.{frac:02}")
        }
    }
}

/// Size and free space of the filesystem that holds (or will hold) `path`:
/// the nearest existing folder on the way up is measured. Opens nothing.
pub fn filesystem_space(path: &Path) -> io::Result<FsSpace> {
    let absolute = std::path::absolute(path)?;
    let mut probe: &Path = &absolute;
    loop {
        if probe.exists() {
            return super::sys::statvfs(probe);
        }
        probe = probe
            .parent()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no existing parent"))?;
    }
}

/// `n` bytes for a person: `64 GiB`, `1.5 MiB`, `512 bytes`.
pub fn format_size(n: u64) -> String {
    let units = [(TIB, "TiB"), (GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")];
    for (unit, name) in units {
        if n >= unit {
            let tenths = (u128::from(n) * 10 + u128::from(unit) / 2) / u128::from(unit);
            return if tenths % 10 == 0 {
                format!("{} {name}", tenths / 10)
            } else {
                format!("{}.{} {name}", tenths / 10, tenths % 10)
            };
        }
    }
    format!("{n} bytes")
}

/// A size as an operator writes it: `1048576`, `64GiB`, `500MB`, `1.5 GiB`,
/// `512k`. Decimal units (kB, MB, GB, TB) are powers of 1000, binary ones
/// (KiB, MiB, GiB, TiB, and the single letters K, M, G, T) powers of 1024.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = (&s[..split], s[split..].trim());
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => KIB,
        "m" | "mib" => MIB,
        "g" | "gib" => GIB,
        "t" | "tib" => TIB,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => {
            return Err(format!(
                "{s:?}: unknown unit {unit:?} (bytes, or KiB, MiB, GiB, TiB, kB, MB, GB, TB)"
            ))
        }
    };
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits_ok = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits_ok(whole) || !digits_ok(frac) || frac.len() > 9 {
        return Err(format!(
            "{s:?} is not a size (a number, then a unit like GiB or MB)"
        ));
    }
    if multiplier == 1 && !frac.is_empty() {
        return Err(format!("{s:?}: a byte count has no fraction"));
    }
    let too_large = || format!("{s:?} is too large");
    let whole: u128 = whole.parse().map_err(|_| too_large())?;
    let mut bytes = whole * u128::from(multiplier);
    if !frac.is_empty() {
        let scale = 10u128.pow(frac.len() as u32);
        let frac: u128 = frac.parse().map_err(|_| too_large())?;
        bytes += frac * u128::from(multiplier) / scale;
    }
    u64::try_from(bytes).map_err(|_| too_large())
}

/// The disk reserve as an operator writes it: a size (`1GiB`, `0` for none),
/// a percentage of the filesystem (`5%`, `2.5%`), or both (`1GiB,5%`: the smaller).
pub fn parse_reserve(s: &str) -> Result<DiskReserve, String> {
    let mut reserve = DiskReserve {
        bytes: None,
        basis_points: None,
    };
    for part in s.split(',').map(str::trim) {
        if let Some(p) = part.strip_suffix('%') {
            let bp = parse_percent(p.trim()).ok_or_else(|| {
                format!("{part:?} is not a percentage from 0 to 99 (like 5% or 2.5%)")
            })?;
            if reserve.basis_points.replace(bp).is_some() {
                return Err(format!("{s:?}: more than one percentage"));
            }
        } else {
            let bytes = parse_size(part)?;
            if reserve.bytes.replace(bytes).is_some() {
                return Err(format!("{s:?}: more than one size"));
            }
        }
    }
    Ok(reserve)
}

/// `5` or `2.5` (at most two decimals, below 100) as hundredths of a percent.
fn parse_percent(p: &str) -> Option<u32> {
    let (whole, frac) = p.split_once('.').unwrap_or((p, ""));
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 2 || frac.len() > 2 || !digits(whole) || !digits(frac) {
        return None;
    }
    let whole: u32 = whole.parse().ok()?;
    let frac: u32 = format!("{frac:0<2}").parse().ok()?;
    Some(whole * 100 + frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_their_units() {
        for (text, bytes) in [
            ("0", 0),
            ("1048576", MIB),
            ("64GiB", 64 * GIB),
            ("64 GiB", 64 * GIB),
            ("500MB", 500_000_000),
            ("1.5GiB", 3 * GIB / 2),
            ("512k", 512 * KIB),
            ("2T", 2 * TIB),
            ("1kb", 1000),
            ("7b", 7),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        for bad in [
            "",
            "GiB",
            "-1",
            "1.2.3",
            "5 parsecs",
            "1e9",
            "99999999999999999999",
            "16EiB",
            "20000000TiB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_format_for_people() {
        assert_eq!(format_size(64 * GIB), "64 GiB");
        assert_eq!(format_size(3 * GIB / 2), "1.5 GiB");
        assert_eq!(format_size(MIB), "1 MiB");
        assert_eq!(format_size(512), "512 bytes");
        assert_eq!(format_size(u64::MAX), "16777216 TiB");
    }

    #[test]
    fn reserves_parse_and_resolve() {
        assert_eq!(
            parse_reserve("5%").map(|r| r.resolve(40 * GIB)),
            Ok(2 * GIB)
        );
        assert_eq!(parse_reserve("2.5%").map(|r| r.basis_points), Ok(Some(250)));
        assert_eq!(parse_reserve("1GiB").map(|r| r.resolve(8 * GIB)), Ok(GIB));
        assert_eq!(parse_reserve("1GiB, 5%"), Ok(DiskReserve::DEFAULT));
        assert!(parse_reserve("0").is_ok_and(|r| r.is_off()));
        for bad in ["100%", "5%,6%", "1G,2G", "x%", "%", "1.234%", ""] {
            assert!(parse_reserve(bad).is_err(), "{bad}");
        }
        // The smaller wins: 5 % of a small card, 1 GiB of a large disk.
        assert_eq!(DiskReserve::DEFAULT.resolve(8 * GIB), 8 * GIB / 20);
        assert_eq!(DiskReserve::DEFAULT.resolve(4 * TIB), GIB);
        assert_eq!(
            DiskReserve::DEFAULT.describe(Some(40 * GIB)),
            "1 GiB (the smaller of 1 GiB and 5 % of 40 GiB = 2 GiB)"
        );
        assert_eq!(
            DiskReserve::DEFAULT.describe(None),
            "the smaller of 1 GiB and 5 % of the data folder's filesystem"
        );
        assert_eq!(
            DiskReserve::OFF.describe(Some(GIB)),
            "off (uploads may fill the disk)"
        );
    }

    #[test]
    fn the_filesystem_of_a_folder_not_made_yet_is_measured() {
        let dir = tempfile::tempdir().expect("tempdir");
        let space = filesystem_space(&dir.path().join("not/made/yet")).expect("statvfs");
        assert!(
            space.total > 0 && space.available <= space.total,
            "{space:?}"
        );
    }
}
