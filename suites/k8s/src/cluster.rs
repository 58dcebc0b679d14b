//! One connection to the cluster per run, and what the checks read from it, each fetched once
//! and shared: the server version, API discovery, nodes, kube-system pods, DaemonSets,
//! CustomResourceDefinitions, StorageClasses, control-plane Leases and kubelet configz.
//!
//! Every request goes through kube's client with a 5 s connect and 15 s read deadline.
//! Failures keep what was asked and why it failed: an unreachable server or a malformed answer
//! is an error (the harness could not decide); a 401 names the user whose credentials were
//! refused; a 403 names the permission that is missing.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::version::Info;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use nfvi_harness::Outcome;

use crate::area::{Connection, KubernetesConfig};
use serde_json::Value;
use tokio::sync::OnceCell;

/// Connect deadline for every request.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Read deadline for every request.
pub const READ_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a read failed, already worded for the report.
#[derive(Clone, Debug)]
pub struct ReadError {
    /// Whether the NFVI is at fault in a way that decides the check (never for transport or
    /// permission problems, which leave the question open).
    pub decides: bool,
    /// The message.
    pub message: String,
}

impl ReadError {
    fn open(message: String) -> Self {
        Self {
            decides: false,
            message,
        }
    }

    /// The outcome for a check that needed this read.
    pub fn outcome(&self) -> Outcome {
        if self.decides {
            Outcome::fail(&self.message)
        } else {
            Outcome::error(&self.message)
        }
    }
}

impl From<ReadError> for Outcome {
    fn from(e: ReadError) -> Self {
        e.outcome()
    }
}

impl From<ReadError> for nfvi_harness::CheckError {
    fn from(e: ReadError) -> Self {
        Self(e.outcome())
    }
}

/// One served group version and its resources.
#[derive(Clone, Debug)]
pub struct GroupVersion {
    /// `""` for the core group.
    pub group: String,
    /// `v1`, `v1beta1`, ...
    pub version: String,
    /// Plural resource names (`networkpolicies`), subresources left out.
    pub resources: Vec<String>,
}

