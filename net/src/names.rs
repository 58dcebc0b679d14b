//! Names for what the harness creates: namespaces, directories, containers. One sequence per
//! process, so two checks running at once never pick the same name, and the process ID in
//! every name, so two harness processes on one machine never do either.

use std::sync::atomic::{AtomicU64, Ordering};

/// The prefix of every name the project gives to what it creates on a machine, so that an
/// operator (and the leak checks of the tests) can tell it from everything else.
pub const PREFIX: &str = "nfv";

static SEQ: AtomicU64 = AtomicU64::new(0);

/// The next number of this process's sequence.
pub fn next() -> u64 {
    SEQ.fetch_add(1, Ordering::Relaxed)
}

/// `<prefix><pid>-<n>`: unique on this machine while this process lives. `prefix` should
/// start with [`PREFIX`] (`nfvrt-`, `nfvc-`...). Too long for an interface name (15 bytes);
/// fine for namespaces, directories and containers.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}-{}", std::process::id(), next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_differ_and_carry_the_pid() {
        let (a, b) = (unique("nfvt-"), unique("nfvt-"));
        assert_ne!(a, b);
        assert!(a.contains(&format!("-{}-", std::process::id())), "{a}");
        assert!(a.starts_with(PREFIX));
    }
}
