//! Entry points for the property targets in `fuzz/` (issue #14), not an API: the parsers
//! of what the host shows (os-release, /proc/cpuinfo, /proc/meminfo, `ip -j addr`, the dpkg
//! log), reached without reading the host.

use chrono::NaiveDateTime;

/// os-release(5): `key`'s value.
pub fn os_release_value(text: &str, key: &str) -> Option<String> {
    crate::inventory::os_release_value(text, key)
}

/// /proc/cpuinfo: the flags and the processor count.
pub fn cpuinfo(text: &str) -> (usize, u32) {
    (
        crate::parse::cpu_flags(text).len(),
        crate::parse::cpu_count(text),
    )
}

/// /proc/meminfo: `field` in bytes.
pub fn meminfo_bytes(text: &str, field: &str) -> Option<u64> {
    crate::parse::meminfo_bytes(text, field)
}

/// `ip -j addr`: the global addresses, printed.
pub fn global_addresses(json: &str) -> Result<usize, String> {
    crate::parse::global_addresses(json).map(|a| a.len())
}

/// /var/log/dpkg.log: the changes since `since` and the entry count.
pub fn dpkg_log(log: &str, since: NaiveDateTime) -> (usize, usize) {
    (
        crate::parse::dpkg_changes(log, since).len(),
        crate::parse::dpkg_entries(log),
    )
}

/// The window start `hours` before `now`.
pub fn window_start(now: NaiveDateTime, hours: u32) -> NaiveDateTime {
    crate::parse::window_start(now, hours)
}