impl GroupVersion {
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// The kubeconfig files a run reads, in order: one named file, the entries of `KUBECONFIG`,
/// or `~/.kube/config`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeconfigFiles(Vec<PathBuf>);

impl KubeconfigFiles {
    /// The files to read, or why there are none (the skip reason of every Kubernetes check):
    /// `explicit` (`--kubeconfig`, `kubernetes.kubeconfig`) alone when given; else the
    /// entries of `kubeconfig_env` (`KUBECONFIG`) as kubectl takes them: empty ones and
    /// repeats ignored, those that do not `exist` skipped; else `<home>/.kube/config`.
    pub fn locate(
        explicit: Option<&str>,
        kubeconfig_env: Option<&OsStr>,
        home: Option<&OsStr>,
        exists: impl Fn(&Path) -> bool,
    ) -> Result<Self, String> {
        if let Some(path) = explicit {
            let path = PathBuf::from(path);
            return if path.is_file() {
                Ok(Self(vec![path]))
            } else {
                Err(format!(
                    "no kubeconfig given: {} does not exist (--kubeconfig or kubernetes.kubeconfig)",
                    path.display()
                ))
            };
        }
        let mut listed: Vec<PathBuf> = Vec::new();
        for p in kubeconfig_env.into_iter().flat_map(std::env::split_paths) {
            if !p.as_os_str().is_empty() && !listed.contains(&p) {
                listed.push(p);
            }
        }
        if !listed.is_empty() {
            let (there, absent): (Vec<PathBuf>, Vec<PathBuf>) =
                listed.into_iter().partition(|p| exists(p));
            return if there.is_empty() {
                Err(format!(
                    "no kubeconfig given: none of the files KUBECONFIG names exists ({})",
                    absent
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            } else {
                Ok(Self(there))
            };
        }
        home.map(|h| PathBuf::from(h).join(".kube/config"))
            .filter(|p| p.is_file())
            .map(|p| Self(vec![p]))
            .ok_or_else(|| {
                "no kubeconfig given: pass --kubeconfig FILE, set kubernetes.kubeconfig in the target file, or KUBECONFIG"
                    .to_owned()
            })
    }

    /// The files, in the order they are merged.
    pub fn paths(&self) -> &[PathBuf] {
        &self.0
    }

    /// Reads the files and merges them as kubectl does, through kube's loader
    /// (`Kubeconfig::read_from` per file, relative paths resolved against that file's
    /// directory, then `Kubeconfig::merge`): the first file to set `current-context` wins,
    /// and of a cluster, user or context defined in two files only the first file's
    /// definition counts. An error names the file that could not be read or merged.
    pub fn load(&self) -> Result<Kubeconfig, String> {
        self.0
            .iter()
            .try_fold(Kubeconfig::default(), |merged, path| {
                Kubeconfig::read_from(path)
                    .and_then(|next| merged.merge(next))
                    .map_err(|e| format!("cannot use kubeconfig {}: {e}", path.display()))
            })
    }
}

impl std::fmt::Display for KubeconfigFiles {
    /// The files as `KUBECONFIG` lists them (`a:b`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{}", p.display())?;
        }
        Ok(())
    }
}

type Slot<T> = OnceCell<Result<T, ReadError>>;

/// The cluster one kubeconfig points at, with everything read from it cached for the run.
pub struct Cluster {
    client: Client,
    /// The API server's URL, for messages.
    pub server: String,
    /// The kubeconfig user (auth info) used, for messages.
    pub user: String,
    kubeconfig: KubeconfigFiles,
    context: Option<String>,
    version: Slot<Info>,
    discovery: Slot<Vec<GroupVersion>>,
    nodes: Slot<Vec<Node>>,
    system_pods: Slot<Vec<Pod>>,
    daemonsets: Slot<Vec<DaemonSet>>,
    crds: Slot<Vec<CustomResourceDefinition>>,
    storage_classes: Slot<Vec<StorageClass>>,
    leases: Slot<Vec<Lease>>,
    cluster_roles: Slot<Vec<ClusterRole>>,
    configz: Mutex<HashMap<String, Arc<Slot<Value>>>>,
    /// Set when a request could not reach the server or got no answer in time: later reads
    /// fail at once with the same reason instead of waiting out their own deadlines.
    gone: std::sync::OnceLock<String>,
}

/// The cluster a check reads, connected once per run: a skip without a kubeconfig ("no
/// kubeconfig given"), an error outcome when the kubeconfig cannot be used.
pub async fn for_check(cx: &nfvi_harness::CheckContext) -> Result<Arc<Cluster>, Outcome> {
    let k = cx.target().config::<KubernetesConfig>();
    let (Some(path), None) = (k.kubeconfig_path(), k.missing()) else {
        return Err(Outcome::skip(nfvi_harness::SkipReason {
            kind: nfvi_harness::SkipKind::MissingCapability,
            message: k.missing().unwrap_or_default(),
        }));
    };
    let context = k.context.as_deref();
    cx.shared::<Connection>()
        .cluster
        .get_or_init(|| async { Cluster::open(&path, context, false).await.map(Arc::new) })
        .await
        .clone()
        .map_err(|e| e.outcome())
}

impl Cluster {
    /// A client for the context of the kubeconfig `files` merge into; with `anonymous`, the
    /// same server and trust without any credentials.
    pub async fn open(
        kubeconfig: &KubeconfigFiles,
        context: Option<&str>,
        anonymous: bool,
    ) -> Result<Self, ReadError> {
        Self::open_with(kubeconfig, context, anonymous, Some(READ_TIMEOUT)).await
    }

    /// [`Cluster::open`] with another read deadline: `None` for streams that may stay silent
    /// for long (a node agent's log, followed while its checks run), which the caller bounds.
    pub async fn open_with(
        kubeconfig: &KubeconfigFiles,
        context: Option<&str>,
        anonymous: bool,
        read_timeout: Option<Duration>,
    ) -> Result<Self, ReadError> {
        let shown = kubeconfig.to_string();
        let kc = kubeconfig.load().map_err(ReadError::open)?;
        let options = KubeConfigOptions {
            context: context.map(str::to_owned),
            ..Default::default()
        };
        let ctx_name = context
            .map(str::to_owned)
            .or_else(|| kc.current_context.clone())
            .unwrap_or_default();
        let user = kc
            .contexts
            .iter()
            .find(|c| c.name == ctx_name)
            .and_then(|c| c.context.as_ref())
            .and_then(|c| c.user.clone())
            .unwrap_or_else(|| "(none)".to_owned());
        let mut config = Config::from_custom_kubeconfig(kc, &options)
            .await
            .map_err(|e| ReadError::open(format!("cannot use kubeconfig {shown}: {e}")))?;
        config.connect_timeout = Some(CONNECT_TIMEOUT);
        config.read_timeout = read_timeout;
        config.write_timeout = Some(READ_TIMEOUT);
        if anonymous {
            config.auth_info = Default::default();
        }
        let server = config.cluster_url.to_string();
        let client = Client::try_from(config).map_err(|e| {
            ReadError::open(format!(
                "cannot build a client for {server} from {shown}: {e}"
            ))
        })?;
        Ok(Self {
            client,
            server,
            user: if anonymous {
                "(anonymous)".to_owned()
            } else {
                user
            },
            kubeconfig: kubeconfig.clone(),
            context: context.map(str::to_owned),
            version: OnceCell::new(),
            discovery: OnceCell::new(),
            nodes: OnceCell::new(),
            system_pods: OnceCell::new(),
            daemonsets: OnceCell::new(),
            crds: OnceCell::new(),
            storage_classes: OnceCell::new(),
            leases: OnceCell::new(),
            cluster_roles: OnceCell::new(),
            configz: Mutex::new(HashMap::new()),
            gone: std::sync::OnceLock::new(),
        })
    }

