//! One e2e focus set as Hydrophone runs it: in a namespace of its own
//! (`nfvi-verify-e2e-<id>`), a ServiceAccount bound to cluster-admin by a ClusterRoleBinding
//! (Hydrophone binds a ClusterRole of its own with every verb on every resource: the suite
//! creates namespaces, CRDs, webhooks and RBAC objects of its own), and a pod running the conformance image of the cluster's version
//! with E2E_FOCUS, E2E_SKIP and E2E_PARALLEL, its results in an emptyDir that an output sidecar
//! prints to its log once the suite writes `done`. The harness follows the pod (its phase,
//! then the counts in the e2e container's log, with an ETA), reads the sidecar's log through
//! the pods/log API, and hands junit_01.xml and e2e.log to the evidence path. The
//! ClusterRoleBinding and the namespace are deleted whatever happens (their deletion is
//! registered before they are created).
//!
//! The specs reach the run's ledger when the set's results are collected (the sidecar's
//! JUnit, after the suite wrote `done`), not as each spec ends: a set killed midway keeps
//! none, and `--resume` runs it whole again. On `--resume`/`--rerun-failed` the settled
//! specs join the skip regex ([`rerun::rerun_skip`]) unless it would pass 16 KiB: the
//! conformance set's does after about 140 names (its ~410 escaped spec names average ~119
//! bytes, ~49 KiB in all, measured on the v1.32 and v1.33 fixture JUnits), so a
//! conformance rerun runs the whole set again, and the new results replace the carried
//! ones. A `--rerun-failed` whose run ran no spec is an error, never a pass on carried
//! results ([`judge`]).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::io::AsyncBufReadExt;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{Api, LogParams, PostParams};
use nfvi_harness::ledger::{LedgerMode, TestRecord, TestStatus};
use nfvi_harness::target::UpstreamLevel;
use nfvi_harness::{
    Check, CheckContext, CheckMeta, CheckResult, Outcome, Severity, SkipKind, SkipReason, Status,
    declare,
};
use nfvi_reference_model::Area;

use super::EvidencePath;
use super::manifest::{self, E2E_CONTAINER, E2E_POD, OUTPUT_CONTAINER};
use super::pod::{self, Stage, Started, mmss};
use super::rerun;
use super::sets::FocusSet;
use crate::area::{Connection, KubernetesConfig};
use crate::cluster::{self, Cluster};

/// How long the output sidecar may take to print the results once the suite has ended.
const OUTPUT_GRACE: Duration = Duration::from_secs(120);
/// How often progress is reported.
const REPORT_EVERY: Duration = Duration::from_secs(30);

/// The check of one focus set.
pub(super) fn check(set: &'static FocusSet) -> Arc<dyn Check> {
    let severity = if set.covers.is_empty() {
        Severity::Info
    } else {
        Severity::Must
    };
    declare(
        CheckMeta::new(set.check, Area::K8s, set.title)
            .subject("kubernetes-e2e")
            .covers(severity, set.covers)
            .needs([crate::kubeconfig_need()])
            .upstream("k8s-e2e", set.tests())
            .side_effects(
                "creates a namespace nfvi-verify-e2e-<id> holding the ServiceAccount nfvi-verify-e2e and the pod e2e (the conformance image of the cluster's version and an output sidecar), and a ClusterRoleBinding nfvi-verify-e2e-<id> of that account to cluster-admin (what Hydrophone's own ClusterRole grants: every verb on every resource); the e2e suite creates and deletes namespaces and objects of its own while it runs",
                "deletes the ClusterRoleBinding and the namespace (the pod and the account with it) whatever the outcome, also on timeout and Ctrl-C",
            )
            // Bounded by kubernetes.upstream_timeout_secs (at most 48 h) and the start deadline.
            .timeout(Duration::from_secs(50 * 3600)),
        move |cx| Box::pin(run(cx, set)),
    )
    .into_check()
}

