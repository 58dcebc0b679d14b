//! The services Tempest tests, one check each: where the service is in Keystone's catalog, what
//! tempest.conf calls it, which tests are its own, and the RA1 requirements they verify
//! (reference-model/data/requirements/ra1.toml; Anuket RA1 ch2 and ch5, RC1 ch3).

/// One service of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Service {
    /// The check is `tempest.<name>`; the keys of `[tempest.smoke]`, `[tempest.full]` and
    /// `[tempest.exclude]`.
    pub name: &'static str,
    /// The check's title.
    pub title: &'static str,
    /// The requirements its tests verify.
    pub covers: &'static [&'static str],
    /// Catalog types that offer it (any one will do); empty: not in the catalog (Horizon).
    pub catalog_types: &'static [&'static str],
    /// Its `[service_available]` key in tempest.conf; `None`: Tempest has none (identity is
    /// always there; placement and heat are configured otherwise).
    pub available_key: Option<&'static str>,
    /// Its tempest.conf section, where `endpoint_type` (the interface) is set.
    pub section: Option<&'static str>,
    /// A protected resource under its endpoint: a real OpenStack API (keystonemiddleware)
    /// answers 401 there without a token; a stand-in that validates no token does not.
    pub probe_path: &'static str,
    /// Dotted-id prefixes of its tests (also inside `setUpClass (...)`).
    pub prefixes: &'static [&'static str],
    /// Of the tests under `prefixes`, only those whose id holds one of these (the IPv6
    /// classes); empty: every one.
    pub only: &'static [&'static str],
    /// Services it is a part of: it is tested only when each of them is (its tests run
    /// against their APIs); its tests are theirs too. Empty: a service of the catalog.
    pub within: &'static [&'static str],
    /// `[tempest]` keys its tests cannot run without (an image to boot, a flavor, the
    /// external network): unset, its check is an error naming the key.
    pub needs_keys: &'static [&'static str],
    /// What its evidence says beyond the API.
    pub note: Option<&'static str>,
}

impl Service {
    /// Whether a test id is one of this service's tests.
    pub fn owns(&self, test_id: &str) -> bool {
        let path = test_id
            .split_once(" (")
            .map_or(test_id, |(_, class)| class.trim_end_matches(')'));
        self.prefixes.iter().any(|p| path.starts_with(p))
            && (self.only.is_empty() || self.only.iter().any(|o| path.contains(o)))
    }
}