    /// The kube client, for the probes.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The same server without credentials.
    pub async fn anonymous(&self) -> Result<Cluster, ReadError> {
        Cluster::open(&self.kubeconfig, self.context.as_deref(), true).await
    }

    /// Words a kube error for `what` (`list nodes`): unreachable, refused credentials, a
    /// missing permission, or a malformed answer.
    pub fn explain(&self, what: &str, e: &kube::Error) -> ReadError {
        let server = &self.server;
        let message = match e {
            kube::Error::Api(s) if s.code == 401 => format!(
                "{what}: the API server at {server} refused the credentials of user `{}` (401 {}): an expired token or a revoked certificate?",
                self.user, s.message
            ),
            kube::Error::Api(s) if s.code == 403 => format!(
                "{what}: permission missing for user `{}`: the API server answered 403 ({}); the ClusterRole in deploy/kubernetes/nfvi-verify-clusterrole.yaml grants what the harness needs",
                self.user, s.message
            ),
            kube::Error::Api(s) => format!(
                "{what}: the API server at {server} answered {} {}: {}",
                s.code, s.reason, s.message
            ),
            kube::Error::SerdeError(err) => format!(
                "{what}: the API server at {server} answered with JSON that is not the expected object: {err}"
            ),
            other => {
                let text = nfvi_harness::error_with_causes(other);
                if text.to_ascii_lowercase().contains("timed out")
                    || text.to_ascii_lowercase().contains("elapsed")
                {
                    format!(
                        "{what}: the API server at {server} did not answer within {} s ({text})",
                        READ_TIMEOUT.as_secs()
                    )
                } else {
                    format!("{what}: cannot reach the API server at {server}: {text}")
                }
            }
        };
        ReadError::open(nfvi_harness::truncate_chars(&message, 600))
    }

