//! User namespaces in pods, observed from inside: in a namespace of its own
//! (`nfvi-verify-userns-*`), the check runs two short-lived pods of the probe image on the
//! same node, each printing its `/proc/self/uid_map` (`cat`, then exit). The control pod has
//! default settings: its map must be the identity (`0 0 4294967295`), which shows the read
//! works and that pods see the node's user IDs unless asked otherwise. The second pod sets
//! `spec.hostUsers: false`: it must be admitted, run, and see a map that is not the identity
//! and keeps the node's root (host ID 0) out of reach: container root is an unprivileged
//! user of the node. A pod the API server refuses, or that the kubelet or the runtime cannot
//! start while the control pod ran on that node from the same image, fails the check with
//! the reason they give (the creation's answer, the pod's status, its Warning events). The
//! namespace, and with it the pods, is deleted whatever happens (registered before it
//! exists).

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, ListParams, LogParams, PostParams};
use nfvi_harness::{
    Check, CheckContext, CheckError, CheckMeta, CheckResult, Outcome, Severity, declare,
};
use nfvi_reference_model::Area;

use crate::checks::{condition, is_control_plane};
use crate::cluster::{self, Cluster};
use crate::probe_ns::ProbeNs;
use crate::probes::{START_TIMEOUT, pod};

/// The start of the names of the namespaces the check creates (`nfvi-verify clean` knows it).
pub(crate) const NAMESPACE_PREFIX: &str = "nfvi-verify-userns-";
/// The control pod (default settings).
const CONTROL: &str = "uid-map-host";
/// The pod with `spec.hostUsers: false`.
const USERNS: &str = "uid-map-userns";
/// The pod's events are read at every this many looks at the pod (one per
/// [`crate::upstream::pod::POLL`]).
const POLL_EVENTS_EVERY: u32 = 4;
/// The most extents a uid_map holds (the kernel's limit, user_namespaces(7)).
const MAX_EXTENTS: usize = 340;

/// The check.
pub fn checks() -> Vec<Arc<dyn Check>> {
    vec![declare(
        CheckMeta::new(
            "k8s.pods.user-namespaces",
            Area::K8s,
            "Pods with hostUsers: false run in a user namespace of their own, their root mapped to an unprivileged range of the node's IDs",
        )
        .subject("in-cluster-probes")
        // "User namespaces keep pod users apart from node users" (RA2 ch2, ch6).
        .covers(Severity::Must, &["sec.sys.021"])
        .needs([crate::kubeconfig_need()])
        .side_effects(
            "creates a namespace nfvi-verify-userns-* (label app.kubernetes.io/managed-by=nfvi-verify) holding two short-lived probe pods on one node that print their /proc/self/uid_map and exit: one with default settings, one with spec.hostUsers: false (the kubelet gives it a range of the node's user IDs)",
            "deletes the namespace, and with it the pods (the kubelet frees their ID range), whatever the outcome (also on Ctrl-C)",
        )
        .timeout(Duration::from_secs(480)),
        |cx| Box::pin(run(cx)),
    )
    .into_check()]
}

async fn run(cx: &CheckContext) -> CheckResult {
    let k = cx.target().config::<crate::KubernetesConfig>();
    if let Some(skip) = k.without_probe_image(
        "user namespaces are observed by probe pods, which need the probe image (it has cat)",
    ) {
        return Ok(skip);
    }
    let c = cluster::for_check(cx).await?;
    let Some(node) = pick_node(&c.nodes().await?) else {
        return Ok(Outcome::not_applicable(
            "no Ready, schedulable node to run the probe pods on",
        ));
    };
    let ns = format!("{NAMESPACE_PREFIX}{}", crate::upstream::short_id());
    let image = k.probe_image.clone().unwrap_or_default();
    let o = exercise(cx, &c, &ns, &node, &image).await;
    let evidence = |o: Outcome| {
        o.with_property("API server", &c.server)
            .with_property("namespace", &ns)
            .with_property("node", &node)
            .with_property("probe image", &image)
    };
    o.map(evidence).map_err(|e| evidence(e.0).into())
}

/// A Ready, schedulable node, a worker when there is one.
pub(crate) fn pick_node(nodes: &[Node]) -> Option<String> {
    let usable = |n: &&Node| {
        condition(n, "Ready").as_deref() == Some("True")
            && !n
                .spec
                .as_ref()
                .and_then(|s| s.unschedulable)
                .unwrap_or(false)
    };
    let first = |cp: bool| {
        nodes
            .iter()
            .filter(usable)
            .filter(|n| is_control_plane(n) == cp)
            .find_map(|n| n.metadata.name.clone())
    };
    first(false).or_else(|| first(true))
}

