//! Pure parsers for the kernel and dpkg files the checks read, kept apart so they can be
//! tested against recorded samples.

use chrono::{NaiveDateTime, TimeDelta};

/// The CPU flags of the first processor in `/proc/cpuinfo`.
pub(crate) fn cpu_flags(cpuinfo: &str) -> Vec<&str> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("flags") || l.starts_with("Features"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.split_whitespace().collect())
        .unwrap_or_default()
}

/// Number of `processor` entries in `/proc/cpuinfo`.
pub(crate) fn cpu_count(cpuinfo: &str) -> u32 {
    cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count() as u32
}

/// A `/proc/meminfo` field in bytes.
pub(crate) fn meminfo_bytes(meminfo: &str, field: &str) -> Option<u64> {
    let line = meminfo
        .lines()
        .find(|l| l.split(':').next() == Some(field))?;
    let mut parts = line.split(':').nth(1)?.split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        // Checked: a value past u64 in bytes is unreadable, not a panic or a wrapped number.
        Some("kB") => value.checked_mul(1024),
        None => Some(value),
        Some(_) => None,
    }
}

/// A global-scope address from `ip -j addr show`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GlobalAddr {
    pub(crate) ifname: String,
    pub(crate) family: String,
    pub(crate) addr: String,
}

/// Global-scope addresses on interfaces other than loopback, from `ip -j addr show` output.
pub(crate) fn global_addresses(json: &str) -> Result<Vec<GlobalAddr>, String> {
    #[derive(serde::Deserialize)]
    struct Link {
        ifname: String,
        #[serde(default)]
        addr_info: Vec<Addr>,
    }
    #[derive(serde::Deserialize)]
    struct Addr {
        family: String,
        local: String,
        scope: String,
        prefixlen: u8,
    }
    let links: Vec<Link> =
        serde_json::from_str(json).map_err(|e| format!("cannot parse `ip -j addr` output: {e}"))?;
    Ok(links
        .into_iter()
        .filter(|l| l.ifname != "lo")
        .flat_map(|l| {
            let ifname = l.ifname;
            l.addr_info
                .into_iter()
                .filter(|a| a.scope == "global")
                .map(move |a| GlobalAddr {
                    ifname: ifname.clone(),
                    family: a.family,
                    addr: format!("{}/{}", a.local, a.prefixlen),
                })
        })
        .collect())
}

/// One package change recorded by dpkg.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PackageChange {
    pub(crate) when: NaiveDateTime,
    pub(crate) action: String,
    pub(crate) package: String,
    pub(crate) old: String,
    pub(crate) new: String,
}

/// Package installs, upgrades, removals and purges in a dpkg log newer than `since`
/// (dpkg writes local time). Lines dpkg writes for configuration steps are ignored.
pub(crate) fn dpkg_changes(log: &str, since: NaiveDateTime) -> Vec<PackageChange> {
    log.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (date, time, action) = (f.next()?, f.next()?, f.next()?);
            if !matches!(action, "install" | "upgrade" | "remove" | "purge") {
                return None;
            }
            let when =
                NaiveDateTime::parse_from_str(&format!("{date} {time}"), "%Y-%m-%d %H:%M:%S")
                    .ok()?;
            if when < since {
                return None;
            }
            let package = f.next()?.to_owned();
            let old = f.next().unwrap_or("").to_owned();
            let new = f.next().unwrap_or("").to_owned();
            Some(PackageChange {
                when,
                action: action.to_owned(),
                package,
                old,
                new,
            })
        })
        .collect()
}

/// The number of lines of a dpkg log that read as dpkg entries (`YYYY-MM-DD HH:MM:SS ...`),
/// changes or not: zero means the log was not observed, whatever its size.
pub(crate) fn dpkg_entries(log: &str) -> usize {
    log.lines()
        .filter(|line| {
            let mut f = line.split_whitespace();
            match (f.next(), f.next(), f.next()) {
                (Some(date), Some(time), Some(_)) => {
                    NaiveDateTime::parse_from_str(&format!("{date} {time}"), "%Y-%m-%d %H:%M:%S")
                        .is_ok()
                }
                _ => false,
            }
        })
        .count()
}

