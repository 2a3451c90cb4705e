//! Readers of /proc/<pid>/status (Linux): resident and peak memory.
//! Must NEVER fail a test by itself: an unreadable file reads as 0.

/// A `/proc/<pid>/status` field in KiB (e.g. "VmRSS", "VmHWM"); `pid` None
/// is this process. 0 when absent.
pub fn status_kib(pid: Option<u32>, field: &str) -> u64 {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_string(),
    };
    let prefix = format!("{field}:");
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(&prefix))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Resident set size of this process, KiB.
pub fn rss_kib() -> u64 {
    status_kib(None, "VmRSS")
}

/// Peak resident set size (high-water mark) of `pid`, KiB.
pub fn hwm_kib(pid: u32) -> u64 {
    status_kib(Some(pid), "VmHWM")
}
