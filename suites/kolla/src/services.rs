//! Kolla-Ansible's all-in-one default container set per release, with what each container
//! serves and how Kolla checks its health. Source: the per-release service tables in the
//! team's reference notes (Kolla-Ansible `ansible/roles/*/defaults/main.yml`), restricted to
//! the services enabled by default with Docker, Open vSwitch and noVNC.

/// The releases the tables cover (the target file is validated against the same list).
/// The Kolla-Ansible releases whose container tables this area knows.
pub const RELEASES: &[&str] = &["2024.1", "2025.1", "2025.2", "2026.1", "master"];

/// How a container's health is judged, in Kolla's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// `healthcheck_curl` or `healthcheck_listen` on a port the container itself serves.
    Serves(u16),
    /// `healthcheck_port PROC 5672` and friends: healthy only while a dependency answers on
    /// that port (RabbitMQ for the RPC services, the OVSDB for vswitchd).
    NeedsPort(u16),
    /// Keystone's own check: `healthcheck_curl http://API:5000`.
    Keystone,
    /// `fernet-healthcheck.sh`: the key repository is in place.
    Fernet,
    /// Kolla defines no health check (cron, fluentd, kolla_toolbox, keepalived, ...).
    None,
}

/// One expected container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Service {
    /// Container name, as Kolla-Ansible names it.
    pub container: &'static str,
    /// Image name (the `name` label of Kolla's images).
    pub image: &'static str,
    /// Health check semantics.
    pub health: Health,
}

/// RabbitMQ's AMQP port, which the RPC services' health checks need.
pub const RABBITMQ: u16 = 5672;

const fn s(container: &'static str, image: &'static str, health: Health) -> Service {
    Service {
        container,
        image,
        health,
    }
}

/// The 2025.1 all-in-one default set; the other releases differ from it as `default_set` says.
const BASE: &[Service] = &[
    s("cron", "cron", Health::None),
    s("fluentd", "fluentd", Health::None),
    s("kolla_toolbox", "kolla-toolbox", Health::None),
    s("haproxy", "haproxy", Health::Serves(61313)),
    s("keepalived", "keepalived", Health::None),
    s("proxysql", "proxysql", Health::Serves(6032)),
    s("mariadb", "mariadb-server", Health::Serves(3306)),
    s("memcached", "memcached", Health::Serves(11211)),
    s("rabbitmq", "rabbitmq", Health::Serves(RABBITMQ)),
    s("keystone", "keystone", Health::Keystone),
    s("keystone_fernet", "keystone-fernet", Health::Fernet),
    s("keystone_ssh", "keystone-ssh", Health::Serves(8023)),
    s("glance_api", "glance-api", Health::Serves(9292)),
    s("placement_api", "placement-api", Health::Serves(8780)),
    s("nova_api", "nova-api", Health::Serves(8774)),
    s("nova_metadata", "nova-api", Health::Serves(8775)),
    s(
        "nova_scheduler",
        "nova-scheduler",
        Health::NeedsPort(RABBITMQ),
    ),
    s(
        "nova_conductor",
        "nova-conductor",
        Health::NeedsPort(RABBITMQ),
    ),
    s("nova_novncproxy", "nova-novncproxy", Health::Serves(6080)),
    s("nova_compute", "nova-compute", Health::NeedsPort(RABBITMQ)),
    s("nova_libvirt", "nova-libvirt", Health::Serves(16509)),
    s("nova_ssh", "nova-ssh", Health::Serves(8022)),
    s("neutron_server", "neutron-server", Health::Serves(9696)),
    s(
        "neutron_openvswitch_agent",
        "neutron-openvswitch-agent",
        Health::NeedsPort(RABBITMQ),
    ),
    s(
        "neutron_dhcp_agent",
        "neutron-dhcp-agent",
        Health::NeedsPort(RABBITMQ),
    ),
    s(
        "neutron_l3_agent",
        "neutron-l3-agent",
        Health::NeedsPort(RABBITMQ),
    ),
    s(
        "neutron_metadata_agent",
        "neutron-metadata-agent",
        Health::NeedsPort(RABBITMQ),
    ),
    s(
        "openvswitch_db",
        "openvswitch-db-server",
        Health::Serves(6640),
    ),
    s(
        "openvswitch_vswitchd",
        "openvswitch-vswitchd",
        Health::NeedsPort(6640),
    ),
    s("heat_api", "heat-api", Health::Serves(8004)),
    s("heat_api_cfn", "heat-api-cfn", Health::Serves(8000)),
    s("heat_engine", "heat-engine", Health::NeedsPort(RABBITMQ)),
    s("horizon", "horizon", Health::Serves(80)),
];

/// Added by 2025.2 (neutron's split RPC server and periodic workers).
const SINCE_2025_2: &[Service] = &[
    s(
        "neutron_rpc_server",
        "neutron-rpc-server",
        Health::NeedsPort(RABBITMQ),
    ),
    s(
        "neutron_periodic_worker",
        "neutron-periodic-worker",
        Health::NeedsPort(3306),
    ),
];

