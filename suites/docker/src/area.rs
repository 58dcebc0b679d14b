//! The Docker area's boundary with the core: its table of the target file, the Engine
//! socket it detects, the run's one Engine client, its checks and the engine's version for
//! the inventory.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bollard::Docker;
use nfvi_harness::check::BoxFuture;
use nfvi_harness::inventory::Inventory;
use nfvi_harness::{Area, AreaConfig, Check, CheckContext, Need, Resource, Shared, Table, Target};
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::sync::OnceCell;

use crate::identity::{EngineIdentity, VersionInfo, identify};

/// The `[docker]` table: the Engine API to verify.
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockerConfig {
    /// The Engine API socket.
    pub socket: PathBuf,
    /// The image probe containers run.
    pub probe_image: String,
}

impl AreaConfig for DockerConfig {}

/// The need of every check that talks to the Engine API.
pub fn socket_need() -> Need {
    Need::resource("docker-socket", "a Docker Engine socket")
}

/// The run's Engine client, connected on first use and shared by every check of the run
/// (the Docker and Kolla areas).
#[derive(Default)]
pub struct Engine {
    client: OnceCell<Result<Docker, String>>,
    identity: OnceCell<Result<(EngineIdentity, VersionInfo), String>>,
    probes: AtomicU32,
}

impl Engine {
    /// The next probe number of this run: names probe containers and picks their subnets.
    pub fn next_probe(&self) -> u32 {
        self.probes.fetch_add(1, Ordering::Relaxed)
    }

    /// The client for the target's socket; the error says why there is none.
    pub async fn client(&self, socket: &std::path::Path) -> Result<Docker, String> {
        self.client
            .get_or_init(|| crate::engine::connect(socket))
            .await
            .clone()
    }

    /// Which engine serves the API (Docker, Podman...), asked once per run; with the
    /// `/version` fields it was told from.
    pub async fn identity(&self, docker: &Docker) -> Result<(EngineIdentity, VersionInfo), String> {
        self.identity
            .get_or_init(|| async {
                let v = tokio::time::timeout(std::time::Duration::from_secs(30), docker.version())
                    .await
                    .map_err(|_| "GET /version: no answer within 30s".to_owned())?
                    .map_err(|e| format!("GET /version: {e}"))?;
                let info = VersionInfo::from_api(&v);
                Ok((identify(&info), info))
            })
            .await
            .clone()
    }
}

/// The run's Engine client for a check.
pub async fn client(cx: &CheckContext) -> Result<Docker, String> {
    let socket = &cx.target().config::<DockerConfig>().socket;
    cx.shared::<Engine>().client(socket).await
}

/// The Docker networking area.
pub struct DockerArea;

impl Area for DockerArea {
    fn id(&self) -> &'static str {
        "docker"
    }

    /// Each node runs its own container engine.
    fn node_level(&self, _check: &nfvi_harness::CheckMeta) -> bool {
        true
    }

    fn tables(&self) -> Vec<Table> {
        vec![Table::of::<DockerConfig>(
            "docker",
            include_str!("docker.toml"),
        )]
    }

    fn resources(&self, target: &Target) -> Vec<Resource> {
        let socket = &target.config::<DockerConfig>().socket;
        vec![Resource {
            id: "docker-socket",
            missing: (!socket.exists()).then(|| {
                format!(
                    "no Docker socket at {}; start dockerd or set docker.socket in the target file",
                    socket.display()
                )
            }),
        }]
    }

    fn checks(&self) -> Vec<Arc<dyn Check>> {
        crate::checks()
    }

    fn inventory<'a>(
        &'a self,
        target: &'a Target,
        inventory: &'a mut Inventory,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let socket = &target.config::<DockerConfig>().socket;
            if !socket.exists() {
                return;
            }
            let Ok(docker) = crate::engine::connect(socket).await else {
                return;
            };
            if let Ok(Ok(v)) =
                tokio::time::timeout(std::time::Duration::from_secs(5), docker.version()).await
            {
                let id = identify(&VersionInfo::from_api(&v));
                // The engine by name, whichever serves the API; `docker-engine` kept for
                // readers of earlier results.
                inventory
                    .components
                    .insert("container-engine".to_owned(), id.inventory_line());
                inventory.components.insert(
                    "docker-engine".to_owned(),
                    format!("{} (API {})", id.version, id.api_version),
                );
            }
        })
    }

    fn leftovers<'a>(
        &'a self,
        target: &'a Target,
        gone: nfvi_harness::leftover::Gone<'a>,
    ) -> BoxFuture<'a, Result<Vec<nfvi_harness::leftover::Leftover>, String>> {
        crate::clean::leftovers(target, gone)
    }

    fn open(&self, _target: &Target) -> Shared {
        Arc::new(Engine::default())
    }
}