async fn run(cx: &CheckContext, set: &'static FocusSet) -> CheckResult {
    let smoke = cx.target().upstream == UpstreamLevel::Smoke;
    if let Some(why) = set.not_at(smoke) {
        return Ok(Outcome::skip(SkipReason {
            kind: SkipKind::NotApplicable,
            message: why.into(),
        }));
    }
    let k = cx.target().config::<KubernetesConfig>();
    let c = cluster::for_check(cx).await?;
    let Some(evidence) = cx.shared::<Connection>().evidence.clone() else {
        return Err("this build hands the k8s area no evidence path (K8sArea::with_evidence): the e2e results could not be judged".into());
    };
    let version = c.version().await?;
    let image = super::conformance_image(k, Some(&version.git_version)).ok_or_else(|| {
        format!(
            "the server's version {:?} is not vMAJOR.MINOR.PATCH, so its conformance image is unknown: set kubernetes.e2e_image",
            version.git_version
        )
    })?;
    let focus = set.focus;
    // What an earlier run settled (--resume, --rerun-failed) is not run again: its specs are
    // added to the skip (super::rerun).
    let ledger = cx.ledger();
    let stream = rerun::stream(set);
    let prior = ledger.prior(&stream).to_vec();
    let (skip, too_long) = rerun::rerun_skip(set.skip, &prior);
    if let Some(why) = &too_long {
        tracing::warn!(check = set.check, "{why}");
    }
    let parallel = if set.serial { 1 } else { k.e2e_parallel };
    let id = super::short_id();
    let ns = format!("nfvi-verify-e2e-{id}");
    let evidence_of = |o: Outcome| {
        o.with_property("image", &image)
            .with_property("focus", focus)
            .with_property("skip", set.skip)
            .with_property(
                "skip (this run)",
                if skip == set.skip {
                    "the set's"
                } else {
                    "the set's and the settled specs'"
                },
            )
            .with_property("namespace", &ns)
            .with_property("API server", &c.server)
    };
    // One set at a time on the cluster; waiting for the others is not this set's time.
    let shared = cx.shared::<Connection>();
    let _turn = tokio::select! {
        turn = shared.upstream.lock() => turn,
        () = cx.cancel().cancelled() => return Err("the run was stopped before this set's turn came".into()),
    };
    let started = Instant::now();
    let result = drive(
        cx,
        &c,
        k,
        set,
        &Run {
            ns: &ns,
            image: &image,
            focus,
            skip: &skip,
            parallel,
            mark: &format!("=== nfvi-verify {id}"),
        },
    )
    .await;
    let (junit, log, progress) = match result {
        Ok(v) => v,
        Err(o) => return Err(evidence_of(o).into()),
    };
    let source = format!("pod {ns}/{E2E_POD}, container {OUTPUT_CONTAINER}");
    let conformance_skip = set.conformance.then_some(set.skip);
    let mut o = judge(
        evidence.as_ref(),
        &Judged {
            set: set.check,
            rerun_failed: ledger.mode() == Some(LedgerMode::Rerun),
            source: &source,
            conformance_skip,
            focus: set.focus,
            stream: &stream,
            prior: &prior,
            origin: ledger.origin(),
        },
        &junit,
        log.as_deref(),
        |records| ledger.append(records),
    );
    if let Some(why) = too_long {
        o = o.with_property("e2e.rerun", why);
    }
    if set.smoke {
        o.message = format!(
            "smoke sample (upstream = \"smoke\": focus {}): {}; --upstream full runs every conformance spec",
            set.focus, o.message,
        );
    }
    Ok(evidence_of(o)
        .with_property("progress", progress)
        .with_metric("duration", started.elapsed().as_secs_f64(), "s"))
}

/// What the judging of one set's results takes besides the bytes.
pub(crate) struct Judged<'a> {
    /// The set's check: `k8s.e2e.sig-network`.
    pub(crate) set: &'a str,
    /// The run is a `--rerun-failed` (the prior results come from another run), not a
    /// `--resume` (they are this run's own).
    pub(crate) rerun_failed: bool,
    pub(crate) source: &'a str,
    pub(crate) conformance_skip: Option<&'a str>,
    pub(crate) focus: &'a str,
    /// The ledger stream: `k8s-e2e:<set>`.
    pub(crate) stream: &'a str,
    /// What an earlier run settled for the set.
    pub(crate) prior: &'a [TestRecord],
    /// The run it comes from.
    pub(crate) origin: Option<&'a str>,
}

