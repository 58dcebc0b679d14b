//! The upstream suites RC2 runs, driven through the Kubernetes API: the e2e suite in the
//! conformance image of the cluster's own version, one pod per focus set, as Hydrophone runs
//! it ([`e2e`]); and kube-bench as Jobs on a control-plane node and on a worker, as its own
//! job manifests do ([`bench`]). Each run is followed (pod phase, then counts from the e2e
//! log with an ETA), its results are read through the pods/log API, and they are ingested
//! through the evidence area's parsers and judges ([`EvidencePath`], handed to the area by
//! the CLI: the evidence crate depends on this one, not the other way round). Every spec
//! and every kube-bench control goes to the run's ledger; `--resume` and `--rerun-failed` run
//! a set again without the specs an earlier run settled and judge the union ([`rerun`]).
//! Everything a
//! run creates is deleted by cleanups registered before it is created, so also on failure,
//! timeout and Ctrl-C.
//!
//! Without a kubeconfig every check here is skipped with the area's reason; with
//! `upstream = "none"` the planner skips them.

mod bench;
mod e2e;
pub mod ginkgo;
mod manifest;
pub(crate) mod pod;
mod rerun;
mod sets;

use std::sync::Arc;

use nfvi_harness::{Check, ConfigError, Outcome, Target};

use crate::area::KubernetesConfig;

pub use self::sets::{FocusSet, SETS, SMOKE_FOCUS};

/// kube-bench's image when the target names none: the release RC2 ran.
pub const DEFAULT_KUBE_BENCH_IMAGE: &str = "docker.io/aquasec/kube-bench:v0.6.10";

/// The output sidecar's image under the upstream registry: the busybox the e2e suite itself
/// uses, so a mirror of registry.k8s.io holds it.
pub const OUTPUT_IMAGE_PATH: &str = "e2e-test-images/busybox:1.36.1-1";

/// Where the results of an upstream run go: the evidence area's parsers and judges. The
/// evidence crate implements it; the CLI hands it to [`crate::K8sArea::with_evidence`].
pub trait EvidencePath: Send + Sync {
    /// Parses the ginkgo JUnit (`junit_01.xml`) and the `e2e.log` an e2e pod wrote, and
    /// judges the run: as a conformance run when `conformance_skip` is the set's skip regex
    /// (every `[Conformance]` spec must pass, except those whose name that skip matches),
    /// else as a focus set (no spec failed, the log closes with SUCCESS!, at least one spec
    /// passed). `source` names where the bytes came from (for provenance); the results are
    /// of this cluster by construction.
    fn e2e(
        &self,
        source: &str,
        conformance_skip: Option<&str>,
        junit: &[u8],
        log: Option<&[u8]>,
    ) -> Outcome;

    /// Parses kube-bench's JSON (`--json`) and judges its controls against the requirements
    /// the evidence area's kube-bench mapping ties them to.
    fn kube_bench(&self, source: &str, json: &[u8]) -> Outcome;
}

/// Checks the upstream keys of the `[kubernetes]` table.
pub(crate) fn validate(k: &KubernetesConfig) -> Result<(), ConfigError> {
    let image_ok = |s: &str| {
        !s.is_empty() && s.len() <= 512 && !s.chars().any(|c| c.is_whitespace() || c.is_control())
    };
    ConfigError::ensure(
        image_ok(&k.upstream_registry) && !k.upstream_registry.ends_with('/'),
        "upstream_registry",
        format!(
            "kubernetes.upstream_registry = {:?} is not a registry (host[:port][/path], no trailing /)",
            k.upstream_registry
        ),
    )?;
    for (key, v) in [
        ("e2e_image", k.e2e_image.as_deref()),
        ("e2e_output_image", k.e2e_output_image.as_deref()),
        ("kube_bench_image", Some(k.kube_bench_image.as_str())),
    ] {
        if let Some(v) = v {
            ConfigError::ensure(
                image_ok(v),
                key,
                format!("kubernetes.{key} = {v:?} is not an image reference"),
            )?;
        }
    }
    ConfigError::ensure(
        (1..=64).contains(&k.e2e_parallel),
        "e2e_parallel",
        format!(
            "kubernetes.e2e_parallel = {} is out of range: 1 to 64 ginkgo nodes",
            k.e2e_parallel
        ),
    )?;
    ConfigError::ensure(
        (10..=86_400).contains(&k.upstream_start_timeout_secs),
        "upstream_start_timeout_secs",
        format!(
            "kubernetes.upstream_start_timeout_secs = {} is out of range: 10 to 86400 seconds",
            k.upstream_start_timeout_secs
        ),
    )?;
    ConfigError::ensure(
        (10..=172_800).contains(&k.upstream_timeout_secs),
        "upstream_timeout_secs",
        format!(
            "kubernetes.upstream_timeout_secs = {} is out of range: 10 to 172800 seconds",
            k.upstream_timeout_secs
        ),
    )
}

