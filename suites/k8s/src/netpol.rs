//! NetworkPolicy enforcement, observed with the in-cluster probe pods: in a namespace of its
//! own (`nfvi-verify-net-policy-*`), the check starts a responder probe pod
//! (`role=responder`, `nfvi-verify probe serve`) and probes it with two one-shot client pods
//! (`nfvi-verify probe ping`), one labelled `role=allowed`, one `role=denied`. Before any
//! policy both must get answers: the positive control of the whole probe path. Then it applies
//! a NetworkPolicy that selects the responder and admits ingress only from `role=allowed`
//! (UDP [`PORT`]), waits [`SETTLE`] for the network solution to program it, and probes again
//! with two new clients of the same roles: the allowed one must still get answers (the
//! positive control after the policy) and the denied one must not. Silence counts only next to
//! those answers; a probe that could not be sent, or a client that did not report, is an
//! error, never a pass. The namespace, and with it the pods and the policy, is deleted
//! whatever happens (its deletion is registered before it is created).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, PostParams};
use nfvi_harness::{Check, CheckContext, CheckMeta, CheckResult, Outcome, Severity, declare};
use nfvi_reference_model::Area;
use serde_json::json;

use crate::cluster::{self, Cluster};
use crate::probe_ns::ProbeNs;
use crate::probes::{PORT, pick_nodes, pod, serve_args};

/// How long the network solution gets to program the policy before the second probes.
pub const SETTLE: Duration = Duration::from_secs(5);
/// Probes each client sends (the prober gives up after 10 unanswered in a row).
const PROBES: u64 = 20;
/// The start of the check's namespace names (`nfvi-verify clean` knows it).
pub(crate) const NS_PREFIX: &str = "nfvi-verify-net-policy-";
/// The policy the check applies.
pub const POLICY: &str = "nfvi-verify-allow-role-allowed";
/// The label key that gives each probe pod its part.
pub const ROLE: &str = "role";
const RESPONDER: &str = "responder";

/// The check.
pub fn checks() -> Vec<Arc<dyn Check>> {
    vec![declare(
        CheckMeta::new(
            "k8s.network-policy.enforced",
            Area::K8s,
            "The pod network enforces NetworkPolicy: a policy admitting one client stops another that reached the same pod before, seen by probe pods",
        )
        .subject("in-cluster-probes")
        // The network solution enforces NetworkPolicy (ra2.ntw.014), which filters workload
        // traffic (infra.net.cfg.004). Tenant segregation across namespaces (sec.ci.008) is
        // not exercised: the policy here selects pods within one namespace; the e2e Netpol
        // specs (k8s.e2e.network-policy) cover namespace selectors.
        .covers(Severity::Must, &["ra2.ntw.014", "infra.net.cfg.004"])
        .needs([crate::kubeconfig_need()])
        .side_effects(
            "creates a namespace nfvi-verify-net-policy-* (label app.kubernetes.io/managed-by=nfvi-verify) holding a responder probe pod (role=responder), four one-shot client probe pods (role=allowed and role=denied, before and after the policy) and a NetworkPolicy nfvi-verify-allow-role-allowed that admits ingress to the responder only from role=allowed (UDP 7777); UDP probes from the clients to the responder",
            "deletes the namespace, and with it the pods and the NetworkPolicy, whatever the outcome (also on Ctrl-C)",
        )
        .timeout(Duration::from_secs(600)),
        |cx| Box::pin(run(cx)),
    )
    .into_check()]
}