/// A probe pod on `node` that prints its uid_map and exits; `host_users: false` asks for a
/// user namespace.
pub(crate) fn uid_map_pod(name: &str, node: &str, image: &str, host_users: Option<bool>) -> Pod {
    let mut p = pod(name, node, image, Vec::new(), "Never", &[]);
    if let Some(spec) = p.spec.as_mut() {
        spec.host_users = host_users;
        for c in &mut spec.containers {
            c.command = Some(vec!["cat".into()]);
            c.args = Some(vec!["/proc/self/uid_map".into()]);
        }
    }
    p
}

async fn exercise(
    cx: &CheckContext,
    c: &Arc<Cluster>,
    ns: &str,
    node: &str,
    image: &str,
) -> CheckResult {
    let space = ProbeNs::create(cx, c, ns).await?;
    let pods = space.pods();
    let events: Api<Event> = space.api();
    // The control first: a pod that cannot run with default settings says nothing about
    // user namespaces, and the one that follows finds the image on the node.
    space
        .create_pod(&uid_map_pod(CONTROL, node, image, None))
        .await?;
    let control = follow(cx, c, pods, &events, CONTROL, false).await?;
    if !matches!(control, Seen::Printed(_)) {
        return Ok(judge(&control, &Seen::NotRun(Vec::new()), false));
    }
    let (userns, dropped) = match pods
        .create(
            &PostParams::default(),
            &uid_map_pod(USERNS, node, image, Some(false)),
        )
        .await
    {
        Ok(created) => {
            // An API server whose UserNamespacesSupport gate is off drops the field.
            let kept = created.spec.as_ref().and_then(|s| s.host_users) == Some(false);
            (follow(cx, c, pods, &events, USERNS, true).await?, !kept)
        }
        // The same account created the control pod in this namespace a moment ago: a
        // refusal now is about the pod's spec (validation, admission), not permissions.
        Err(kube::Error::Api(s)) if matches!(s.code, 400 | 403 | 422) => (
            Seen::Refused {
                code: s.code,
                message: s.message,
            },
            false,
        ),
        Err(e) => return Err(c.explain(&format!("create pod {ns}/{USERNS}"), &e).into()),
    };
    Ok(judge(&control, &userns, dropped))
}

/// Follows pod `name` until it ends (its log then read), cannot start, or
/// [`START_TIMEOUT`] passes; its Warning events are read every few polls.
/// `userns_reasons`: a Warning event about user namespaces ends the wait at once (the
/// kubelet keeps retrying a failed sandbox, which does not help a runtime that lacks the
/// feature).
async fn follow(
    cx: &CheckContext,
    c: &Cluster,
    pods: &Api<Pod>,
    events: &Api<Event>,
    name: &str,
    userns_reasons: bool,
) -> Result<Seen, CheckError> {
    let until = Instant::now() + START_TIMEOUT;
    let mut warnings = Vec::new();
    let mut polls = 0u32;
    loop {
        let p = pods
            .get(name)
            .await
            .map_err(|e| c.explain(&format!("get pod {name}"), &e))?;
        if polls.is_multiple_of(POLL_EVENTS_EVERY) {
            // Events are a help to say why, never a condition: a failed read leaves them out.
            if let Ok(list) = events
                .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
                .await
            {
                warnings = warning_events(&list.items);
            }
        }
        polls += 1;
        let phase = p.status.as_ref().and_then(|s| s.phase.clone());
        match phase.as_deref() {
            Some("Succeeded") => {
                let log = pods
                    .logs(name, &LogParams::default())
                    .await
                    .map_err(|e| c.explain(&format!("get the log of pod {name}"), &e))?;
                return Ok(Seen::Printed(log));
            }
            Some("Failed") => {
                let mut why = not_run_reasons(&p, &warnings);
                if let Ok(log) = pods.logs(name, &LogParams::default()).await
                    && !log.trim().is_empty()
                {
                    why.push(format!(
                        "log: {}",
                        nfvi_harness::truncate_chars(log.trim(), 200)
                    ));
                }
                return Ok(Seen::NotRun(why));
            }
            _ => {}
        }
        let stuck = stuck_reason(&p).is_some()
            || (userns_reasons && warnings.iter().any(|w| about_userns(w)));
        if stuck || Instant::now() >= until {
            let mut why = not_run_reasons(&p, &warnings);
            if !stuck && !why.is_empty() {
                let still = format!(
                    "still {} after {} s",
                    phase.as_deref().unwrap_or("Pending"),
                    START_TIMEOUT.as_secs()
                );
                why.insert(0, still);
            }
            return Ok(Seen::NotRun(why));
        }
        crate::upstream::pod::stopped_or_sleep(cx, &format!("probe pod {name}")).await?;
    }
}

