//! The node agent as a DaemonSet: a [`Transport`] that reaches every node of a Kubernetes
//! cluster through the API alone, as certsuite and Sonobuoy do.
//!
//! On the first node's turn it creates, in `kubernetes.agent_namespace` (created when missing
//! and then deleted at the end), a ConfigMap holding the agent request and a DaemonSet whose
//! pods run `nfvi-verify node --request … --linger` on every node, taints tolerated:
//! privileged, in the node's network and PID namespaces, with the node's `/proc`, `/sys` and
//! CNI directories mounted read-only. Each pod learns its node from the downward API
//! (`NFVI_NODE_NAME`). For each node, [`Transport::run`] waits for that node's pod to run,
//! follows its log and hands every agent event over until `done`; a pod that cannot start
//! (an image that does not pull, a crash loop, no room on the node) is an error naming the
//! node, the pod and the reason. [`Transport::close`] deletes what was created; so does
//! `Drop`, when `close` was not called. On cancellation the DaemonSet is deleted at once, so
//! the agents get SIGTERM and run their cleanups.
//!
//! The transport's calls are blocking (the fan-out calls them from its own threads): it holds
//! a small tokio runtime of its own and blocks on it per call.

mod log;
mod manifest;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams};
use nfvi_harness::cancel::{CancelLevel, CancelToken};
use nfvi_harness::fleet::{
    AgentEvent, AgentRequest, FleetError, MAX_LINE_BYTES, NodeError, NodeSpec, Transport,
};
use nfvi_harness::results::CleanupRecord;
use tokio::sync::OnceCell;

use self::log::{LineReader, LogState};
pub use self::manifest::{APP, INSTANCE};
use self::manifest::{
    CONTAINER, Container, Progress, config_map_manifest, container_state, daemon_set_manifest,
    namespace_manifest, node_spec, pod_on, progress,
};
use crate::area::KubernetesConfig;
use crate::cluster::{Cluster, READ_TIMEOUT, ReadError};

/// How often the agent's pods are looked at while they start.
const POLL: Duration = Duration::from_millis(500);
/// How long a pod may be stuck (image pull, crash loop, unschedulable) before its node is
/// given up: the kubelet retries a failed pull, and a transient failure should not count.
const STUCK_GRACE: Duration = Duration::from_secs(30);
/// How long a node may be without a pod of the DaemonSet.
const NO_POD_GRACE: Duration = Duration::from_secs(120);
/// How long the agents get, once the run is stopped, to report their cleanups.
const STOP_GRACE: Duration = Duration::from_secs(30);
/// How often a log stream that ends while its container runs is opened again.
const MAX_RECONNECTS: u32 = 30;

/// The cluster's nodes, reached through a DaemonSet of the node agent.
pub struct DaemonSetTransport {
    runtime: Option<tokio::runtime::Runtime>,
    /// API calls, under the usual read deadline.
    cluster: Arc<Cluster>,
    /// Log streams, which stay silent while a check runs: no read deadline (bounded here).
    streams: Arc<Cluster>,
    nodes: Vec<NodeSpec>,
    image: String,
    namespace: String,
    /// The DaemonSet's and the ConfigMap's name: `nfvi-verify-agent-<run id>`.
    name: String,
    timeout: Duration,
    /// When the DaemonSet was created, or why it could not be.
    deployed: OnceCell<Result<Instant, String>>,
    created: Mutex<Created>,
    stopping: AtomicBool,
    pods: tokio::sync::Mutex<Option<(Instant, Arc<Vec<Pod>>)>>,
    closed: Mutex<bool>,
}

/// What the transport created (or may have: a request that got no answer), to delete.
#[derive(Clone, Copy, Default)]
struct Created {
    namespace: bool,
    config_map: bool,
    daemon_set: bool,
}