async fn run(cx: &CheckContext) -> CheckResult {
    let k = cx.target().config::<crate::KubernetesConfig>();
    if let Some(skip) = k.without_probe_image(
        "NetworkPolicy enforcement is observed by probe pods, which need an image with nfvi-verify on PATH",
    ) {
        return Ok(skip);
    }
    let c = cluster::for_check(cx).await?;
    let served = c.discovery().await?.iter().any(|gv| {
        gv.group == "networking.k8s.io"
            && gv.version == "v1"
            && gv.resources.iter().any(|r| r == "networkpolicies")
    });
    if !served {
        return Ok(Outcome::fail(
            "networking.k8s.io/v1 networkpolicies is not served: the cluster has no NetworkPolicy API, so nothing enforces one",
        )
        .with_property("API server", &c.server));
    }
    // Client and responder on two nodes when there are two (the policy must hold across
    // nodes); otherwise where the scheduler puts them.
    let nodes = pick_nodes(&c.nodes().await?);
    let ns = format!("{NS_PREFIX}{}", crate::upstream::short_id());
    let shown = nodes.as_ref().map_or_else(
        || "chosen by the scheduler".to_owned(),
        |(a, b)| format!("{a} (clients), {b} (responder)"),
    );
    let evidence = |o: Outcome| {
        o.with_property("API server", &c.server)
            .with_property("namespace", &ns)
            .with_property("nodes", &shown)
    };
    let nodes = nodes.as_ref().map(|(a, b)| (a.as_str(), b.as_str()));
    exercise(cx, &c, &ns, nodes)
        .await
        .map(evidence)
        .map_err(|e| evidence(e.0).into())
}

/// A probe pod with its role, on `node` (the scheduler's choice without one).
fn probe_pod(name: &str, role: &str, node: Option<&str>, image: &str, args: Vec<String>) -> Pod {
    let restart = if role == RESPONDER { "Always" } else { "Never" };
    let mut p = pod(name, node.unwrap_or_default(), image, args, restart, &[]);
    if node.is_none()
        && let Some(spec) = p.spec.as_mut()
    {
        spec.node_name = None;
    }
    if let Some(l) = p.metadata.labels.as_mut() {
        l.insert(ROLE.into(), role.into());
    }
    p
}

/// The policy: the responder admits ingress from `role=allowed` pods of its namespace only,
/// on the probes' port (UDP; a port without a protocol would mean TCP).
pub(crate) fn policy() -> serde_json::Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": POLICY, "labels": crate::clean::labels()},
        "spec": {
            "podSelector": {"matchLabels": {ROLE: RESPONDER}},
            "policyTypes": ["Ingress"],
            "ingress": [{
                "from": [{"podSelector": {"matchLabels": {ROLE: "allowed"}}}],
                "ports": [{"protocol": "UDP", "port": PORT}]
            }]
        }
    })
}

async fn exercise(
    cx: &CheckContext,
    c: &Arc<Cluster>,
    ns: &str,
    nodes: Option<(&str, &str)>,
) -> CheckResult {
    let k = cx.target().config::<crate::KubernetesConfig>();
    let image = k.probe_image.as_deref().unwrap_or_default();
    let space = ProbeNs::create(cx, c, ns).await?;
    let serve = probe_pod(
        RESPONDER,
        RESPONDER,
        nodes.map(|n| n.1),
        image,
        serve_args(),
    );
    let responder = space.start(&serve).await?;
    let ip = responder
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .unwrap_or_default();
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| format!("the responder's pod IP {ip:?} is not an IP address"))?;
    let target = SocketAddr::new(ip, PORT);
    let client = nodes.map(|n| n.0);
    let before = round(&space, "before", target, client, image).await?;
    if !before.answered() {
        return Ok(judge(&before, None));
    }
    let policies: Api<NetworkPolicy> = space.api();
    let p: NetworkPolicy =
        serde_json::from_value(policy()).map_err(|e| format!("the NetworkPolicy manifest: {e}"))?;
    policies
        .create(&PostParams::default(), &p)
        .await
        .map_err(|e| c.explain(&format!("create networkpolicy {ns}/{POLICY}"), &e))?;
    tokio::select! {
        () = tokio::time::sleep(SETTLE) => {}
        () = cx.cancel().cancelled() => {
            return Err(Outcome::error(
                "the run was stopped while the NetworkPolicy settled; what the check created is deleted",
            )
            .into());
        }
    }
    let after = round(&space, "after", target, client, image).await?;
    Ok(judge(&before, Some(&after)).with_property("responder", target.to_string()))
}