/// Judges a set's results through the evidence path and records every spec in the ledger
/// (`append`). Without carried results, the JUnit and e2e.log as the pod wrote them. With
/// them, the union ([`rerun::merge`]: a carried spec the run skipped keeps its carried
/// status) as one JUnit, without the e2e.log, whose counts are the new run's only; the new
/// run is judged on its own as well (its e2e.log's verdict, a BeforeSuite failure), and a
/// failure or error there decides when the union would pass. `e2e.carried_over` says how
/// many specs came from which run.
///
/// On `--rerun-failed` a set whose new run ran no spec (every one carried, or skipped by
/// the settled specs' skip) is an error, never a pass on carried results alone: the set
/// failed in the earlier run although every spec passed there (its pod, its log), and
/// nothing of this run observed it again. On `--resume` the carried results are this
/// run's own, and judging them alone is fine.
pub(crate) fn judge(
    evidence: &dyn EvidencePath,
    j: &Judged<'_>,
    junit: &[u8],
    log: Option<&[u8]>,
    append: impl Fn(&[TestRecord]) -> std::io::Result<()>,
) -> Outcome {
    let stream_cases = rerun::cases(junit);
    let (mut o, recorded) = match (&stream_cases, j.prior.is_empty()) {
        (Ok(cases), false) => {
            let ran = cases
                .iter()
                .any(|c| c.spec().is_some() && c.status != TestStatus::Skipped);
            let merged = rerun::merge(j.prior, cases.clone());
            let union = rerun::junit(&merged.cases, j.focus);
            let mut o = evidence.e2e(
                &format!("{} and the carried results", j.source),
                j.conformance_skip,
                &union,
                None,
            );
            if ran {
                let own = evidence.e2e(j.source, None, junit, log);
                if matches!(own.status, Status::Failed | Status::Error)
                    && o.status == Status::Passed
                {
                    o.status = own.status;
                    o.message = format!(
                        "this run's own results: {}; with the carried ones: {}",
                        own.message, o.message
                    );
                }
            }
            if j.rerun_failed && !ran {
                o.status = Status::Error;
                o.message = format!(
                    "nothing was re-run: every spec of {} had passed in run {}; its failure there was not a spec's; run the set again without --rerun-failed",
                    j.set,
                    j.origin.unwrap_or("unknown")
                );
            }
            if merged.carried > 0 {
                o = o.with_property(
                    "e2e.carried_over",
                    format!(
                        "{} spec(s) carried over from run {} (not run again)",
                        merged.carried,
                        j.origin.unwrap_or("unknown")
                    ),
                );
            }
            (o, rerun::records(j.stream, &merged.cases))
        }
        (Ok(cases), true) => (
            evidence.e2e(j.source, j.conformance_skip, junit, log),
            rerun::records(j.stream, cases),
        ),
        (Err(_), _) => (
            evidence.e2e(j.source, j.conformance_skip, junit, log),
            Vec::new(),
        ),
    };
    if let Err(e) = append(&recorded) {
        tracing::warn!(error = %e, "cannot write the upstream ledger");
        o = o.with_property(
            "e2e.ledger",
            format!(
                "the specs' ledger could not be written ({e}): a resumed run would run them again"
            ),
        );
    }
    o
}

/// The names and parameters of one run of a set.
struct Run<'a> {
    ns: &'a str,
    image: &'a str,
    focus: &'a str,
    skip: &'a str,
    parallel: u32,
    mark: &'a str,
}

/// Creates the account, its binding and the pod, follows the pod to its end and returns the
/// JUnit, the e2e.log and the last progress line.
async fn drive(
    cx: &CheckContext,
    c: &Arc<Cluster>,
    k: &KubernetesConfig,
    set: &FocusSet,
    r: &Run<'_>,
) -> Result<(Vec<u8>, Option<Vec<u8>>, String), Outcome> {
    let ns = r.ns;
    let client = c.client().clone();
    pod::namespace(cx, c, ns, false).await.map_err(|e| e.0)?;
    let explain = |what: String| move |e: kube::Error| c.explain(&what, &e).outcome();
    Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &manifest::service_account(ns))
        .await
        .map_err(explain(format!(
            "create serviceaccount {ns}/{}",
            manifest::E2E_ACCOUNT
        )))?;
    // The binding is cluster-wide: deleted on its own, registered before it exists.
    let binding = ns.to_owned();
    let (cluster, name) = (c.clone(), binding.clone());
    cx.on_cleanup_async(format!("delete clusterrolebinding {binding}"), async move {
        let api = Api::<ClusterRoleBinding>::all(cluster.client().clone());
        pod::delete(&cluster, api, "clusterrolebinding", &name).await
    });
    Api::<ClusterRoleBinding>::all(client.clone())
        .create(
            &PostParams::default(),
            &manifest::cluster_role_binding(&binding, ns),
        )
        .await
        .map_err(explain(format!(
            "create clusterrolebinding {binding} (to cluster-admin)"
        )))?;
    let output_image = super::output_image(k);
    let spec = manifest::E2ePod {
        image: r.image,
        output_image: &output_image,
        focus: r.focus,
        skip: r.skip,
        parallel: r.parallel,
        mark: r.mark,
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    pods.create(&PostParams::default(), &manifest::e2e_pod(&spec))
        .await
        .map_err(explain(format!("create pod {ns}/{E2E_POD}")))?;
    let what = format!("the e2e pod {ns}/{E2E_POD}");
    let get = || async {
        pods.get_opt(E2E_POD)
            .await
            .map_err(|e| c.explain(&format!("get pod {ns}/{E2E_POD}"), &e).message)
    };
    let start = Duration::from_secs(k.upstream_start_timeout_secs);
    match pod::wait_started(cx, &what, r.image, E2E_CONTAINER, start, get)
        .await
        .map_err(|e| e.0)?
    {
        Started::Yes(_) => {}
        Started::No(why) => return Err(Outcome::error(why)),
    }
    // Progress from the e2e container's log, on a stream without a read deadline.
    let progress = Arc::new(Mutex::new(Progress::default()));
    let follower = follow_progress(k, ns, progress.clone());
    let result = wait_done(cx, c, k, set, r, &pods, &progress).await;
    follower.abort();
    let last = progress.lock().map(|p| p.summary()).unwrap_or_default();
    let log = result?;
    let (junit, e2e_log) = pod::split_output(&log, r.mark)
        .map_err(|why| Outcome::error(format!("{what}: {why}")).with_property("progress", &last))?;
    // The whole e2e.log counts last: a suite that ended before the follower read a line
    // (a busy jump host) still shows its counts.
    let mut whole = Progress::default();
    for line in String::from_utf8_lossy(e2e_log.unwrap_or_default()).lines() {
        whole.line(line);
    }
    let last = if whole.will_run.is_some() {
        whole.summary()
    } else {
        last
    };
    Ok((junit.to_vec(), e2e_log.map(<[u8]>::to_vec), last))
}