impl DaemonSetTransport {
    /// Connects to the cluster of `config` and lists its nodes. No kubeconfig is an input
    /// error; a cluster that cannot be reached or read is unavailable, naming why.
    pub fn connect(config: &KubernetesConfig) -> Result<Self, FleetError> {
        let path = match (config.kubeconfig_path(), config.missing()) {
            (Some(path), None) => path,
            (_, why) => {
                return Err(FleetError::Input(format!(
                    "kubernetes.node_agent (--k8s-node-agent) runs the node-level checks through a DaemonSet and needs a cluster: {}",
                    why.unwrap_or_default()
                )));
            }
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("nfvi-k8s-agent")
            .enable_all()
            .build()
            .map_err(|e| {
                FleetError::Unavailable(format!("cannot start the Kubernetes client: {e}"))
            })?;
        let context = config.context.as_deref();
        let (cluster, streams, nodes) = runtime
            .block_on(async {
                let cluster = Cluster::open(&path, context, false).await?;
                let streams = Cluster::open_with(&path, context, false, None).await?;
                let nodes = cluster.nodes().await?;
                Ok::<_, ReadError>((cluster, streams, nodes))
            })
            .map_err(|e| {
                FleetError::Unavailable(format!(
                    "cannot reach the cluster's nodes through Kubernetes: {}",
                    e.message
                ))
            })?;
        let nodes: Vec<NodeSpec> = nodes.iter().filter_map(node_spec).collect();
        if nodes.is_empty() {
            return Err(FleetError::Unavailable(format!(
                "the cluster at {} has no nodes to verify",
                cluster.server
            )));
        }
        Ok(Self {
            runtime: Some(runtime),
            cluster: Arc::new(cluster),
            streams: Arc::new(streams),
            nodes,
            image: config.agent_image(),
            namespace: config.agent_namespace.clone(),
            name: format!("nfvi-verify-agent-{}", run_id()),
            timeout: Duration::from_secs(config.agent_timeout_secs),
            deployed: OnceCell::new(),
            created: Mutex::new(Created::default()),
            stopping: AtomicBool::new(false),
            pods: tokio::sync::Mutex::new(None),
            closed: Mutex::new(false),
        })
    }

    /// The DaemonSet's (and ConfigMap's) name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("the runtime lives until drop")
    }