/// Starts a client of each role (`client-<role>-<when>`) probing `target`, waits for both to
/// finish and reads what they reported.
async fn round(
    space: &ProbeNs,
    when: &str,
    target: SocketAddr,
    node: Option<&str>,
    image: &str,
) -> Result<Round, nfvi_harness::CheckError> {
    let args = vec![
        "probe".into(),
        "ping".into(),
        target.to_string(),
        "--count".into(),
        PROBES.to_string(),
        "--warmup".into(),
        "0".into(),
        "--format".into(),
        "json".into(),
    ];
    let names = ["allowed", "denied"].map(|role| (role, format!("client-{role}-{when}")));
    for (role, name) in &names {
        space
            .create_pod(&probe_pod(name, role, node, image, args.clone()))
            .await?;
    }
    let mut seen = Vec::new();
    for (_, name) in &names {
        let (done, log) = space.finished(name).await?;
        let succeeded = done.status.and_then(|s| s.phase).as_deref() == Some("Succeeded");
        seen.push(classify(succeeded, &log));
    }
    let denied = seen.pop();
    Ok(Round {
        allowed: seen.pop(),
        denied,
    })
}

/// What one client's probes showed.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Probe {
    /// The responder answered: how many of the probes, and the median RTT (µs).
    Answered { replies: u64, p50_us: f64 },
    /// Sent and never answered (or turned away by the network with an ICMP error).
    Silent(String),
    /// Not sent: the client could not open a socket or send on it.
    NotSent(String),
    /// The client did not report: it crashed, or its report is not the prober's.
    Broken(String),
}

/// Reads a client's log: the prober's JSON report when it `succeeded`, else its error line.
pub(crate) fn classify(succeeded: bool, log: &str) -> Probe {
    let short = nfvi_harness::truncate_chars(log.trim(), 300);
    if succeeded {
        let json = match (log.find('{'), log.rfind('}')) {
            (Some(a), Some(b)) if a < b => &log[a..=b],
            _ => "",
        };
        let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
        let s = &v["summary"];
        return match (s["count"].as_u64(), s["p50_us"].as_f64()) {
            (Some(n), Some(p50)) if n > 0 && p50.is_finite() && p50 >= 0.0 => Probe::Answered {
                replies: n,
                p50_us: p50,
            },
            _ => Probe::Broken(format!(
                "its report is not the prober's summary with replies: {short}"
            )),
        };
    }
    // The prober's error line (`error: ...`); a pending ICMP "connection refused" surfaces on
    // the next send, so that one was sent and turned away.
    let line = log
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("error:"))
        .unwrap_or("");
    let line = nfvi_harness::truncate_chars(line.trim(), 300);
    if line.contains("did not answer")
        || line.contains("no reply from")
        || line.contains("receive from ")
        || (line.contains("send to ") && line.contains("Connection refused"))
    {
        Probe::Silent(line)
    } else if line.contains("send to ")
        || line.contains("cannot reach ")
        || line.contains("cannot open a UDP socket")
    {
        Probe::NotSent(line)
    } else {
        Probe::Broken(format!("it failed without the prober's report: {short}"))
    }
}

/// The two clients of one round.
#[derive(Clone, Debug, Default)]
pub(crate) struct Round {
    pub allowed: Option<Probe>,
    pub denied: Option<Probe>,
}

impl Round {
    /// Both clients got answers.
    fn answered(&self) -> bool {
        matches!(
            (&self.allowed, &self.denied),
            (Some(Probe::Answered { .. }), Some(Probe::Answered { .. }))
        )
    }
}