/// Every service, in check order.
pub const SERVICES: &[Service] = &[
    Service {
        name: "identity",
        title: "Keystone serves the Identity v3 API: Tempest's identity tests pass",
        covers: &["int.api.01@ra1"],
        catalog_types: &["identity"],
        available_key: None,
        section: Some("identity"),
        probe_path: "",
        prefixes: &["tempest.api.identity."],
        only: &[],
        within: &[],
        needs_keys: &[],
        note: None,
    },
    Service {
        name: "image",
        title: "Glance serves the Image v2 API: Tempest's image tests pass",
        covers: &["int.api.02@ra1"],
        catalog_types: &["image"],
        available_key: Some("glance"),
        section: Some("image"),
        probe_path: "/v2/images",
        prefixes: &["tempest.api.image."],
        only: &[],
        within: &[],
        needs_keys: &[],
        note: None,
    },
    Service {
        name: "volume",
        title: "Cinder serves the Block Storage v3 API: Tempest's volume tests pass",
        covers: &["int.api.03@ra1"],
        catalog_types: &["volumev3", "block-storage"],
        available_key: Some("cinder"),
        section: Some("volume"),
        probe_path: "/volumes",
        prefixes: &["tempest.api.volume."],
        only: &[],
        within: &[],
        needs_keys: &[],
        note: None,
    },
    Service {
        name: "object-storage",
        title: "Swift serves the Object Storage API and instances can use object storage: Tempest's object storage tests pass",
        // inf.stg.02 (instances can use object storage): instances reach object storage
        // through this very API (Swift's, with the project's token), so its tests are the
        // observation; no other path exists to test.
        covers: &["int.api.04@ra1", "inf.stg.02"],
        catalog_types: &["object-store"],
        available_key: Some("swift"),
        section: Some("object-storage"),
        probe_path: "",
        prefixes: &["tempest.api.object_storage."],
        only: &[],
        within: &[],
        needs_keys: &[],
        note: None,
    },
    Service {
        name: "network",
        title: "Neutron serves the Networking v2.0 API: Tempest's network tests pass",
        covers: &["int.api.05@ra1"],
        catalog_types: &["network"],
        available_key: Some("neutron"),
        section: Some("network"),
        probe_path: "/v2.0/networks",
        prefixes: &["tempest.api.network."],
        only: &[],
        within: &[],
        needs_keys: &[],
        note: Some(
            "inf.nw.16 (dual-stack tenant networks) is tempest.network-ipv6's: its IPv6 tests, run in the same Tempest run",
        ),
    },
    Service {
        name: "network-ipv6",
        title: "Tenant networks are dual-stack: Tempest's IPv6 network API tests pass",
        covers: &["inf.nw.16"],
        catalog_types: &[],
        available_key: None,
        section: None,
        probe_path: "",
        prefixes: &["tempest.api.network."],
        // Tempest 47.0.0's IPv6 classes: NetworksIpV6Test, PortsIpV6TestJSON,
        // RoutersIpV6Test, SecGroupIPv6Test, NetworksTestDHCPv6, MeteringIpV6TestJSON, ...
        only: &["IpV6", "Ipv6", "IPv6", "DHCPv6"],
        within: &["network"],
        needs_keys: &[],
        note: Some(
            "the IPv6 network API tests create IPv6 and dual-stack subnets, ports and routers on tenant networks (SLAAC and DHCPv6 address modes included)",
        ),
    },
    Service {
        name: "compute",
        title: "Nova serves the Compute v2.1 API and instances get virtual NICs: Tempest's compute tests pass",
        covers: &["int.api.06@ra1", "req.inf.ntw.01"],
        catalog_types: &["compute"],
        available_key: Some("nova"),
        section: Some("compute"),
        probe_path: "/servers",
        prefixes: &[
            "tempest.api.compute.",
            "tempest.scenario.test_server_basic_ops.",
            "tempest.scenario.test_network_basic_ops.",
        ],
        only: &[],
        within: &[],
        needs_keys: &["image_ref", "flavor_ref", "public_network_id"],
        note: Some(
            "req.inf.ntw.01 (virtual NICs) is verified through the server and network scenario tests (test_server_basic_ops, test_network_basic_ops) and the compute interface tests",
        ),
    },
    Service {
        name: "volume-attach",
        title: "Instances use remote block storage: Tempest's volume attach and boot-from-volume tests pass",
        covers: &["inf.stg.01"],
        catalog_types: &[],
        available_key: None,
        section: None,
        probe_path: "",
        prefixes: &[
            "tempest.api.compute.volumes.test_attach_volume.",
            "tempest.scenario.test_volume_boot_pattern.",
            "tempest.scenario.test_server_volume_attachment.",
        ],
        only: &[],
        within: &["compute", "volume"],
        needs_keys: &["image_ref", "flavor_ref"],
        note: Some(
            "inf.stg.01 is observed where an instance uses a Cinder volume: attached to a running server (test_attach_volume), booted from (test_volume_boot_pattern), attached and written to (test_server_volume_attachment)",
        ),
    },
    Service {
        name: "dashboard",
        title: "The Horizon dashboard serves its login: Tempest's dashboard test passes",
        covers: &["int.api.07@ra1"],
        catalog_types: &[],
        available_key: Some("horizon"),
        section: Some("dashboard"),
        probe_path: "auth/login/",
        prefixes: &["tempest.scenario.test_dashboard_basic_ops."],
        only: &[],
        within: &[],
        needs_keys: &[],
        note: None,
    },
    Service {
        name: "placement",
        title: "The Placement API serves resource providers: Tempest's placement scenario passes",
        covers: &["int.api.08@ra1"],
        catalog_types: &["placement"],
        available_key: None,
        section: Some("placement"),
        probe_path: "/resource_providers",
        prefixes: &["tempest.scenario.test_network_qos_placement."],
        only: &[],
        within: &[],
        needs_keys: &["image_ref", "flavor_ref"],
        note: Some(
            "Tempest has no placement API package; its QoS placement scenario drives the Placement API through Tempest's placement client",
        ),
    },
    Service {
        name: "orchestration",
        title: "Heat serves the Orchestration API: heat-tempest-plugin's API tests pass",
        covers: &["int.api.09@ra1"],
        catalog_types: &["orchestration"],
        available_key: Some("heat_plugin"),
        section: None,
        probe_path: "/stacks",
        prefixes: &["heat_tempest_plugin.tests.api."],
        only: &[],
        within: &[],
        needs_keys: &[],
        note: Some(
            "Tempest itself holds no orchestration tests; they are heat-tempest-plugin's (tempest.plugins)",
        ),
    },
];

/// The service of a name.
pub fn by_name(name: &str) -> Option<&'static Service> {
    SERVICES.iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tests_are_attributed_by_their_dotted_path() {
        let identity = by_name("identity").unwrap();
        assert!(
            identity.owns("tempest.api.identity.v3.test_tokens.TokensV3Test.test_a[id-1,smoke]")
        );
        assert!(identity.owns("setUpClass (tempest.api.identity.admin.v3.test_x.T)"));
        assert!(!identity.owns("tempest.api.image.v2.T.test_a"));
        let compute = by_name("compute").unwrap();
        assert!(compute.owns("tempest.scenario.test_network_basic_ops.TestNetworkBasicOps.test_x"));
        let ipv6 = by_name("network-ipv6").unwrap();
        let t = "tempest.api.network.test_networks.NetworksIpV6Test.test_list_networks[id-1]";
        assert!(ipv6.owns(t) && by_name("network").unwrap().owns(t));
        assert!(!ipv6.owns("tempest.api.network.test_networks.NetworksTest.test_list_networks"));
        let attach = by_name("volume-attach").unwrap();
        assert!(attach.owns(
            "tempest.scenario.test_volume_boot_pattern.TestVolumeBootPattern.test_volume_boot_pattern[id-1]"
        ));
        assert!(!attach.owns("tempest.api.volume.test_volumes_get.VolumesGetTest.test_x"));
        // Every test belongs to one service at most, besides the parts of a service
        // (`within`), whose tests are also their whole's.
        for a in SERVICES {
            for b in SERVICES {
                if a.name != b.name && a.within.is_empty() && b.within.is_empty() {
                    for p in a.prefixes {
                        assert!(!b.owns(p), "{p} of {} is also {}'s", a.name, b.name);
                    }
                }
            }
        }
    }
}