/// A container waiting for a reason that does not pass by itself.
fn stuck_reason(p: &Pod) -> Option<String> {
    p.status
        .as_ref()?
        .container_statuses
        .iter()
        .flatten()
        .filter_map(|s| s.state.as_ref()?.waiting.as_ref()?.reason.clone())
        .find(|r| {
            matches!(
                r.as_str(),
                "ErrImagePull"
                    | "ImagePullBackOff"
                    | "InvalidImageName"
                    | "CreateContainerConfigError"
                    | "CreateContainerError"
                    | "RunContainerError"
            )
        })
}

/// Whether a Warning event's text is about user namespaces.
fn about_userns(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    [
        "user namespace",
        "usernamespace",
        "userns",
        "hostusers",
        "idmap",
    ]
    .iter()
    .any(|k| t.contains(k))
}

/// The Warning events, as `reason: message`, each once, oldest first as listed.
pub(crate) fn warning_events(events: &[Event]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in events
        .iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
    {
        let text = format!(
            "{}: {}",
            e.reason.as_deref().unwrap_or("Warning"),
            e.message.as_deref().unwrap_or("").trim()
        );
        let text = nfvi_harness::truncate_chars(&text, 300);
        if !out.contains(&text) {
            out.push(text);
        }
    }
    out
}

/// Why a pod did not run: its own reason, its containers' waiting or terminated states, an
/// unscheduled condition, then its Warning events.
pub(crate) fn not_run_reasons(p: &Pod, warnings: &[String]) -> Vec<String> {
    let mut why = Vec::new();
    let join = |a: Option<&String>, b: Option<&String>| {
        [a, b]
            .into_iter()
            .flatten()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(": ")
    };
    if let Some(s) = &p.status {
        let own = join(s.reason.as_ref(), s.message.as_ref());
        if !own.is_empty() {
            why.push(own);
        }
        for cs in s.container_statuses.iter().flatten() {
            let Some(state) = &cs.state else { continue };
            if let Some(w) = &state.waiting {
                let r = w.reason.as_deref().unwrap_or("");
                // Plain waiting says nothing.
                if r != "ContainerCreating" && r != "PodInitializing" {
                    let t = join(w.reason.as_ref(), w.message.as_ref());
                    if !t.is_empty() {
                        why.push(t);
                    }
                }
            }
            if let Some(t) = &state.terminated {
                let text = join(t.reason.as_ref(), t.message.as_ref());
                why.push(format!(
                    "container exited with {}{}",
                    t.exit_code,
                    if text.is_empty() {
                        String::new()
                    } else {
                        format!(" ({text})")
                    }
                ));
            }
        }
        for cond in s.conditions.iter().flatten() {
            if cond.type_ == "PodScheduled" && cond.status == "False" {
                let t = join(cond.reason.as_ref(), cond.message.as_ref());
                if !t.is_empty() {
                    why.push(t);
                }
            }
        }
    }
    for w in warnings {
        if !why.contains(w) {
            why.push(w.clone());
        }
    }
    why.into_iter()
        .map(|w| nfvi_harness::truncate_chars(&w, 300))
        .collect()
}

/// What one pod of the check showed.
#[derive(Clone, Debug)]
pub(crate) enum Seen {
    /// It ran to success and printed this.
    Printed(String),
    /// The API server refused to create it: the status code and the server's message.
    Refused {
        /// HTTP status.
        code: u16,
        /// The API server's message.
        message: String,
    },
    /// It was admitted but did not run (or not to success): what its status and its Warning
    /// events say (empty: nothing said why).
    NotRun(Vec<String>),
}

/// One line of a uid_map: IDs `inside..inside+count` of the namespace are
/// `outside..outside+count` of the parent (the node).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Extent {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// The map of a process that shares the node's user namespace.
pub(crate) const IDENTITY: Extent = Extent {
    inside: 0,
    outside: 0,
    count: u32::MAX,
};