/// ra2.ntw.014, infra.net.cfg.004: before the policy both clients got answers (the positive
/// control); after it the allowed one still does (the positive control after the policy) and
/// the denied one gets none. A probe not sent or a client that did not report is an error;
/// the denied client's silence counts only next to those answers.
pub(crate) fn judge(before: &Round, after: Option<&Round>) -> Outcome {
    let rounds = [
        ("before the NetworkPolicy", Some(before)),
        ("after the NetworkPolicy", after),
    ];
    for (when, r) in rounds {
        for (who, p) in r
            .into_iter()
            .flat_map(|r| [("allowed", &r.allowed), ("denied", &r.denied)])
        {
            match p {
                Some(Probe::NotSent(why)) => {
                    return Outcome::error(format!(
                        "the {who} client's probes {when} could not be sent ({why}): the path was not probed, so nothing is judged"
                    ));
                }
                Some(Probe::Broken(why)) => {
                    return Outcome::error(format!(
                        "the {who} client {when} did not report: {why}"
                    ));
                }
                _ => {}
            }
        }
    }
    let silent = |p: &Option<Probe>| match p {
        Some(Probe::Silent(why)) => Some(why.clone()),
        Some(_) => None,
        None => Some("not probed".to_owned()),
    };
    if before.allowed.is_none() && before.denied.is_none() {
        return Outcome::error("no client probed the responder: nothing observed");
    }
    for (who, p) in [("allowed", &before.allowed), ("denied", &before.denied)] {
        if let Some(why) = silent(p) {
            return Outcome::error(format!(
                "before any NetworkPolicy the {who} client got no answer from the responder (the positive control of the probe path): {why}; enforcement not judged"
            ));
        }
    }
    let Some(after) = after else {
        return Outcome::error(
            "the clients were not probed after the NetworkPolicy was applied: nothing to judge",
        );
    };
    let p50 = match &after.allowed {
        Some(Probe::Answered { p50_us, .. }) => *p50_us,
        p => {
            return Outcome::error(format!(
                "after the NetworkPolicy the allowed client got no answer either (the positive control after the policy): the policy blocks what it admits or the probe path broke, so enforcement is not judged: {}",
                silent(p).unwrap_or_default()
            ));
        }
    };
    match &after.denied {
        Some(Probe::Answered { replies, .. }) => Outcome::fail(format!(
            "NetworkPolicy is not enforced (the pod network ignores it): the role=denied client still got {replies} of {PROBES} probes answered by the responder {} after a policy admitting only role=allowed",
            shown_settle()
        )),
        Some(Probe::Silent(why)) => Outcome::pass(format!(
            "NetworkPolicy is enforced: {}, the role=denied client's probes go unanswered ({why}) while the role=allowed client's are still answered (median RTT {p50:.0} µs); both were answered before the policy",
            shown_settle()
        ))
        .with_metric("allowed RTT p50 after the policy", p50, "us"),
        _ => Outcome::error("the denied client was not probed after the NetworkPolicy: nothing to judge"),
    }
}