/// The conformance image for a server of `git_version` (`v1.33.4`, `v1.33.4+k3s1`): the
/// configured one, else `<registry>/conformance:v<major.minor.patch>`; `None` when the
/// version is not of that shape.
pub fn conformance_image(k: &KubernetesConfig, git_version: Option<&str>) -> Option<String> {
    if let Some(image) = &k.e2e_image {
        return Some(image.clone());
    }
    let v = git_version?.trim().strip_prefix('v')?;
    let core: String = v
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let parts: Vec<&str> = core.split('.').collect();
    let ok = parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.len() <= 6);
    ok.then(|| format!("{}/conformance:v{core}", k.upstream_registry))
}

/// The output sidecar's image.
pub fn output_image(k: &KubernetesConfig) -> String {
    k.e2e_output_image
        .clone()
        .unwrap_or_else(|| format!("{}/{OUTPUT_IMAGE_PATH}", k.upstream_registry))
}

/// Every image a run of the area may pull: the conformance image (of the cluster's version,
/// read from `/version` when a kubeconfig is there; `<cluster version>` otherwise), the
/// output sidecar, kube-bench, then the probe and node agent images when configured.
pub(crate) async fn images(target: &Target) -> Vec<String> {
    let k = target.config::<KubernetesConfig>();
    let conformance = match k.e2e_image.clone() {
        Some(image) => image,
        None => {
            let version = cluster_version(k).await;
            conformance_image(k, version.as_deref())
                .unwrap_or_else(|| format!("{}/conformance:<cluster version>", k.upstream_registry))
        }
    };
    let mut out = vec![conformance, output_image(k), k.kube_bench_image.clone()];
    if let Some(p) = &k.probe_image {
        out.push(p.clone());
    }
    if k.node_agent {
        out.push(k.agent_image());
    }
    out
}

/// The server's gitVersion, when a kubeconfig is given and the server answers in time.
async fn cluster_version(k: &KubernetesConfig) -> Option<String> {
    let (Some(path), None) = (k.kubeconfig_path(), k.missing()) else {
        return None;
    };
    let read = async {
        let c = crate::cluster::Cluster::open(&path, k.context.as_deref(), false)
            .await
            .ok()?;
        c.version().await.ok().map(|v| v.git_version)
    };
    tokio::time::timeout(crate::cluster::READ_TIMEOUT, read)
        .await
        .ok()
        .flatten()
}

/// The upstream checks: one per e2e focus set, then kube-bench on a control-plane node and
/// on a worker.
pub fn checks() -> Vec<Arc<dyn Check>> {
    let mut all: Vec<Arc<dyn Check>> = SETS.iter().map(e2e::check).collect();
    all.extend(bench::checks());
    all
}

/// A unique, DNS-label-safe suffix for the names of what one check creates: the process and
/// a counter, so two checks of one run never collide.
pub(crate) fn short_id() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let secs = chrono::Utc::now().timestamp() % 100_000;
    format!("{}-{secs}-{n}", std::process::id())
}

#[cfg(test)]
mod rerun_tests;
#[cfg(test)]
mod tests;