/// The start of the drift window. The hours come from the target file: a window longer
/// than the calendar reaches back to its start rather than overflowing.
pub(crate) fn window_start(now: NaiveDateTime, hours: u32) -> NaiveDateTime {
    now.checked_sub_signed(TimeDelta::hours(i64::from(hours)))
        .unwrap_or(NaiveDateTime::MIN)
}

/// The OCI runtimes `host.runtime.oci-spec` asks for their version.
pub(crate) const OCI_RUNTIMES: &[&str] = &["runc", "crun", "youki", "runsc", "kata-runtime"];

/// The runtime specification version a runtime's `--version` declares (`spec: 1.0.2-dev`,
/// `spec version 1.0.2`), as (major, minor, the text).
pub(crate) fn oci_spec_version(version_text: &str) -> Option<(u64, u64, String)> {
    let line = version_text
        .lines()
        .find(|l| l.trim_start().to_ascii_lowercase().starts_with("spec"))?;
    let v = line
        .split(|c: char| c.is_whitespace() || c == ':')
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))?;
    let mut parts = v.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor, v.to_owned()))
}

/// Judges what the runtimes on the node answered (name, `--version` output or why it could
/// not be read). No runtime at all is not applicable (not a container host); one that does
/// not say its specification version cannot be judged (an error); one below 1.0 fails.
pub(crate) fn judge_oci_runtimes(
    seen: &[(String, Result<String, String>)],
) -> nfvi_harness::Outcome {
    use nfvi_harness::{Outcome, SkipKind, SkipReason};
    if seen.is_empty() {
        return Outcome::skip(SkipReason {
            kind: SkipKind::NotApplicable,
            message: format!(
                "no OCI runtime on PATH ({}): not a container host",
                OCI_RUNTIMES.join(", ")
            ),
        });
    }
    let mut ok = Vec::new();
    let mut old = Vec::new();
    let mut unknown = Vec::new();
    for (name, answer) in seen {
        match answer {
            Err(why) => unknown.push(why.clone()),
            Ok(text) => match oci_spec_version(text) {
                Some((major, _, v)) if major >= 1 => ok.push(format!("{name} (spec {v})")),
                Some((_, _, v)) => old.push(format!("{name} implements spec {v}")),
                None => unknown.push(format!(
                    "`{name} --version` names no runtime specification version"
                )),
            },
        }
    }
    if !old.is_empty() {
        Outcome::fail(format!(
            "{}; RA2 asks for OCI runtime specification 1.0 or later",
            old.join("; ")
        ))
    } else if !unknown.is_empty() {
        Outcome::error(unknown.join("; "))
    } else {
        Outcome::pass(format!(
            "OCI runtime specification 1.0 or later: {}",
            ok.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_runtimes_are_judged_by_the_spec_version_they_declare() {
        use nfvi_harness::Status;
        let runc =
            "runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\ngo: go1.19.8\n";
        let crun = "crun version 1.8.1\ncommit: f8a096be060b22ccd3d5f3ebe44108517fbf6c30\nrundir: /run/user/0/crun\nspec: 1.0.0\n+SYSTEMD +SELINUX\n";
        let ok = |s: &str| Ok::<String, String>(s.to_owned());
        #[rustfmt::skip]
        type Seen = Vec<(String, Result<String, String>)>;
        let cases: Vec<(&str, Seen, Status, &str)> = vec![
            (
                "runc on Debian 12",
                vec![("runc".into(), ok(runc))],
                Status::Passed,
                "runc (spec 1.0.2-dev)",
            ),
            (
                "two runtimes",
                vec![("runc".into(), ok(runc)), ("crun".into(), ok(crun))],
                Status::Passed,
                "crun (spec 1.0.0)",
            ),
            (
                "an old runtime",
                vec![("runc".into(), ok("runc version 0.1.1\nspec: 0.6.0\n"))],
                Status::Failed,
                "runc implements spec 0.6.0",
            ),
            (
                "no spec line",
                vec![("runsc".into(), ok("runsc version release-20230102\n"))],
                Status::Error,
                "names no runtime specification version",
            ),
            (
                "a runtime that fails",
                vec![("runc".into(), Err("`runc --version` failed: boom".into()))],
                Status::Error,
                "boom",
            ),
            (
                "nothing observed",
                vec![],
                Status::Skipped,
                "no OCI runtime on PATH",
            ),
        ];
        for (what, seen, status, part) in cases {
            let o = judge_oci_runtimes(&seen);
            assert_eq!(o.status, status, "{what}: {}", o.message);
            assert!(o.message.contains(part), "{what}: {}", o.message);
        }
    }

    #[test]
    fn a_meminfo_value_past_u64_in_bytes_is_unreadable_not_a_panic() {
        // Found by fuzz/tests/host.rs: `value * 1024` overflowed.
        let m = "MemTotal:       429496729623895488 kB\nHugePages_Total: 18446744073709551615\n";
        assert_eq!(meminfo_bytes(m, "MemTotal"), None);
        assert_eq!(meminfo_bytes(m, "HugePages_Total"), Some(u64::MAX));
    }

    #[test]
    fn a_drift_window_longer_than_the_calendar_reaches_back_to_its_start() {
        // `[host] drift_window_hours = 4294967295` in a target file once panicked here
        // (found by fuzz/tests/host.rs).
        let now = chrono::NaiveDate::from_ymd_opt(2025, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        assert_eq!(window_start(now, u32::MAX), NaiveDateTime::MIN);
        assert_eq!(window_start(now, 24), now - TimeDelta::hours(24));
    }

    const CPUINFO: &str = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme sse2 vmx hypervisor\n\nprocessor\t: 1\nflags\t\t: fpu vme sse2 vmx hypervisor\n";

    #[test]
    fn cpuinfo() {
        assert_eq!(
            cpu_flags(CPUINFO),
            ["fpu", "vme", "sse2", "vmx", "hypervisor"]
        );
        assert_eq!(cpu_count(CPUINFO), 2);
        assert!(cpu_flags("").is_empty());
    }

    #[test]
    fn meminfo() {
        let m =
            "MemTotal:       24628428 kB\nHugepagesize:       2048 kB\nHugePages_Total:       0\n";
        assert_eq!(meminfo_bytes(m, "MemTotal"), Some(24_628_428 * 1024));
        assert_eq!(meminfo_bytes(m, "HugePages_Total"), Some(0));
        assert_eq!(meminfo_bytes(m, "Missing"), None);
    }

    #[test]
    fn global_addresses_skip_loopback_and_link_scope() {
        let json = r#"[{"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host"}]},
            {"ifname":"eth0","addr_info":[{"family":"inet","local":"10.0.0.2","prefixlen":24,"scope":"global"},
            {"family":"inet6","local":"fe80::1","prefixlen":64,"scope":"link"},
            {"family":"inet6","local":"fd00::2","prefixlen":64,"scope":"global"}]},
            {"ifname":"ifb0"}]"#;
        let got = global_addresses(json).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            GlobalAddr {
                ifname: "eth0".into(),
                family: "inet".into(),
                addr: "10.0.0.2/24".into()
            }
        );
        assert_eq!(got[1].family, "inet6");
        assert!(global_addresses("not json").is_err());
    }

    #[test]
    fn dpkg_changes_in_the_window() {
        let log = "\
2026-09-22 04:51:30 configure osslsigncode:amd64 2.9-1 2.9-1
2026-09-22 04:51:29 upgrade docker.io:amd64 20.10.24 20.10.25
2026-09-20 10:00:00 install sockperf:amd64 <none> 3.7-1
2026-09-22 05:00:00 status installed docker.io:amd64 20.10.25
garbage line
2026-09-22 06:00:00 remove chromium:amd64 120.0 <none>
";
        let since =
            NaiveDateTime::parse_from_str("2026-09-21 12:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
        let got = dpkg_changes(log, since);
        assert_eq!(got.len(), 2);
        assert_eq!(dpkg_entries(log), 5, "every dated line, changes or not");
        assert_eq!(dpkg_entries(""), 0);
        assert_eq!(
            dpkg_entries("garbage line\n22/09/2026 04:51 upgrade x 1 2\n"),
            0
        );
        assert_eq!(
            (got[0].action.as_str(), got[0].package.as_str()),
            ("upgrade", "docker.io:amd64")
        );
        assert_eq!(
            (got[0].old.as_str(), got[0].new.as_str()),
            ("20.10.24", "20.10.25")
        );
        assert_eq!(got[1].action, "remove");
    }
}
