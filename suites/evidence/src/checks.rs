//! The evidence checks. Each gathers the evidence of its kind (read once per run), refuses what
//! is too old or of another cluster, then calls a pure judge (crate::judge) and attaches the
//! provenance of every file it judged.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use nfvi_harness::{
    Check, CheckContext, CheckMeta, CheckResult, Outcome, Provenance, Severity, SkipKind,
    SkipReason, Status, declare,
};
use nfvi_reference_model::Area;
use nfvi_suite_k8s::KubernetesConfig;

use crate::area::{EvidenceConfig, Store};
use crate::judge::trust::{Identity, Observed};
use crate::judge::{bench, e2e, tempest, trust};
use crate::model::{Ingested, Report, TempestTest};

/// The evidence area's ID.
pub const AREA: Area = Area::new("evidence");

const READ_ONLY: &str = "none: reads the result files given; with a kubeconfig, GET /version and the kube-system namespace";

/// Every check of the area.
pub fn checks() -> Vec<Arc<dyn Check>> {
    let mut all = vec![
        declare(
            CheckMeta::new(
                "evidence.k8s.conformance",
                AREA,
                "A Kubernetes e2e conformance run of this cluster passed (Sonobuoy, Hydrophone)",
            )
            .subject("kubernetes-e2e")
            .covers(Severity::Must, &["gen.cnt.03", "ra2.k8s.001"])
            .read_only(READ_ONLY),
            |cx| Box::pin(conformance(cx)),
        )
        .into_check(),
        declare(
            CheckMeta::new(
                "evidence.kube-bench.cis",
                AREA,
                "Every scored CIS Kubernetes Benchmark control passes (kube-bench)",
            )
            .subject("kube-bench")
            .covers(Severity::Should, &["sec.std.001"])
            .read_only(READ_ONLY),
            |cx| Box::pin(kube_bench(cx, None)),
        )
        .into_check(),
    ];
    for (i, rule) in bench::rules().into_iter().enumerate() {
        let covers = [rule.id.as_str()];
        all.push(
            declare(
                CheckMeta::new(rule.check.clone(), AREA, rule.title.clone())
                    .subject("kube-bench")
                    .covers(Severity::Must, &covers)
                    .read_only(READ_ONLY),
                move |cx| Box::pin(kube_bench(cx, Some(i))),
            )
            .into_check(),
        );
    }
    for (i, s) in tempest::services().into_iter().enumerate() {
        let covers = [s.requirement.as_str()];
        all.push(
            declare(
                CheckMeta::new(
                    format!("evidence.tempest.{}", s.name),
                    AREA,
                    s.title.clone(),
                )
                .subject("tempest")
                .covers(Severity::Must, &covers)
                .read_only(READ_ONLY),
                move |cx| Box::pin(tempest_check(cx, i)),
            )
            .into_check(),
        );
    }
    all
}

fn missing(message: String) -> Outcome {
    Outcome::skip(SkipReason {
        kind: SkipKind::MissingCapability,
        message,
    })
}

/// The evidence of one kind that may be judged, each with its provenance marked with the
/// identity comparison, and the notes to add to the verdict.
struct Trusted {
    items: Vec<Ingested>,
    notes: Vec<String>,
}