/// Waits for the output sidecar to end (it prints the results and exits) and returns its
/// log; reports progress every [`REPORT_EVERY`].
async fn wait_done(
    cx: &CheckContext,
    c: &Cluster,
    k: &KubernetesConfig,
    set: &FocusSet,
    r: &Run<'_>,
    pods: &Api<Pod>,
    progress: &Mutex<Progress>,
) -> Result<Vec<u8>, Outcome> {
    let ns = r.ns;
    let started = Instant::now();
    let timeout = Duration::from_secs(k.upstream_timeout_secs);
    let mut reported = Instant::now();
    let mut suite_ended: Option<Instant> = None;
    // The published duration is of the whole set: no estimate from it for a restricted run.
    let published = set.published.filter(|_| r.skip == set.skip);
    let mut shown: Option<Progress> = None;
    loop {
        if let Ok(p) = progress.lock()
            && shown.as_ref() != Some(&*p)
        {
            cx.progress(p.report(started.elapsed(), published));
            shown = Some(p.clone());
        }
        let pod = pods
            .get_opt(E2E_POD)
            .await
            .map_err(|e| c.explain(&format!("get pod {ns}/{E2E_POD}"), &e).outcome())?
            .ok_or_else(|| {
                Outcome::error(format!(
                    "the e2e pod {ns}/{E2E_POD} was deleted before the suite ended"
                ))
            })?;
        let summary = || progress.lock().map(|p| p.summary()).unwrap_or_default();
        match pod::stage(&pod, OUTPUT_CONTAINER) {
            Stage::Ended(0, _) => break,
            Stage::Ended(code, reason) => {
                return Err(Outcome::error(format!(
                    "the output sidecar of {ns}/{E2E_POD} ended with exit code {code} ({reason}) before printing the results"
                )));
            }
            Stage::Failed(why) => {
                return Err(Outcome::error(format!(
                    "the e2e pod {ns}/{E2E_POD} failed: {why}"
                )));
            }
            _ => {}
        }
        if let Stage::Ended(code, reason) = pod::stage(&pod, E2E_CONTAINER) {
            let since = *suite_ended.get_or_insert_with(Instant::now);
            if since.elapsed() >= OUTPUT_GRACE {
                return Err(Outcome::error(format!(
                    "the e2e container of {ns}/{E2E_POD} ended (exit code {code}, {reason}) without writing `done`: the suite did not finish; {}",
                    summary()
                )));
            }
        }
        if started.elapsed() >= timeout {
            return Err(Outcome::error(format!(
                "{} did not finish within {} s (kubernetes.upstream_timeout_secs); last progress: {}",
                set.check,
                timeout.as_secs(),
                summary()
            )));
        }
        if reported.elapsed() >= REPORT_EVERY {
            reported = Instant::now();
            let eta = progress
                .lock()
                .map(|p| p.eta(started.elapsed(), published))
                .unwrap_or_default();
            tracing::info!(check = set.check, "progress: {}{eta}", summary());
        }
        pod::stopped_or_sleep(cx, &format!("{} ({ns}/{E2E_POD})", set.check))
            .await
            .map_err(|e| e.0.with_property("progress", summary()))?;
    }
    let params = LogParams {
        container: Some(OUTPUT_CONTAINER.to_owned()),
        ..LogParams::default()
    };
    let text = pods.logs(E2E_POD, &params).await.map_err(|e| {
        c.explain(
            &format!("get the log of pod {ns}/{E2E_POD}, container {OUTPUT_CONTAINER}"),
            &e,
        )
        .outcome()
    })?;
    Ok(text.into_bytes())
}

