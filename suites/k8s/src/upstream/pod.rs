//! Following an upstream pod: where its containers stand (pure, from the pod object), the
//! namespace of a run (created after its deletion is registered), waiting for a start with a
//! deadline that names the image and the reason, and splitting what the pods print.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use nfvi_harness::{CheckContext, CheckError};

use crate::cluster::Cluster;

/// How often a pod is looked at.
pub(crate) const POLL: Duration = Duration::from_millis(500);

/// Where one container of a pod stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Not started yet; why (`Pending`, `ContainerCreating`, `ImagePullBackOff: ...`,
    /// `Unschedulable: 0/3 nodes are available ...`).
    Waiting(String),
    /// Running.
    Running,
    /// Ended with this exit code (and reason).
    Ended(i32, String),
    /// The pod ended before the container ever ran (phase Failed, evicted).
    Failed(String),
}

/// Where `container` of `pod` stands, with the pod's own reason when it is not scheduled.
pub(crate) fn stage(pod: &Pod, container: &str) -> Stage {
    let status = pod.status.clone().unwrap_or_default();
    let phase = status.phase.clone().unwrap_or_else(|| "Pending".into());
    let state = status
        .container_statuses
        .iter()
        .flatten()
        .chain(status.init_container_statuses.iter().flatten())
        .find(|s| s.name == container)
        .and_then(|s| s.state.clone());
    if let Some(state) = state {
        if let Some(t) = state.terminated {
            return Stage::Ended(t.exit_code, t.reason.unwrap_or_default());
        }
        if state.running.is_some() {
            return Stage::Running;
        }
        if let Some(w) = state.waiting {
            let reason = w.reason.unwrap_or_else(|| "Waiting".into());
            return Stage::Waiting(match w.message {
                Some(m) if !m.is_empty() => format!("{reason}: {m}"),
                _ => reason,
            });
        }
    }
    if phase == "Failed" {
        let why = [status.reason, status.message]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(": ");
        return Stage::Failed(if why.is_empty() {
            "the pod failed".into()
        } else {
            why
        });
    }
    // Not scheduled: the scheduler's condition says why.
    let unscheduled = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False");
    match unscheduled {
        Some(c) => Stage::Waiting(format!(
            "{}: {}",
            c.reason.clone().unwrap_or_else(|| "Unschedulable".into()),
            c.message.clone().unwrap_or_default()
        )),
        None => Stage::Waiting(phase),
    }
}

/// The files the output sidecar printed between `<mark> <file>` lines: junit_01.xml and
/// e2e.log, up to `<mark> end`. An error says what is missing.
pub(crate) fn split_output<'a>(
    log: &'a [u8],
    mark: &str,
) -> Result<(&'a [u8], Option<&'a [u8]>), String> {
    let mut sections: Vec<(&str, usize, usize)> = Vec::new();
    let mut pos = 0usize;
    let mut end_seen = false;
    for line in log.split_inclusive(|b| *b == b'\n') {
        let start = pos;
        pos += line.len();
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        let Some(rest) = text
            .strip_prefix(mark.as_bytes())
            .and_then(|r| r.strip_prefix(b" "))
        else {
            continue;
        };
        if let Some(last) = sections.last_mut() {
            last.2 = start;
        }
        match rest {
            b"junit_01.xml" => sections.push(("junit", pos, log.len())),
            b"e2e.log" => sections.push(("log", pos, log.len())),
            b"end" => {
                end_seen = true;
                break;
            }
            _ => {}
        }
    }
    let get = |name: &str| {
        sections
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, a, b)| &log[*a..(*b).max(*a)])
    };
    let junit = get("junit")
        .filter(|j| j.iter().any(|b| !b.is_ascii_whitespace()))
        .ok_or("the output sidecar printed no junit_01.xml: the suite wrote no results")?;
    if !end_seen {
        return Err(
            "the output sidecar's log ends before its end marker: the results are truncated (a log rotated by the kubelet?)"
                .into(),
        );
    }
    Ok((junit, get("log")))
}