/// Parses `/proc/<pid>/uid_map` as the kernel prints it (three unsigned numbers a line,
/// space-padded); blank lines are skipped, anything else is an error that quotes the line.
pub(crate) fn parse_uid_map(text: &str) -> Result<Vec<Extent>, String> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let bad = || {
            format!(
                "{:?} is not a uid_map line (inside, outside, count)",
                nfvi_harness::truncate_chars(line, 80)
            )
        };
        let fields: Vec<u32> = line
            .split_ascii_whitespace()
            .map(|f| f.parse::<u32>())
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        let [inside, outside, count] = fields[..] else {
            return Err(bad());
        };
        if count == 0
            || u64::from(inside) + u64::from(count) > 1 << 32
            || u64::from(outside) + u64::from(count) > 1 << 32
        {
            return Err(bad());
        }
        out.push(Extent {
            inside,
            outside,
            count,
        });
        if out.len() > MAX_EXTENTS {
            return Err(format!("more than {MAX_EXTENTS} lines: not a uid_map"));
        }
    }
    if out.is_empty() {
        return Err("it is empty".into());
    }
    Ok(out)
}

fn show(map: &[Extent]) -> String {
    map.iter()
        .map(|e| format!("{} {} {}", e.inside, e.outside, e.count))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Judges user namespaces from what the control pod (default settings) and the pod with
/// `hostUsers: false` showed on the same node. `dropped`: the API server's answer to the
/// creation had no `hostUsers: false`.
pub(crate) fn judge(control: &Seen, userns: &Seen, dropped: bool) -> Outcome {
    let control_map = match control {
        Seen::Printed(log) => match parse_uid_map(log) {
            Ok(m) => m,
            Err(e) => {
                return Outcome::error(format!(
                    "the control pod's /proc/self/uid_map could not be read: {e}"
                ));
            }
        },
        Seen::Refused { code, message } => {
            return Outcome::error(format!(
                "the API server refused the control pod (default settings; {code}): {}",
                nfvi_harness::truncate_chars(message, 300)
            ));
        }
        Seen::NotRun(why) => {
            return Outcome::error(format!(
                "the control pod (default settings) did not run, so the probe path does not work here: {}",
                reasons(why)
            ));
        }
    };
    if control_map != [IDENTITY] {
        return Outcome::error(format!(
            "the control pod (default settings) does not see the node's user IDs (uid_map {}, not 0 0 4294967295): pods here run in a user namespace without asking, or the node itself does, so what hostUsers: false changes cannot be told",
            show(&control_map)
        ))
        .with_property("control uid_map", show(&control_map));
    }
    let o = match userns {
        Seen::Refused { code, message } => Outcome::fail(format!(
            "the API server refused a pod with spec.hostUsers: false ({code}): {}",
            nfvi_harness::truncate_chars(message, 300)
        )),
        Seen::NotRun(why) if why.is_empty() => Outcome::error(
            "the pod with spec.hostUsers: false did not run, and neither its status nor its events say why",
        ),
        Seen::NotRun(why) => Outcome::fail(format!(
            "a pod with spec.hostUsers: false was admitted but did not run, while the same image ran on the same node with default settings: {}",
            reasons(why)
        )),
        Seen::Printed(log) => match parse_uid_map(log) {
            Err(e) => Outcome::error(format!(
                "the /proc/self/uid_map of the pod with spec.hostUsers: false could not be read: {e}"
            )),
            Ok(m) if m == [IDENTITY] => Outcome::fail(format!(
                "hostUsers: false was ignored: the pod sees the node's user IDs (uid_map 0 0 4294967295){}",
                if dropped {
                    "; the API server dropped spec.hostUsers from the pod, as it does while the UserNamespacesSupport feature gate is off"
                } else {
                    ""
                }
            ))
            .with_property("user-namespace uid_map", show(&m)),
            Ok(m) if m.iter().any(|e| e.outside == 0) => Outcome::fail(format!(
                "the pod with spec.hostUsers: false has IDs mapped onto the node's root (uid_map {}): its user namespace does not keep it apart from node users",
                show(&m)
            ))
            .with_property("user-namespace uid_map", show(&m)),
            Ok(m) => {
                let root = m
                    .iter()
                    .find(|e| e.inside == 0)
                    .map_or("unmapped (overflow ID)".to_owned(), |e| {
                        format!("host ID {}", e.outside)
                    });
                let ids: u64 = m.iter().map(|e| u64::from(e.count)).sum();
                Outcome::pass(format!(
                    "a pod with spec.hostUsers: false runs in a user namespace of its own: container root is {root}, {ids} IDs mapped (uid_map {}), none onto the node's root; a pod with default settings sees the node's IDs",
                    show(&m)
                ))
                .with_property("user-namespace uid_map", show(&m))
            }
        },
    };
    o.with_property("control uid_map", show(&control_map))
}

fn reasons(why: &[String]) -> String {
    if why.is_empty() {
        "nothing in its status or events says why".into()
    } else {
        nfvi_harness::truncate_chars(&why.join("; "), 600)
    }
}

#[cfg(test)]
#[path = "userns_tests.rs"]
mod tests;