/// Gathers the inputs `of_kind` selects, refusing stale ones and those of another cluster.
async fn gather(
    cx: &CheckContext,
    of_kind: fn(&Report) -> bool,
    none: &str,
) -> Result<Trusted, Outcome> {
    let all = cx.shared::<Store>().evidence(cx.target()).await;
    let mut items = Vec::new();
    let mut nothing = Vec::new();
    for r in all.iter() {
        match r {
            Err(e) => return Err(Outcome::error(e.to_string())),
            Ok(i) if of_kind(&i.report) => items.push(i.clone()),
            Ok(Ingested {
                report: Report::Nothing(why),
                ..
            }) => nothing.push(why.clone()),
            Ok(_) => {}
        }
    }
    if items.is_empty() {
        let mut m = none.to_owned();
        if !nothing.is_empty() {
            m.push_str(&format!(" ({})", nothing.join("; ")));
        }
        return Err(missing(m));
    }
    let max_age = cx.target().config::<EvidenceConfig>().max_age_days;
    let now = chrono::Utc::now();
    let mut refused = Vec::new();
    for i in &items {
        if let Err(why) = trust::freshness(
            &i.input.display().to_string(),
            i.run_at,
            i.run_at_source,
            now,
            max_age,
        ) {
            refused.push(why);
        }
    }
    let need_uid = items.iter().any(|i| i.recorded.cluster_uid.is_some());
    let recorded_any = items.iter().any(|i| i.recorded.describe().is_some());
    let cluster = if recorded_any {
        observe(cx, need_uid)
            .await
            .map_err(|o| with_provenance(o, &items))?
    } else {
        None
    };
    let mut notes = Vec::new();
    for i in &mut items {
        match trust::identity(&i.recorded, cluster.as_ref()) {
            Identity::Verified(t) => {
                i.provenance
                    .iter_mut()
                    .for_each(|p| p.identity_verified = true);
                notes.push(t);
            }
            Identity::NotCompared(t) => notes.push(t),
            Identity::Mismatch(t) => refused.push(t),
        }
    }
    if !refused.is_empty() {
        return Err(with_provenance(Outcome::error(refused.join("; ")), &items));
    }
    // Several inputs can give the same note; each is said once, in order.
    let mut seen = std::collections::HashSet::new();
    notes.retain(|n| seen.insert(n.clone()));
    Ok(Trusted { items, notes })
}

/// The cluster's version and kube-system UID, when a kubeconfig is given.
async fn observe(cx: &CheckContext, need_uid: bool) -> Result<Option<Observed>, Outcome> {
    if cx.target().config::<KubernetesConfig>().missing().is_some() {
        return Ok(None);
    }
    let prefix = |mut o: Outcome| {
        o.message = format!(
            "cannot compare the evidence with the cluster: {}",
            o.message
        );
        o
    };
    let cluster = nfvi_suite_k8s::cluster::for_check(cx)
        .await
        .map_err(prefix)?;
    let version = cluster.version().await.map_err(|e| prefix(e.outcome()))?;
    let kube_system_uid = if need_uid {
        let api = kube::Api::<Namespace>::all(cluster.client().clone());
        Some(match api.get("kube-system").await {
            Ok(ns) => ns
                .metadata
                .uid
                .ok_or_else(|| "the kube-system namespace has no uid".to_owned()),
            Err(e) => Err(cluster.explain("get namespace kube-system", &e).message),
        })
    } else {
        None
    };
    Ok(Some(Observed {
        git_version: version.git_version,
        kube_system_uid,
    }))
}

fn provenance_of(items: &[Ingested]) -> Vec<Provenance> {
    items.iter().flat_map(|i| i.provenance.clone()).collect()
}

fn with_provenance(mut o: Outcome, items: &[Ingested]) -> Outcome {
    o.evidence.provenance.extend(provenance_of(items));
    o
}

/// The verdict with the identity notes added to its message and the provenance attached.
fn finish(mut o: Outcome, t: &Trusted) -> Outcome {
    if !t.notes.is_empty() && o.status != Status::Skipped {
        o.message = format!("{}; {}", o.message, t.notes.join("; "));
    }
    with_provenance(o, &t.items)
}