/// kube-bench's JSON in its log (its warnings on stderr share the log): from the first line
/// that starts with `{` or `[` to the last that ends with `}` or `]` (an object, or the list
/// of controls older releases print; on one line as `--json` prints it, or pretty-printed).
pub(crate) fn bench_json(log: &[u8]) -> Option<&[u8]> {
    let mut start = None;
    let mut end = None;
    let mut pos = 0usize;
    for line in log.split_inclusive(|b| *b == b'\n') {
        let t = line.trim_ascii();
        if start.is_none() && matches!(t.first(), Some(b'{' | b'[')) {
            start = Some(pos);
        }
        if start.is_some() && matches!(t.last(), Some(b'}' | b']')) {
            end = Some(pos + line.len());
        }
        pos += line.len();
    }
    let (a, b) = (start?, end?);
    Some(log[a..b].trim_ascii())
}

/// Creates the namespace `name`, its deletion registered first (it takes everything in it
/// along, whatever the check's end: pass, failure, timeout, Ctrl-C).
pub(crate) async fn namespace(
    cx: &CheckContext,
    c: &std::sync::Arc<Cluster>,
    name: &str,
    privileged: bool,
) -> Result<(), CheckError> {
    let cluster = c.clone();
    let ns = name.to_owned();
    cx.on_cleanup_async(format!("delete namespace {name}"), async move {
        delete(
            &cluster,
            Api::<Namespace>::all(cluster.client().clone()),
            "namespace",
            &ns,
        )
        .await
    });
    Api::<Namespace>::all(c.client().clone())
        .create(
            &PostParams::default(),
            &super::manifest::namespace(name, privileged),
        )
        .await
        .map_err(|e| c.explain(&format!("create namespace {name}"), &e))?;
    Ok(())
}

/// Deletes one object (background propagation); one already gone is no error.
pub(crate) async fn delete<K>(
    c: &Cluster,
    api: Api<K>,
    kind: &str,
    name: &str,
) -> Result<(), String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let what = format!("delete {kind} {name}");
    match tokio::time::timeout(
        crate::cluster::READ_TIMEOUT,
        api.delete(name, &DeleteParams::background()),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(kube::Error::Api(s))) if s.code == 404 => Ok(()),
        Ok(Err(e)) => Err(c.explain(&what, &e).message),
        Err(_) => Err(format!(
            "{what}: no answer within {} s",
            crate::cluster::READ_TIMEOUT.as_secs()
        )),
    }
}

/// What waiting for a start ended with.
pub(crate) enum Started {
    /// The container runs (or already ended).
    Yes(Box<Pod>),
    /// The start deadline passed, or the pod failed first: the message names the image and
    /// the reason.
    No(String),
}

/// Waits until `container` of the pod `get` returns runs or ended, at most `deadline` from
/// now; a transient failure to read the pod is retried until then. Stops at once when the
/// run is cancelled.
pub(crate) async fn wait_started<F, Fut>(
    cx: &CheckContext,
    what: &str,
    image: &str,
    container: &str,
    deadline: Duration,
    mut get: F,
) -> Result<Started, CheckError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<Pod>, String>>,
{
    let until = Instant::now() + deadline;
    loop {
        let last = match get().await {
            Ok(Some(pod)) => match stage(&pod, container) {
                Stage::Running | Stage::Ended(..) => return Ok(Started::Yes(Box::new(pod))),
                Stage::Failed(why) => {
                    return Ok(Started::No(format!(
                        "{what} (image {image}) failed before it started: {why}"
                    )));
                }
                Stage::Waiting(why) => why,
            },
            Ok(None) => "no pod yet".to_owned(),
            Err(e) => e,
        };
        if Instant::now() >= until {
            return Ok(Started::No(format!(
                "{what} (image {image}) did not start within {} s (kubernetes.upstream_start_timeout_secs): {last}",
                deadline.as_secs()
            )));
        }
        stopped_or_sleep(cx, what).await?;
    }
}

/// Sleeps one [`POLL`], or ends the check when the run is cancelled (Ctrl-C): its cleanups
/// delete what it created.
pub(crate) async fn stopped_or_sleep(cx: &CheckContext, what: &str) -> Result<(), CheckError> {
    tokio::select! {
        () = tokio::time::sleep(POLL) => Ok(()),
        () = cx.cancel().cancelled() => Err(nfvi_harness::Outcome::error(format!(
            "the run was stopped while {what} ran; what it created is deleted"
        )).into()),
    }
}

/// Minutes and seconds, for progress.
pub(crate) fn mmss(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}