    fn created(&self) -> std::sync::MutexGuard<'_, Created> {
        self.created.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates the namespace when missing, the ConfigMap and the DaemonSet; each is marked
    /// for deletion before it is asked for, and unmarked when the server refused it.
    async fn deploy(&self, request: &AgentRequest) -> Result<Instant, String> {
        let (c, ns, name) = (&self.cluster, &self.namespace, &self.name);
        let client = c.client().clone();
        let refused = |e: &kube::Error| matches!(e, kube::Error::Api(_));
        let namespaces: Api<Namespace> = Api::all(client.clone());
        // Not allowed to look (rights in the namespace only): it is taken to be there.
        let exists = match namespaces.get_opt(ns).await {
            Ok(found) => found.is_some(),
            Err(kube::Error::Api(s)) if s.code == 403 => true,
            Err(e) => return Err(c.explain(&format!("get namespace {ns}"), &e).message),
        };
        if !exists {
            self.created().namespace = true;
            match namespaces
                .create(&PostParams::default(), &namespace_manifest(ns))
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 409 => self.created().namespace = false,
                Err(e) => {
                    self.created().namespace = !refused(&e);
                    return Err(c.explain(&format!("create namespace {ns}"), &e).message);
                }
            }
        }
        let mut shared = request.clone();
        // One request for every pod: each learns its node from NFVI_NODE_NAME.
        shared.node = NodeSpec {
            name: String::new(),
            roles: Vec::new(),
            address: None,
        };
        let text = serde_json::to_string(&shared).map_err(|e| e.to_string())?;
        self.created().config_map = true;
        if let Err(e) = Api::<ConfigMap>::namespaced(client.clone(), ns)
            .create(
                &PostParams::default(),
                &config_map_manifest(name, ns, &text),
            )
            .await
        {
            self.created().config_map = !refused(&e);
            return Err(c
                .explain(&format!("create configmap {ns}/{name}"), &e)
                .message);
        }
        self.created().daemon_set = true;
        if let Err(e) = Api::<DaemonSet>::namespaced(client, ns)
            .create(
                &PostParams::default(),
                &daemon_set_manifest(name, ns, &self.image),
            )
            .await
        {
            self.created().daemon_set = !refused(&e);
            return Err(c
                .explain(&format!("create daemonset {ns}/{name}"), &e)
                .message);
        }
        Ok(Instant::now())
    }

    /// The DaemonSet's pods, listed at most once per [`POLL`] for all nodes. Errors say
    /// whether they are final (refused) or may pass (unreachable, no answer).
    async fn pods(&self) -> Result<Arc<Vec<Pod>>, (bool, String)> {
        let mut cache = self.pods.lock().await;
        if let Some((at, pods)) = &*cache
            && at.elapsed() < POLL
        {
            return Ok(pods.clone());
        }
        let api: Api<Pod> = Api::namespaced(self.cluster.client().clone(), &self.namespace);
        let params = ListParams::default().labels(&format!("{INSTANCE}={}", self.name));
        match api.list(&params).await {
            Ok(list) => {
                let pods = Arc::new(list.items);
                *cache = Some((Instant::now(), pods.clone()));
                Ok(pods)
            }
            Err(e) => {
                let fatal = matches!(&e, kube::Error::Api(s) if matches!(s.code, 401 | 403));
                let what = format!("list pods in namespace {}", self.namespace);
                Err((fatal, self.cluster.explain(&what, &e).message))
            }
        }
    }

    /// Waits until `node`'s pod runs (or its container has ended: its log tells why), and
    /// returns its name.
    async fn wait_for_pod(
        &self,
        node: &str,
        started: Instant,
        deadline: Instant,
        cancel: &CancelToken,
    ) -> Result<String, NodeError> {
        let mut stuck_since: Option<Instant> = None;
        loop {
            if cancel.is_cancelled() {
                self.stop_agents();
                return Err(NodeError::new(format!(
                    "the run was stopped while the node agent's pod on {node} was starting"
                )));
            }
            let now = Instant::now();
            let last = match self.pods().await {
                Err((true, message)) => return Err(NodeError::new(message)),
                Err((false, message)) => message,
                Ok(pods) => match pod_on(&pods, node) {
                    None if now - started >= NO_POD_GRACE => {
                        return Err(NodeError::new(format!(
                            "the DaemonSet {}/{} has no pod on {node} after {} s: is the node Ready, or does an admission policy keep the pod out?",
                            self.namespace,
                            self.name,
                            NO_POD_GRACE.as_secs()
                        )));
                    }
                    None => "no pod yet".to_owned(),
                    Some(pod) => {
                        let name = pod.metadata.name.clone().unwrap_or_default();
                        match progress(pod, &self.image) {
                            Progress::Ready => return Ok(name),
                            Progress::Starting(what) => {
                                stuck_since = None;
                                format!("pod {name}: {what}")
                            }
                            Progress::Stuck(why) => {
                                // From the pod's creation, or from when it was first seen
                                // stuck when the clocks disagree.
                                let since = *stuck_since.get_or_insert(now);
                                let age = pod.metadata.creation_timestamp.as_ref().map_or(0, |t| {
                                    chrono::Utc::now().timestamp() - t.0.as_second()
                                });
                                let stuck =
                                    (now - since).max(Duration::from_secs(age.max(0) as u64));
                                if stuck >= STUCK_GRACE {
                                    return Err(NodeError::new(format!(
                                        "pod {name} on {node} {why}"
                                    )));
                                }
                                format!("pod {name} {why}")
                            }
                        }
                    }
                },
            };
            if now >= deadline {
                return Err(NodeError::new(format!(
                    "the node agent on {node} did not start within {} s (kubernetes.agent_timeout_secs): {last}",
                    self.timeout.as_secs()
                )));
            }
            sleep_or_cancel(POLL, cancel).await;
        }
    }

    /// Follows the agent's log, handing events over until `done`.
    async fn follow(
        &self,
        node: &str,
        pod: &str,
        request: &AgentRequest,
        mut deadline: Instant,
        cancel: &CancelToken,
        events: &mut dyn FnMut(AgentEvent),
    ) -> Result<(), NodeError> {
        let api: Api<Pod> = Api::namespaced(self.streams.client().clone(), &self.namespace);
        let params = LogParams {
            container: Some(CONTAINER.to_owned()),
            follow: true,
            ..LogParams::default()
        };
        let mut state = LogState::new(node, pod, &request.checks);
        // Complete lines handled so far: a stream opened again starts from the beginning.
        let mut consumed = 0usize;
        let mut stopping = false;
        let mut attempts = 0u32;
        loop {
            let opened = tokio::select! {
                r = tokio::time::timeout(READ_TIMEOUT, api.log_stream(pod, &params)) => r,
                () = cancel.reached(CancelLevel::Hard) => return Err(state.stopped()),
            };
            let (mut partial, mut broken) = (None, None);
            match opened {
                Ok(Ok(stream)) => {
                    let mut stream = Box::pin(stream);
                    let mut reader = LineReader::new(MAX_LINE_BYTES);
                    let mut index = 0usize;
                    loop {
                        let next = tokio::select! {
                            biased;
                            () = cancel.cancelled(), if !stopping => {
                                // Deleting the DaemonSet stops the agents; their last results
                                // (interrupted checks, cleanups) are still read for a while.
                                stopping = true;
                                self.stop_agents();
                                deadline = deadline.min(Instant::now() + STOP_GRACE);
                                continue;
                            }
                            () = cancel.reached(CancelLevel::Hard), if stopping => return Err(state.stopped()),
                            () = tokio::time::sleep_until(deadline.into()) => {
                                return Err(if stopping { state.stopped() } else { state.overdue(self.timeout) });
                            }
                            next = reader.next(&mut stream) => next,
                        };
                        match next {
                            Ok(Some(line)) if !line.complete => {
                                partial = Some(line);
                                break;
                            }
                            Ok(Some(line)) => {
                                index += 1;
                                if index <= consumed {
                                    continue;
                                }
                                consumed = index;
                                if let Some(end) = state.line(line, events) {
                                    return end;
                                }
                            }
                            Ok(None) => break,
                            Err(e) => {
                                broken = Some(e.to_string());
                                break;
                            }
                        }
                    }
                }
                Ok(Err(e)) => {
                    let what = format!("get the log of pod {}/{pod}", self.namespace);
                    broken = Some(self.streams.explain(&what, &e).message);
                }
                Err(_) => broken = Some(format!("no answer within {} s", READ_TIMEOUT.as_secs())),
            }
            // The stream ended without `done`: has the agent's container ended? (Once the
            // run is stopped, any node's run may have deleted the DaemonSet.)
            stopping |= cancel.is_cancelled();
            let unsure = match self.container(pod).await {
                Container::Ended(how) => {
                    if let Some(line) = partial
                        && let Some(end) = state.line(line, events)
                    {
                        return end;
                    }
                    if stopping {
                        return Err(state.stopped());
                    }
                    return Err(NodeError::new(format!(
                        "the node agent in pod {pod} on {node} ended before reporting all its results: its container {how}; {}",
                        state.last_output()
                    )));
                }
                Container::Gone if !stopping => {
                    return Err(NodeError::new(format!(
                        "pod {pod} on {node} was deleted before the node agent reported all its results; {}",
                        state.last_output()
                    )));
                }
                _ if stopping => return Err(state.stopped()),
                Container::Unknown(why) => Some(why),
                Container::Running | Container::Gone => None,
            };
            attempts += 1;
            if attempts > MAX_RECONNECTS || Instant::now() >= deadline {
                let why = broken
                    .or(unsure)
                    .unwrap_or_else(|| "the stream keeps ending while the agent runs".into());
                return Err(NodeError::new(format!(
                    "cannot follow the log of pod {pod} on {node}: {why}; {}",
                    state.last_output()
                )));
            }
            sleep_or_cancel(Duration::from_secs(1), cancel).await;
        }
    }

    /// How the agent's container in `pod` stands.
    async fn container(&self, pod: &str) -> Container {
        let api: Api<Pod> = Api::namespaced(self.cluster.client().clone(), &self.namespace);
        match api.get_opt(pod).await {
            Ok(None) => Container::Gone,
            Ok(Some(p)) => container_state(&p),
            Err(e) => Container::Unknown(
                self.cluster
                    .explain(&format!("get pod {}/{pod}", self.namespace), &e)
                    .message,
            ),
        }
    }

    /// Deletes the DaemonSet in the background, once: its pods get SIGTERM, and the agents
    /// stop their checks and run their cleanups. `close` deletes it again (idempotently).
    fn stop_agents(&self) {
        if !self.created().daemon_set || self.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        let api: Api<DaemonSet> = Api::namespaced(self.cluster.client().clone(), &self.namespace);
        let name = self.name.clone();
        self.runtime().spawn(async move {
            let _ = api.delete(&name, &DeleteParams::background()).await;
        });
    }

    /// Deletes one object; one that is already gone is no error.
    async fn delete<K>(&self, api: Api<K>, kind: &str, name: &str) -> CleanupRecord
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let action = match api.namespace() {
            Some(ns) => format!("delete {kind} {ns}/{name}"),
            None => format!("delete {kind} {name}"),
        };
        let result =
            tokio::time::timeout(READ_TIMEOUT, api.delete(name, &DeleteParams::background())).await;
        let error = match result {
            Ok(Ok(_)) => None,
            Ok(Err(kube::Error::Api(s))) if s.code == 404 => None,
            Ok(Err(e)) => Some(self.cluster.explain(&action, &e).message),
            Err(_) => Some(format!(
                "{action}: no answer within {} s",
                READ_TIMEOUT.as_secs()
            )),
        };
        CleanupRecord { action, error }
    }
}

