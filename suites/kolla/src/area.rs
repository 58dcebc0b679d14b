//! The Kolla area's boundary with the core: its two tables of the target file
//! (`[openstack]`, the cloud; `[kolla]`, the deployment), the credentials it detects, the
//! run's token cache, and its checks. Container checks use the Docker area's Engine client,
//! so the Docker area is registered whenever this one is.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use nfvi_harness::area::empty_as_none;
use nfvi_harness::{Area, AreaConfig, Check, ConfigError, Need, Resource, Shared, Table, Target};
use schemars::JsonSchema;
use serde::Deserialize;

/// The `[openstack]` table: the cloud whose APIs are checked.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenStackConfig {
    /// openrc file with `export OS_*=...` lines.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub openrc: Option<String>,
    /// Cloud name in clouds.yaml; none: the openrc (OS_CLOUD in the environment overrides).
    #[serde(default, deserialize_with = "empty_as_none")]
    pub cloud: Option<String>,
    /// clouds.yaml path; none for openstacksdk's search path.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub clouds_yaml: Option<String>,
    /// Catalog interface to check (`internal` or `public`); none: the credentials' own
    /// (`OS_INTERFACE`, `interface` in clouds.yaml), else `internal`.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub interface: Option<String>,
    /// PEM CA bundle to trust besides the platform's roots (Kolla's
    /// `kolla_admin_openrc_cacert`); none: `OS_CACERT` or `cacert` in clouds.yaml.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub cacert: Option<String>,
    /// Accept any TLS certificate. Recorded in every API result; never the default.
    pub insecure: bool,
    /// The Horizon dashboard's URL (Kolla serves it on the VIP, port 80 or 443); none: not
    /// checked (edge deployments without Horizon).
    #[serde(default, deserialize_with = "empty_as_none")]
    pub dashboard_url: Option<String>,
}

impl AreaConfig for OpenStackConfig {}

/// The `[kolla]` table: the Kolla-Ansible deployment.
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KollaConfig {
    /// The `openstack_release` deployed; selects the container table.
    pub release: String,
    /// Containers expected on this host; empty for the release's all-in-one default set.
    pub containers: Vec<String>,
    /// A container that died this many times or more within `flap_window_minutes` is flapping.
    pub flap_restarts: u32,
    /// How far back the Docker event log is read for restarts.
    pub flap_window_minutes: u32,
    /// The image registry (Kolla's `docker_registry`) as a URL; none: not checked.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub registry: Option<String>,
    /// The image namespace in the registry (Kolla's `docker_namespace`).
    pub image_namespace: String,
    /// The image tag every service needs (Kolla's `openstack_tag`).
    pub image_tag: String,
    /// User for a registry that asks for credentials (Kolla's `docker_registry_username`);
    /// the password comes from `NFVI_REGISTRY_PASSWORD`, never from the file. None: the
    /// `auths` entry of Docker's config.json, if any.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub registry_username: Option<String>,
    /// PEM CA bundle for a registry with a private CA; none: the platform's roots.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub registry_cacert: Option<String>,
}

impl AreaConfig for KollaConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::ensure(
            crate::services::RELEASES.contains(&self.release.as_str()),
            "release",
            format!(
                "kolla.release `{}` is not a release the container tables cover ({})",
                self.release,
                crate::services::RELEASES.join(", ")
            ),
        )
    }
}

/// The need of every OpenStack API check.
pub fn cloud_need() -> Need {
    Need::resource("openstack-cloud", "OpenStack credentials")
}

/// The run's shared state: one token per (auth URL, user, project).
#[derive(Default)]
pub(crate) struct KollaShared {
    pub(crate) sessions: Mutex<HashMap<String, crate::api::Cached>>,
}

/// The Kolla/OpenStack area.
pub struct KollaArea;

impl Area for KollaArea {
    fn id(&self) -> &'static str {
        "kolla"
    }

    /// The containers run on each node; the APIs and the registry serve the whole cloud.
    fn node_level(&self, check: &nfvi_harness::CheckMeta) -> bool {
        check.id.starts_with("kolla.containers.")
    }

    fn tables(&self) -> Vec<Table> {
        vec![
            Table::of::<OpenStackConfig>("openstack", include_str!("openstack.toml")),
            Table::of::<KollaConfig>("kolla", include_str!("kolla.toml")),
        ]
    }

    fn resources(&self, target: &Target) -> Vec<Resource> {
        let os = target.config::<OpenStackConfig>();
        vec![Resource {
            id: "openstack-cloud",
            missing: crate::creds::locate(os).err(),
        }]
    }

    fn checks(&self) -> Vec<Arc<dyn Check>> {
        crate::checks()
    }

    fn open(&self, _target: &Target) -> Shared {
        Arc::new(KollaShared::default())
    }
}
