//! What the host shows: os-release, /proc/cpuinfo, /proc/meminfo, `ip -j addr`, the dpkg
//! log, kernel versions.

use chrono::NaiveDate;
use nfvi_fuzz::proptest::prelude::*;
use nfvi_fuzz::{DEFAULT_CASES, config, seeds, text};
use nfvi_suite_host::fuzzing as host;

fn real(path: &str, fallback: &str) -> Vec<u8> {
    let mut b = std::fs::read(path).unwrap_or_else(|_| fallback.as_bytes().to_vec());
    b.truncate(16 << 10);
    b
}

proptest! {
    #![proptest_config(config(DEFAULT_CASES))]

    #[test]
    fn fuzz_os_release(t in text(vec![
        real("/etc/os-release", ""),
        b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME='Debian'\\''s'\nVERSION_ID=\"12\"\nID=debian\nBAD=\"unterminated\n# c\nX=a b\n".to_vec(),
    ])) {
        for key in ["PRETTY_NAME", "NAME", "VERSION_ID", "ID", "BAD", "X", ""] {
            let _ = host::os_release_value(&t, key);
        }
    }

    #[test]
    fn fuzz_proc_cpuinfo(t in text(vec![real("/proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu vme sse2 avx2\n\nprocessor\t: 1\nflags\t\t: fpu\n")])) {
        let _ = host::cpuinfo(&t);
    }

    #[test]
    fn fuzz_proc_meminfo(t in text(vec![real("/proc/meminfo", "MemTotal:       16384000 kB\nHugePages_Total:       0\nHugepagesize:       2048 kB\n")])) {
        for f in ["MemTotal", "HugePages_Total", "Hugepagesize", "MemAvailable", ""] {
            let _ = host::meminfo_bytes(&t, f);
        }
    }

    #[test]
    fn fuzz_ip_addr_json(t in text(seeds(&[
        r#"[{"ifindex":1,"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host"}]},{"ifindex":2,"ifname":"eth0","addr_info":[{"family":"inet6","local":"fe80::1","prefixlen":64,"scope":"link"},{"family":"inet","local":"198.18.0.2","prefixlen":24,"scope":"global"}]}]"#,
    ]))) {
        let _ = host::global_addresses(&t);
    }

    #[test]
    fn fuzz_dpkg_log(t in text(vec![real("/var/log/dpkg.log", "2024-05-01 10:00:00 status installed openssh-server:amd64 1:9.2p1-2\n2024-05-02 11:00:00 upgrade libc6:amd64 2.36-9 2.36-9+deb12u4\n")]), hours in any::<u32>()) {
        let since = NaiveDate::from_ymd_opt(2024, 5, 1).unwrap().and_hms_opt(0, 0, 0).unwrap();
        let _ = host::dpkg_log(&t, since);
        let _ = host::window_start(since, hours);
        let _ = host::window_start(chrono::NaiveDateTime::MIN, hours);
    }

    #[test]
    fn fuzz_kernel_version(t in text(seeds(&["6.1.0-18-amd64", "5.10", "4.19.0+", "99999999999.1"]))) {
        let _ = nfvi_suite_host::parse_kernel_version(&t);
    }
}