    /// Runs `fetch` unless the server is already known to be gone, and remembers when a
    /// failure shows it is.
    async fn guarded<T>(
        &self,
        what: &str,
        fetch: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, ReadError> {
        if let Some(why) = self.gone.get() {
            return Err(ReadError::open(format!("{what}: skipped, {why}")));
        }
        fetch.await.map_err(|e| {
            let err = self.explain(what, &e);
            if !matches!(e, kube::Error::Api(_) | kube::Error::SerdeError(_)) {
                let _ = self.gone.set(err.message.clone());
            }
            err
        })
    }

    async fn cached<T: Clone>(
        &self,
        slot: &Slot<T>,
        what: &str,
        fetch: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, ReadError> {
        slot.get_or_init(|| self.guarded(what, fetch)).await.clone()
    }

    /// `GET /version`.
    pub async fn version(&self) -> Result<Info, ReadError> {
        self.cached(
            &self.version,
            "GET /version",
            self.client.apiserver_version(),
        )
        .await
    }

    /// Every served group version with its resources (`/api`, `/apis` and each group
    /// version's resource list).
    pub async fn discovery(&self) -> Result<Vec<GroupVersion>, ReadError> {
        self.cached(&self.discovery, "API discovery", async {
            let mut out = Vec::new();
            let core = self.client.list_core_api_versions().await?;
            for v in core.versions {
                let r = self.client.list_core_api_resources(&v).await?;
                out.push(GroupVersion {
                    group: String::new(),
                    version: v,
                    resources: resource_names(&r.resources),
                });
            }
            let groups = self.client.list_api_groups().await?;
            let lists = groups.groups.iter().flat_map(|g| {
                g.versions.iter().map(|v| {
                    let (group, version, gv) =
                        (g.name.clone(), v.version.clone(), v.group_version.clone());
                    async move {
                        let r = self.client.list_api_group_resources(&gv).await?;
                        Ok::<_, kube::Error>(GroupVersion {
                            group,
                            version,
                            resources: resource_names(&r.resources),
                        })
                    }
                })
            });
            for gv in futures_util::future::join_all(lists).await {
                out.push(gv?);
            }
            Ok(out)
        })
        .await
    }

    /// `list` of every object of a kind through `api`, cached in `slot`.
    async fn list<K>(
        &self,
        slot: &Slot<Vec<K>>,
        what: &str,
        api: Api<K>,
    ) -> Result<Vec<K>, ReadError>
    where
        K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        self.cached(slot, what, async move {
            Ok(api.list(&ListParams::default()).await?.items)
        })
        .await
    }

    /// Every node.
    pub async fn nodes(&self) -> Result<Vec<Node>, ReadError> {
        self.list(&self.nodes, "list nodes", Api::all(self.client.clone()))
            .await
    }

    /// Pods in kube-system.
    pub async fn system_pods(&self) -> Result<Vec<Pod>, ReadError> {
        let api = Api::namespaced(self.client.clone(), "kube-system");
        self.list(&self.system_pods, "list pods in kube-system", api)
            .await
    }

    /// DaemonSets in every namespace.
    pub async fn daemonsets(&self) -> Result<Vec<DaemonSet>, ReadError> {
        let api = Api::all(self.client.clone());
        self.list(&self.daemonsets, "list daemonsets (all namespaces)", api)
            .await
    }

    /// CustomResourceDefinitions.
    pub async fn crds(&self) -> Result<Vec<CustomResourceDefinition>, ReadError> {
        let api = Api::all(self.client.clone());
        self.list(&self.crds, "list customresourcedefinitions", api)
            .await
    }

    /// StorageClasses.
    pub async fn storage_classes(&self) -> Result<Vec<StorageClass>, ReadError> {
        let api = Api::all(self.client.clone());
        self.list(&self.storage_classes, "list storageclasses", api)
            .await
    }

    /// Leases in kube-system (the scheduler's and controller manager's leader election).
    pub async fn leases(&self) -> Result<Vec<Lease>, ReadError> {
        let api = Api::namespaced(self.client.clone(), "kube-system");
        self.list(&self.leases, "list leases in kube-system", api)
            .await
    }

    /// ClusterRoles.
    pub async fn cluster_roles(&self) -> Result<Vec<ClusterRole>, ReadError> {
        let api = Api::all(self.client.clone());
        self.list(&self.cluster_roles, "list clusterroles", api)
            .await
    }

    /// A node's kubelet configuration (`/api/v1/nodes/NAME/proxy/configz`), the
    /// `kubeletconfig` object.
    pub async fn configz(&self, node: &str) -> Result<Value, ReadError> {
        let slot = self
            .configz
            .lock()
            .expect("configz cache poisoned")
            .entry(node.to_owned())
            .or_default()
            .clone();
        let what = format!("get nodes/proxy configz of node {node}");
        slot.get_or_init(|| async {
            let req = http::Request::get(format!("/api/v1/nodes/{node}/proxy/configz"))
                .body(Vec::new())
                .map_err(|e| ReadError::open(format!("{what}: {e}")))?;
            let text = self.guarded(&what, self.client.request_text(req)).await?;
            let v: Value = serde_json::from_str(&text)
                .map_err(|e| ReadError::open(format!("{what}: the answer is not JSON: {e}")))?;
            match v.get("kubeletconfig") {
                Some(k) if k.is_object() => Ok(k.clone()),
                _ => Err(ReadError::open(format!(
                    "{what}: the answer has no `kubeletconfig` object"
                ))),
            }
        })
        .await
        .clone()
    }

    /// `GET /readyz?verbose`: the API server's own readiness checks, one per line.
    pub async fn readyz(&self) -> Result<String, ReadError> {
        let what = "GET /readyz?verbose";
        let req = http::Request::get("/readyz?verbose")
            .body(Vec::new())
            .map_err(|e| ReadError::open(format!("{what}: {e}")))?;
        self.guarded(what, self.client.request_text(req)).await
    }
}

fn resource_names(
    resources: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResource],
) -> Vec<String> {
    resources
        .iter()
        .filter(|r| !r.name.contains('/'))
        .map(|r| r.name.clone())
        .collect()
}

/// Labels of an object, empty when it has none.
pub fn labels(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> BTreeMap<String, String> {
    meta.labels.clone().unwrap_or_default()
}

#[cfg(test)]
mod tests;
