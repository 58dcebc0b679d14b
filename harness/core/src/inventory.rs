//! What the NFVI under test is made of: recorded in every report so that a result can be
//! tied to the exact kernel, packages and components it was measured on.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The target inventory.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Inventory {
    /// Host name of the node the harness ran on.
    pub hostname: String,
    /// Kernel release.
    pub kernel: String,
    /// Operating system (os-release PRETTY_NAME).
    pub os: String,
    /// CPU architecture.
    pub arch: String,
    /// Online CPUs.
    pub cpus: u32,
    /// Physical memory in bytes.
    pub memory_bytes: u64,
    /// The hypervisor, when the node is a virtual machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hypervisor: Option<String>,
    /// Installed versions of the packages that make up the NFVI (package → version).
    #[serde(default)]
    pub packages: IndexMap<String, String>,
    /// Versions reported by the components themselves (container engine, CNI plugins).
    #[serde(default)]
    pub components: IndexMap<String, String>,
    /// A short, stable digest of everything above, to tell at a glance whether two reports
    /// describe the same NFVI build.
    pub fingerprint: String,
}

impl Inventory {
    /// Computes and stores the fingerprint (64-bit FNV-1a over the fields, as hex).
    pub fn seal(mut self) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |s: &str| {
            for b in s.bytes().chain([0u8]) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        for s in [&self.hostname, &self.kernel, &self.os, &self.arch] {
            eat(s);
        }
        eat(&self.cpus.to_string());
        eat(&self.memory_bytes.to_string());
        // In name order: the areas add components in their own order, which must not
        // change the fingerprint of an unchanged NFVI.
        let mut pairs: Vec<(&String, &String)> =
            self.packages.iter().chain(&self.components).collect();
        pairs.sort();
        for (k, v) in pairs {
            eat(k);
            eat(v);
        }
        self.fingerprint = format!("{h:016x}");
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_changes_with_a_package_version() {
        let mut a = Inventory {
            hostname: "n1".into(),
            ..Default::default()
        };
        a.packages.insert("docker.io".into(), "20.10.24".into());
        let mut b = a.clone();
        b.packages.insert("docker.io".into(), "20.10.25".into());
        assert_ne!(a.clone().seal().fingerprint, b.seal().fingerprint);
        assert_eq!(a.clone().seal().fingerprint, a.seal().fingerprint);
    }
}