/// Follows the e2e container's log in the background, counting specs into `progress`; a
/// stream that cannot be opened only costs the counts.
fn follow_progress(
    k: &KubernetesConfig,
    ns: &str,
    progress: Arc<Mutex<Progress>>,
) -> tokio::task::JoinHandle<()> {
    let (path, context, ns) = (k.kubeconfig_path(), k.context.clone(), ns.to_owned());
    tokio::spawn(async move {
        let Some(path) = path else { return };
        let Ok(streams) = Cluster::open_with(&path, context.as_deref(), false, None).await else {
            return;
        };
        let api: Api<Pod> = Api::namespaced(streams.client().clone(), &ns);
        let params = LogParams {
            container: Some(E2E_CONTAINER.to_owned()),
            follow: true,
            ..LogParams::default()
        };
        let Ok(stream) = api.log_stream(E2E_POD, &params).await else {
            return;
        };
        let mut lines = Box::pin(stream).lines();
        while let Some(Ok(line)) = futures_util::StreamExt::next(&mut lines).await {
            if let Ok(mut p) = progress.lock() {
                p.line(&line);
            }
        }
    })
}

/// Counts in the e2e log so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    /// `Will run N of M specs`.
    pub(crate) will_run: Option<u64>,
    /// Specs ended (ginkgo's `•` lines).
    pub(crate) done: u64,
    /// Of which failed (`[FAILED]`, `[PANICKED]`, `[TIMEDOUT]`).
    pub(crate) failed: u64,
}

impl Progress {
    /// Takes one line of the e2e log.
    pub(crate) fn line(&mut self, line: &str) {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("Will run ")
            && let Some(n) = rest.split_whitespace().next()
            && let Ok(n) = n.parse()
        {
            self.will_run = Some(n);
        } else if t.starts_with('•') {
            self.done += 1;
            if ["[FAILED]", "[PANICKED]", "[TIMEDOUT]", "[INTERRUPTED]"]
                .iter()
                .any(|m| t.contains(m))
            {
                self.failed += 1;
            }
        }
    }

    /// `120 of 419 specs ended, 0 failed`, or what is known.
    pub(crate) fn summary(&self) -> String {
        match self.will_run {
            Some(n) => format!("{} of {n} specs ended, {} failed", self.done, self.failed),
            None if self.done > 0 => format!("{} specs ended, {} failed", self.done, self.failed),
            None => "the suite is starting (no spec ended yet)".to_owned(),
        }
    }

    /// `; ETA 7:30`: from the rate so far when specs have ended, else from the published
    /// duration of the set; empty when neither is known.
    pub(crate) fn eta(&self, elapsed: Duration, published: Option<Duration>) -> String {
        self.remaining(elapsed, published)
            .map_or_else(String::new, |r| format!("; ETA {}", mmss(r)))
    }

    /// The time left: from the rate so far when specs have ended, else from the published
    /// duration of the set (`None` when neither is known).
    pub(crate) fn remaining(
        &self,
        elapsed: Duration,
        published: Option<Duration>,
    ) -> Option<Duration> {
        match self.will_run {
            Some(total) if self.done > 0 && total >= self.done => {
                let per = elapsed.as_secs_f64() / self.done as f64;
                Some(Duration::from_secs_f64(per * (total - self.done) as f64))
            }
            _ => published.map(|p| p.saturating_sub(elapsed)),
        }
    }

    /// What the console shows next to the check: specs ended of those ginkgo said it will
    /// run (`Will run N of M specs`; unknown until that line), failed so far, and the time
    /// left from the rate, or from the published duration of a whole set (`published`, only
    /// when the run is not restricted by settled specs) before a spec ended.
    pub(crate) fn report(
        &self,
        elapsed: Duration,
        published: Option<Duration>,
    ) -> nfvi_harness::Progress {
        nfvi_harness::Progress {
            done: self.done,
            total: self.will_run,
            unit: "specs",
            failed: self.failed,
            eta: self.remaining(elapsed, published),
        }
    }
}