async fn conformance(cx: &CheckContext) -> CheckResult {
    let t = gather(
        cx,
        |r| matches!(r, Report::E2e(_)),
        "no Kubernetes e2e evidence given: pass --evidence with the junit_01.xml of a conformance run (its e2e.log beside it), its submission directory, or a Sonobuoy results tarball",
    )
    .await?;
    let mut verdicts = Vec::new();
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for i in &t.items {
        let Report::E2e(run) = &i.report else {
            continue;
        };
        passed += run.passed;
        failed += run.failed.len();
        skipped += run.skipped + run.pending;
        let mut o = e2e::conformance(run);
        if t.items.len() > 1 {
            o.message = format!("{}: {}", i.input.display(), o.message);
        }
        verdicts.push((o, run));
    }
    let worst = [Status::Failed, Status::Error, Status::Passed]
        .into_iter()
        .find(|s| verdicts.iter().any(|(o, _)| o.status == *s))
        .unwrap_or(Status::Error);
    let message = verdicts
        .iter()
        .filter(|(o, _)| o.status == worst)
        .map(|(o, _)| o.message.clone())
        .collect::<Vec<_>>()
        .join(" | ");
    let mut o = match worst {
        Status::Passed => Outcome::pass(message),
        Status::Failed => Outcome::fail(message),
        _ => Outcome::error(message),
    };
    if let Some((_, run)) = verdicts.first() {
        if let Some(f) = &run.focus {
            o = o.with_property("focus", f);
        }
        if let Some(flavor) = run.flavor {
            o = o.with_property("junit", format!("{flavor:?}"));
        }
        if let Some(log) = run.log.as_ref().and_then(|l| l.summary) {
            o = o.with_property(
                "e2e_log",
                format!(
                    "{} -- {} Passed | {} Failed | {} Pending | {} Skipped",
                    if log.success { "SUCCESS!" } else { "FAIL!" },
                    log.passed,
                    log.failed,
                    log.pending,
                    log.skipped
                ),
            );
        }
        if let Some(p) = &run.product {
            let text = [&p.vendor, &p.name, &p.version]
                .into_iter()
                .flatten()
                .cloned()
                .collect::<Vec<_>>()
                .join(" ");
            o = o.with_property("product", text);
        }
        if !run.failed.is_empty() {
            o = o.with_property("failed_specs", run.failed.join("\n"));
        }
        o = o.with_metric(
            "conformance_specs_passed",
            run.conformance_passed as f64,
            "count",
        );
    }
    let o = o
        .with_metric("specs_passed", passed as f64, "count")
        .with_metric("specs_failed", failed as f64, "count")
        .with_metric("specs_skipped", skipped as f64, "count");
    Ok(finish(o, &t))
}

async fn kube_bench(cx: &CheckContext, rule: Option<usize>) -> CheckResult {
    let t = gather(
        cx,
        |r| matches!(r, Report::KubeBench(_)),
        "no kube-bench evidence given: pass --evidence with kube-bench's JSON (`kube-bench run --json`), of the control plane and the nodes",
    )
    .await?;
    let mut controls = Vec::new();
    let mut benchmarks = Vec::new();
    for i in &t.items {
        if let Report::KubeBench(run) = &i.report {
            controls.extend(run.controls.iter().cloned());
            if let Some(b) = &run.benchmark
                && !benchmarks.contains(b)
            {
                benchmarks.push(b.clone());
            }
        }
    }
    let o = match rule {
        None => bench::scored(&controls),
        Some(i) => bench::requirement(&bench::rules()[i], &controls),
    };
    let o = o.with_property("benchmark", benchmarks.join(", "));
    Ok(finish(o, &t))
}

async fn tempest_check(cx: &CheckContext, index: usize) -> CheckResult {
    let service = &tempest::services()[index];
    let t = gather(
        cx,
        |r| matches!(r, Report::Tempest(_)),
        "no Tempest evidence given: pass --evidence with the subunit v2 stream of a Tempest run (`stestr last --subunit`) or its subunit2junitxml JUnit",
    )
    .await?;
    let tests: Vec<&TempestTest> = t
        .items
        .iter()
        .filter_map(|i| match &i.report {
            Report::Tempest(run) => Some(run.tests.iter()),
            _ => None,
        })
        .flatten()
        .collect();
    let Some(o) = tempest::service(service, &tests) else {
        return Ok(with_provenance(
            missing(format!(
                "the Tempest evidence given ({} test(s)) holds no test of {} ({}): pass a Tempest run that includes them with --evidence",
                tests.len(),
                service.requirement,
                service.prefixes.join(", ")
            )),
            &t.items,
        ));
    };
    Ok(finish(o, &t))
}