impl Transport for DaemonSetTransport {
    fn kind(&self) -> &'static str {
        "kubernetes"
    }

    fn nodes(&self) -> &[NodeSpec] {
        &self.nodes
    }

    /// Every pod runs at once anyway; following a log is cheap.
    fn parallel(&self) -> usize {
        self.nodes.len().clamp(1, 32)
    }

    fn run(
        &self,
        node: &NodeSpec,
        request: &AgentRequest,
        cancel: &CancelToken,
        events: &mut dyn FnMut(AgentEvent),
    ) -> Result<(), NodeError> {
        self.runtime().block_on(async {
            let started = match self.deployed.get_or_init(|| self.deploy(request)).await {
                Ok(at) => *at,
                Err(e) => {
                    return Err(NodeError::new(format!("cannot start the node agent: {e}")));
                }
            };
            let deadline = started + self.timeout;
            let pod = self
                .wait_for_pod(&node.name, started, deadline, cancel)
                .await?;
            self.follow(&node.name, &pod, request, deadline, cancel, events)
                .await
        })
    }

    fn notes(&self) -> Vec<String> {
        vec![
            format!(
                "node agent: DaemonSet {} in namespace {}, image {}",
                self.name, self.namespace, self.image
            ),
            "the agent's pods run privileged in each node's network and PID namespaces, with the node's /proc, /sys, /opt/cni/bin and /etc/cni/net.d mounted read-only".to_owned(),
        ]
    }

    /// Deletes the DaemonSet, the ConfigMap and the namespace when the transport created
    /// it. Idempotent.
    fn close(&self) -> Vec<CleanupRecord> {
        {
            let mut closed = self.closed.lock().unwrap_or_else(|p| p.into_inner());
            if std::mem::replace(&mut *closed, true) {
                return Vec::new();
            }
        }
        let created = *self.created();
        let client = self.cluster.client().clone();
        let ns = self.namespace.as_str();
        self.runtime().block_on(async {
            let mut records = Vec::new();
            if created.daemon_set {
                let api = Api::<DaemonSet>::namespaced(client.clone(), ns);
                records.push(self.delete(api, "daemonset", &self.name).await);
            }
            if created.config_map {
                let api = Api::<ConfigMap>::namespaced(client.clone(), ns);
                records.push(self.delete(api, "configmap", &self.name).await);
            }
            if created.namespace {
                let api = Api::<Namespace>::all(client.clone());
                records.push(self.delete(api, "namespace", ns).await);
            }
            records
        })
    }
}

impl Drop for DaemonSetTransport {
    fn drop(&mut self) {
        let closed = *self.closed.lock().unwrap_or_else(|p| p.into_inner());
        if !closed {
            // On a thread of its own: blocking on the runtime is refused inside another one.
            // Its panic is joined here, never re-raised: a drop while unwinding must not panic
            // again (that aborts the process before the run's results are written).
            let this: &Self = self;
            std::thread::scope(|s| {
                if let Err(p) = s.spawn(|| this.close()).join() {
                    tracing::error!(
                        error = %nfvi_harness::panics::join_message(&*p),
                        "closing the node agents' DaemonSet panicked; `nfvi-verify clean` removes what is left"
                    );
                }
            });
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn sleep_or_cancel(pause: Duration, cancel: &CancelToken) {
    tokio::select! {
        () = tokio::time::sleep(pause) => {}
        () = cancel.cancelled() => {}
    }
}

/// A unique suffix for the run's object names (DNS-label safe).
fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mixed = nanos ^ (u64::from(std::process::id()) << 24);
    format!("{:010x}", mixed & 0xff_ffff_ffff)
}

#[cfg(test)]
mod tests;