/// The all-in-one default set of a release, or an error listing the known releases.
pub fn default_set(release: &str) -> Result<Vec<Service>, String> {
    let mut set: Vec<Service> = BASE.to_vec();
    match release {
        // 2024.1: ProxySQL was off by default and nova_metadata ran inside nova_api.
        "2024.1" => set.retain(|s| !matches!(s.container, "proxysql" | "nova_metadata")),
        "2025.1" => {}
        "2025.2" | "2026.1" | "master" => set.extend_from_slice(SINCE_2025_2),
        other => {
            return Err(format!(
                "unknown Kolla release `{other}`; expected one of {}",
                RELEASES.join(", ")
            ));
        }
    }
    Ok(set)
}

/// One container the target expects, by name; `service` is its table entry when the tables
/// know the name (an unknown name is expected to exist and run, without a health check).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    /// Container name.
    pub name: String,
    /// The table entry, if any.
    pub service: Option<Service>,
}

impl Expected {
    /// Kolla's health semantics for this container.
    pub fn health(&self) -> Health {
        self.service.map_or(Health::None, |s| s.health)
    }
}

/// The inventory groups a container lands on in a multinode deployment (Kolla-Ansible's
/// `multinode` inventory: the role's group and its `:children` chain; reference notes,
/// kolla-inventory.md section 2). `common` stands for every top-level group.
pub fn groups(container: &str) -> &'static [&'static str] {
    match container {
        "cron" | "fluentd" | "kolla_toolbox" => {
            &["control", "network", "compute", "storage", "monitoring"]
        }
        "nova_compute" | "nova_libvirt" | "nova_ssh" => &["compute"],
        "neutron_openvswitch_agent" | "openvswitch_db" | "openvswitch_vswitchd" => {
            &["network", "compute"]
        }
        "neutron_dhcp_agent"
        | "neutron_l3_agent"
        | "neutron_metadata_agent"
        | "haproxy"
        | "keepalived"
        | "proxysql"
        | "haproxy_ssh" => &["network"],
        _ => &["control"],
    }
}

/// The expected set of one node of a multinode deployment: the containers of `set` whose
/// groups meet the node's roles.
pub fn for_roles(set: Vec<Expected>, roles: &[String]) -> Vec<Expected> {
    set.into_iter()
        .filter(|e| groups(&e.name).iter().any(|g| roles.iter().any(|r| r == g)))
        .collect()
}

/// The expected set for a target: its explicit list of container names, or the release's
/// default set.
pub fn expected(release: &str, names: &[String]) -> Result<Vec<Expected>, String> {
    let table = default_set(release)?;
    if names.is_empty() {
        return Ok(table
            .into_iter()
            .map(|s| Expected {
                name: s.container.to_owned(),
                service: Some(s),
            })
            .collect());
    }
    Ok(names
        .iter()
        .map(|n| Expected {
            name: n.clone(),
            service: BASE
                .iter()
                .chain(SINCE_2025_2)
                .find(|s| s.container == n)
                .copied(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_expect_the_containers_of_their_groups() {
        let set = || expected("2025.1", &[]).unwrap();
        let names = |roles: &[&str]| -> Vec<String> {
            let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
            for_roles(set(), &roles)
                .into_iter()
                .map(|e| e.name)
                .collect()
        };
        let compute = names(&["compute"]);
        assert!(compute.contains(&"nova_compute".to_owned()));
        assert!(compute.contains(&"openvswitch_vswitchd".to_owned()));
        assert!(compute.contains(&"cron".to_owned()));
        assert!(!compute.contains(&"keystone".to_owned()));
        assert!(!compute.contains(&"haproxy".to_owned()));
        let network = names(&["network"]);
        assert!(network.contains(&"neutron_l3_agent".to_owned()));
        assert!(!network.contains(&"nova_compute".to_owned()));
        let control = names(&["control"]);
        assert!(control.contains(&"mariadb".to_owned()));
        assert!(!control.contains(&"nova_libvirt".to_owned()));
        // An all-in-one node (every group) expects the whole default set.
        assert_eq!(names(&["control", "network", "compute"]).len(), set().len());
        assert!(names(&["deployment"]).is_empty());
    }

    #[test]
    fn releases_differ_as_documented() {
        let names = |r| -> Vec<&str> {
            default_set(r)
                .unwrap()
                .iter()
                .map(|s| s.container)
                .collect()
        };
        assert_eq!(names("2025.1").len(), 33);
        assert!(!names("2024.1").contains(&"proxysql"));
        assert!(!names("2024.1").contains(&"nova_metadata"));
        assert!(names("2025.2").contains(&"neutron_rpc_server"));
        assert!(!names("2025.1").contains(&"neutron_rpc_server"));
        let err = default_set("zed").unwrap_err();
        assert!(err.contains("`zed`") && err.contains("2025.1"), "{err}");
    }

    #[test]
    fn container_names_are_unique_and_checks_match_kolla() {
        let set = default_set("master").unwrap();
        let mut names: Vec<_> = set.iter().map(|s| s.container).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), set.len());
        let unchecked: Vec<_> = set
            .iter()
            .filter(|s| s.health == Health::None)
            .map(|s| s.container)
            .collect();
        assert_eq!(
            unchecked,
            ["cron", "fluentd", "kolla_toolbox", "keepalived"]
        );
    }
}