fn shown_settle() -> String {
    format!("{} s after the policy was applied", SETTLE.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nfvi_harness::Status;

    const REPORT: &str = r#"{
  "peer": "10.244.2.7:7777",
  "mode": "blocking",
  "proto": "udp",
  "summary": {"count": 20, "lost": 0, "warmup_discarded": 0, "min_us": 38.0, "p50_us": 45.5, "p90_us": 50.0, "p99_us": 60.0, "p999_us": 60.0, "max_us": 60.0, "mean_us": 46.0, "stddev_us": 3.0, "elapsed_secs": 0.001}
}"#;
    const SILENT: &str = "error: 10.244.2.7:7777 did not answer 10 probes in a row (200 ms each): unreachable or not running a responder\n";

    fn kind(p: &Probe) -> (&'static str, &str) {
        match p {
            Probe::Answered { .. } => ("answered", ""),
            Probe::Silent(w) => ("silent", w),
            Probe::NotSent(w) => ("not sent", w),
            Probe::Broken(w) => ("broken", w),
        }
    }

    #[test]
    fn client_logs_are_read_as_answers_silence_unsent_or_broken() {
        #[rustfmt::skip]
        let rows = [
            ("report", true, REPORT, "answered", ""),
            ("silence", false, SILENT, "silent", "did not answer 10"),
            ("no reply at all", false, "error: no reply from 10.244.2.7:7777", "silent", "no reply"),
            ("rejected by ICMP", false, "error: receive from 10.244.2.7:7777: No route to host (os error 113)", "silent", "No route"),
            ("pending refusal", false, "error: send to 10.244.2.7:7777: Connection refused (os error 111)", "silent", "refused"),
            ("not sent", false, "error: send to 10.244.2.7:7777: Operation not permitted (os error 1)", "not sent", "Operation not permitted"),
            ("no socket", false, "error: cannot open a UDP socket: x", "not sent", "socket"),
            ("crash", false, "exec /usr/local/bin/nfvi-verify: exec format error", "broken", "exec format error"),
            ("succeeded, no report", true, "hello", "broken", "hello"),
            ("succeeded, no replies", true, r#"{"summary": {"count": 0, "p50_us": 0.0}}"#, "broken", "not the prober's summary"),
            ("hostile", true, "{\"summary\": {\"count\": \"<b>\"}}\u{0}", "broken", "<b>"),
            ("empty", false, "", "broken", "without the prober's report"),
        ];
        for (name, ok, log, want, needle) in rows {
            let got = classify(ok, log);
            let (k, why) = kind(&got);
            assert_eq!(k, want, "{name}: {got:?}");
            assert!(why.contains(needle), "{name}: {got:?}");
        }
        assert_eq!(
            classify(true, &format!("warning: x\n{REPORT}\n")),
            Probe::Answered {
                replies: 20,
                p50_us: 45.5
            }
        );
    }

    #[test]
    fn enforcement_is_judged_only_next_to_the_positive_controls() {
        let yes = || {
            Some(Probe::Answered {
                replies: 20,
                p50_us: 45.0,
            })
        };
        let no = || Some(Probe::Silent("did not answer 10 probes in a row".into()));
        let unsent = || Some(Probe::NotSent("send to x: Operation not permitted".into()));
        let broken = || Some(Probe::Broken("exec format error".into()));
        let r = |allowed, denied| Round { allowed, denied };
        #[rustfmt::skip]
        let rows: Vec<(&str, Round, Option<Round>, Status, &str)> = vec![
            ("enforced", r(yes(), yes()), Some(r(yes(), no())), Status::Passed, "NetworkPolicy is enforced"),
            ("ignored", r(yes(), yes()), Some(r(yes(), yes())), Status::Failed, "NetworkPolicy is not enforced (the pod network ignores it)"),
            ("blocks everything", r(yes(), yes()), Some(r(no(), no())), Status::Error, "positive control after the policy"),
            ("allowed silent, denied answered", r(yes(), yes()), Some(r(no(), yes())), Status::Error, "positive control after the policy"),
            ("denied not sent after", r(yes(), yes()), Some(r(yes(), unsent())), Status::Error, "could not be sent"),
            ("allowed not sent after", r(yes(), yes()), Some(r(unsent(), no())), Status::Error, "could not be sent"),
            ("client broken after", r(yes(), yes()), Some(r(yes(), broken())), Status::Error, "did not report"),
            ("allowed control failed before", r(no(), yes()), Some(r(yes(), no())), Status::Error, "before any NetworkPolicy the allowed client got no answer"),
            ("denied control failed before", r(yes(), no()), Some(r(yes(), no())), Status::Error, "before any NetworkPolicy the denied client"),
            ("not sent before", r(unsent(), yes()), None, Status::Error, "could not be sent"),
            ("controls failed, not probed after", r(no(), no()), None, Status::Error, "positive control of the probe path"),
            ("nothing observed", r(None, None), None, Status::Error, "nothing observed"),
            ("not probed after", r(yes(), yes()), None, Status::Error, "not probed after"),
            ("denied missing after", r(yes(), yes()), Some(r(yes(), None)), Status::Error, "denied client was not probed"),
        ];
        for (name, before, after, status, needle) in rows {
            let o = judge(&before, after.as_ref());
            assert_eq!(o.status, status, "{name}: {}", o.message);
            assert!(o.message.contains(needle), "{name}: {}", o.message);
        }
    }

    #[test]
    fn the_policy_selects_the_responder_and_admits_only_the_allowed_role_over_udp() {
        let p: NetworkPolicy = serde_json::from_value(policy()).unwrap();
        let spec = p.spec.unwrap();
        assert_eq!(
            spec.pod_selector.unwrap().match_labels.unwrap()[ROLE],
            RESPONDER
        );
        assert_eq!(spec.policy_types.unwrap(), ["Ingress"]);
        let rule = &spec.ingress.unwrap()[0];
        let from = rule.from.as_ref().unwrap();
        assert_eq!(from.len(), 1);
        assert!(from[0].namespace_selector.is_none());
        assert_eq!(
            from[0]
                .pod_selector
                .as_ref()
                .unwrap()
                .match_labels
                .as_ref()
                .unwrap()[ROLE],
            "allowed"
        );
        let port = &rule.ports.as_ref().unwrap()[0];
        assert_eq!(port.protocol.as_deref(), Some("UDP"));
        let c = probe_pod("client-denied-after", "denied", None, "img", vec![]);
        assert_eq!(c.metadata.labels.unwrap()[ROLE], "denied");
        let spec = c.spec.unwrap();
        assert!(spec.node_name.is_none());
        assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
    }
}
