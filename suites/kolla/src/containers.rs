//! The Kolla container checks, modelled on what `kolla-ansible check` and Kolla's own CI
//! (`tests/check-failure.sh`) look at: every expected container exists and runs, health
//! checks report healthy, host networking, Kolla's image labels, and no restart loop.
//! Read-only: the checks inspect containers and read the Docker event log.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::Docker;
use bollard::query_parameters::EventsOptions;
use futures_util::StreamExt;
use nfvi_harness::{Check, CheckContext, CheckMeta, CheckResult, Outcome, Severity, declare};
use nfvi_reference_model::Area;
use serde_json::Value;

use crate::services::{self, Expected, Health};

/// Which judgement a check makes: the checks share the inspection and the evidence.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Running,
    Healthy,
    HostNetwork,
    Labels,
    Flapping,
}

/// The metadata every container check shares. `#[track_caller]`, so the check's own line is
/// its declaration site.
#[track_caller]
fn meta(id: &str, title: &str, severity: Severity) -> CheckMeta {
    CheckMeta::new(id, Area::Kolla, title)
        .subject("kolla-containers")
        .covers(severity, &["gen.ost.01"])
        .needs([nfvi_suite_docker::socket_need()])
        .read_only("none: inspects containers and reads the Docker event log")
        .timeout(Duration::from_secs(120))
}

/// Every Kolla container check.
pub fn checks() -> Vec<Arc<dyn Check>> {
    [
        declare(
            meta(
                "kolla.containers.running",
                "Every container the release and services call for exists and runs (kolla-ansible check)",
                Severity::Must,
            ),
            |cx| Box::pin(run(Kind::Running, cx)),
        ),
        declare(
            meta(
                "kolla.containers.healthy",
                "Every running container with a health check reports healthy (Kolla CI's health=unhealthy gate)",
                Severity::Must,
            ),
            |cx| Box::pin(run(Kind::Healthy, cx)),
        ),
        declare(
            meta(
                "kolla.containers.host-network",
                "Every Kolla container uses host networking, as kolla-ansible creates them",
                Severity::Should,
            ),
            |cx| Box::pin(run(Kind::HostNetwork, cx)),
        ),
        declare(
            meta(
                "kolla.containers.labels",
                "Kolla image labels are present, name the expected image, and share one kolla_version",
                Severity::Should,
            ),
            |cx| Box::pin(run(Kind::Labels, cx)),
        ),
        declare(
            meta(
                "kolla.containers.flapping",
                "No container is in a restart loop (deaths in the Docker event log; RestartCount stays 0 under systemd)",
                Severity::Should,
            ),
            |cx| Box::pin(run(Kind::Flapping, cx)),
        ),
    ]
    .into_iter()
    .map(|d| d.into_check())
    .collect()
}

/// One expected container and what `docker inspect` said about it (`None`: no such container).
struct Seen {
    expected: Expected,
    inspect: Option<Value>,
}

impl Seen {
    fn state(&self) -> &str {
        self.inspect
            .as_ref()
            .and_then(|v| v["State"]["Status"].as_str())
            .unwrap_or("missing")
    }

    fn running(&self) -> bool {
        self.state() == "running"
    }

    /// Whether the container has a health check (Kolla's `["NONE"]` counts as none).
    fn has_healthcheck(&self) -> bool {
        self.inspect
            .as_ref()
            .and_then(|v| v["Config"]["Healthcheck"]["Test"].as_array())
            .is_some_and(|t| !t.is_empty() && t[0] != "NONE")
    }
}

/// The Engine API as the container checks use it: bollard for the event stream, and raw
/// `GET`s for inspection, whose JSON is read field by field (engines answer with values
/// bollard's typed models reject, such as Podman's container state `stopped`).
struct Api {
    docker: Docker,
    socket: std::path::PathBuf,
}

async fn inspect_all(api: &Api, expected: Vec<Expected>) -> Result<Vec<Seen>, String> {
    let calls = expected.into_iter().map(|e| async move {
        // Container names are [a-zA-Z0-9][a-zA-Z0-9_.-]*; anything else cannot exist.
        if !e
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            return Ok(Seen {
                expected: e,
                inspect: None,
            });
        }
        let path = format!("/containers/{}/json", e.name);
        match nfvi_suite_docker::raw::get_json(&api.socket, &path, Duration::from_secs(30)).await {
            Ok(v) => Ok(Seen {
                expected: e,
                inspect: Some(v),
            }),
            Err(nfvi_suite_docker::raw::RawError::Status { status: 404, .. }) => Ok(Seen {
                expected: e,
                inspect: None,
            }),
            Err(err) => Err(format!("inspecting container `{}`: {err}", e.name)),
        }
    });
    futures_util::future::join_all(calls)
        .await
        .into_iter()
        .collect()
}

/// The last health-check output of a container, on one line.
fn last_probe(v: &Value) -> String {
    let log = v["State"]["Health"]["Log"].as_array();
    match log.and_then(|l| l.last()) {
        Some(p) => format!(
            "exit {}: {}",
            p["ExitCode"],
            nfvi_harness::truncate_chars(
                &p["Output"]
                    .as_str()
                    .unwrap_or("")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
                160
            )
        ),
        None => "no probe has run yet".to_owned(),
    }
}

fn listing(items: &[String]) -> String {
    items.join("; ")
}

/// Inspects the expected containers and judges them as `kind` says. The release and source
/// of the expected set go on every judgement, an undecided one too.
async fn run(kind: Kind, cx: &CheckContext) -> CheckResult {
    let kolla = cx.target().config::<crate::KollaConfig>();
    let mut expected = services::expected(&kolla.release, &kolla.containers)?;
    let mut source = if kolla.containers.is_empty() {
        format!("the {} all-in-one default set", kolla.release)
    } else {
        "the target's kolla.containers list".to_owned()
    };
    // On a node of a multinode fleet, the default set narrows to the node's groups; an
    // explicit list is the operator's and stays as it is.
    if let Some(node) = cx
        .target()
        .node
        .as_ref()
        .filter(|_| kolla.containers.is_empty())
    {
        expected = services::for_roles(expected, &node.roles);
        source = format!(
            "the {} default set for groups {} of node {}",
            kolla.release,
            node.roles.join(", "),
            node.name
        );
        if expected.is_empty() {
            return Ok(Outcome::not_applicable(format!(
                "node {} is in no group Kolla deploys containers to ({})",
                node.name,
                node.roles.join(", ")
            )));
        }
    }
    let api = Api {
        docker: nfvi_suite_docker::client(cx).await?,
        socket: cx
            .target()
            .config::<nfvi_suite_docker::DockerConfig>()
            .socket
            .clone(),
    };
    let judged = match kind {
        Kind::Running => running(&api, expected).await,
        Kind::Healthy => healthy(&api, expected).await,
        Kind::HostNetwork => host_network(&api, expected).await,
        Kind::Labels => labels(&api, expected).await,
        Kind::Flapping => {
            flapping(
                &api,
                expected,
                kolla.flap_restarts,
                kolla.flap_window_minutes,
            )
            .await
        }
    };
    let evidence = |o: Outcome| {
        o.with_property("expected containers", &source)
            .with_property("kolla release", &kolla.release)
            .with_stage("check (kolla-ansible check, Kolla CI's container gate)")
    };
    judged
        .map(evidence)
        .map_err(|e| evidence(Outcome::error(e)).into())
}

async fn running(api: &Api, expected: Vec<Expected>) -> Result<Outcome, String> {
    Ok(judge_running(&inspect_all(api, expected).await?))
}

/// Every expected container exists and runs; an empty expected set observed nothing.
fn judge_running(seen: &[Seen]) -> Outcome {
    let total = seen.len();
    if total == 0 {
        return Outcome::error("no container was expected, so nothing was observed");
    }
    let mut bad = Vec::new();
    for s in seen {
        match &s.inspect {
            None => bad.push(format!("{}: missing", s.expected.name)),
            Some(v) if !s.running() => bad.push(format!(
                "{}: {} (exit code {}, finished {})",
                s.expected.name,
                s.state(),
                v["State"]["ExitCode"],
                v["State"]["FinishedAt"].as_str().unwrap_or("?")
            )),
            Some(_) => {}
        }
    }
    let mut o = Outcome::pass_if(
        bad.is_empty(),
        format!("all {total} expected containers exist and run"),
        format!(
            "{} of {total} expected containers are not running: {}",
            bad.len(),
            listing(&bad)
        ),
    );
    for s in seen {
        o = o.with_property(format!("container {}", s.expected.name), s.state());
    }
    o
}

async fn healthy(api: &Api, expected: Vec<Expected>) -> Result<Outcome, String> {
    // Like Kolla's CI: wait while any health check is still `starting`, then judge.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let mut expected_again = expected.clone();
    let seen = loop {
        let seen = inspect_all(api, std::mem::take(&mut expected_again)).await?;
        let starting = seen.iter().any(|s| {
            s.running()
                && s.inspect.as_ref().unwrap()["State"]["Health"]["Status"].as_str()
                    == Some("starting")
        });
        if !starting || tokio::time::Instant::now() >= deadline {
            break seen;
        }
        expected_again = seen.iter().map(|s| s.expected.clone()).collect();
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    Ok(judge_healthy(&seen))
}

/// Every running container with a health check is healthy. When no running container has
/// one, no health was observed: not applicable if containers run without health checks
/// (Kolla allows that), an error if none runs at all.
fn judge_healthy(seen: &[Seen]) -> Outcome {
    let mut checked = 0;
    let mut without = Vec::new();
    let mut bad = Vec::new();
    let mut not_running = Vec::new();
    for s in seen {
        let Some(v) = &s.inspect else {
            not_running.push(s.expected.name.clone());
            continue;
        };
        if !s.running() {
            not_running.push(s.expected.name.clone());
            continue;
        }
        if !s.has_healthcheck() {
            without.push(s.expected.name.clone());
            continue;
        }
        checked += 1;
        let status = v["State"]["Health"]["Status"].as_str().unwrap_or("none");
        if status != "healthy" {
            bad.push(format!(
                "{} is {status} (failing streak {}; last probe {})",
                s.expected.name,
                v["State"]["Health"]["FailingStreak"],
                last_probe(v)
            ));
        }
    }
    if checked == 0 {
        return if without.is_empty() {
            Outcome::error(format!(
                "none of the {} expected containers runs, so no health was observed (see kolla.containers.running): not running {}",
                seen.len(),
                not_running.join(", ")
            ))
        } else {
            Outcome::not_applicable(format!(
                "no running container has a health check ({} run without one; `enable_container_healthchecks: no`?), so no health was observed",
                without.join(", ")
            ))
        };
    }
    let mut o = Outcome::pass_if(
        bad.is_empty(),
        format!(
            "{checked} running containers with a health check are healthy; {} have none, which Kolla allows",
            without.len()
        ),
        format!(
            "{} of {checked} containers with a health check are not healthy: {}",
            bad.len(),
            listing(&bad)
        ),
    );
    o = o.with_property("containers without a health check", without.join(", "));
    if !not_running.is_empty() {
        o = o.with_property(
            "not judged (not running; see kolla.containers.running)",
            not_running.join(", "),
        );
    }
    for s in seen.iter().filter(|s| s.running() && s.has_healthcheck()) {
        let v = s.inspect.as_ref().unwrap();
        o = o.with_property(
            format!("health {}", s.expected.name),
            format!(
                "{} ({})",
                v["State"]["Health"]["Status"].as_str().unwrap_or("none"),
                last_probe(v)
            ),
        );
    }
    // A container Kolla gives a health check should have one; without it the check above
    // cannot see it fail. Reported, not failed: `enable_container_healthchecks: no` is legal.
    let unexpectedly_unchecked: Vec<_> = seen
        .iter()
        .filter(|s| s.running() && !s.has_healthcheck() && s.expected.health() != Health::None)
        .map(|s| s.expected.name.clone())
        .collect();
    if !unexpectedly_unchecked.is_empty() {
        o = o.with_property(
            "Kolla defines a health check, but the container has none",
            unexpectedly_unchecked.join(", "),
        );
    }
    o
}

async fn host_network(api: &Api, expected: Vec<Expected>) -> Result<Outcome, String> {
    Ok(judge_host_network(&inspect_all(api, expected).await?))
}

/// The present containers use host networking; none present observed nothing.
fn judge_host_network(seen: &[Seen]) -> Outcome {
    let mut bad = Vec::new();
    let mut judged = 0;
    for s in seen {
        if let Some(v) = &s.inspect {
            judged += 1;
            let mode = v["HostConfig"]["NetworkMode"].as_str().unwrap_or("");
            if mode != "host" {
                bad.push(format!("{}: network mode `{mode}`", s.expected.name));
            }
        }
    }
    if judged == 0 {
        return none_present(seen, "their network mode");
    }
    if bad.is_empty() {
        Outcome::pass(format!(
            "all {judged} present containers use host networking"
        ))
    } else {
        Outcome::fail(format!(
            "{} of {judged} containers do not use host networking: {}",
            bad.len(),
            listing(&bad)
        ))
    }
}

/// None of the expected containers exists: `what` was not observed (the running check
/// reports them missing).
fn none_present(seen: &[Seen], what: &str) -> Outcome {
    Outcome::error(format!(
        "none of the {} expected containers exists, so {what} was not observed (see kolla.containers.running)",
        seen.len()
    ))
}

async fn labels(api: &Api, expected: Vec<Expected>) -> Result<Outcome, String> {
    Ok(judge_labels(&inspect_all(api, expected).await?))
}

/// The present containers carry Kolla's labels for their image, one kolla_version.
fn judge_labels(seen: &[Seen]) -> Outcome {
    let mut bad = Vec::new();
    let mut versions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut judged = 0;
    for s in seen {
        let Some(v) = &s.inspect else { continue };
        judged += 1;
        let labels = &v["Config"]["Labels"];
        let missing: Vec<&str> = ["maintainer", "name", "kolla_version"]
            .into_iter()
            .filter(|k| labels[*k].as_str().is_none_or(str::is_empty))
            .collect();
        if !missing.is_empty() {
            bad.push(format!(
                "{} lacks label(s) {}",
                s.expected.name,
                missing.join(", ")
            ));
        }
        if let (Some(svc), Some(name)) = (s.expected.service, labels["name"].as_str())
            && name != svc.image
        {
            bad.push(format!(
                "{} runs image `{name}`, expected `{}`",
                s.expected.name, svc.image
            ));
        }
        if let Some(kv) = labels["kolla_version"].as_str() {
            versions
                .entry(kv.to_owned())
                .or_default()
                .push(s.expected.name.clone());
        }
    }
    if versions.len() > 1 {
        bad.push(format!(
            "mixed kolla_version labels (a half-done upgrade?): {}",
            versions
                .iter()
                .map(|(k, v)| format!("{k} on {}", v.join(", ")))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    if judged == 0 {
        return none_present(seen, "their labels");
    }
    let o = Outcome::pass_if(
        bad.is_empty(),
        format!(
            "all {judged} present containers carry Kolla's labels for the expected image, kolla_version {}",
            versions.keys().next().map_or("-", String::as_str)
        ),
        format!("{} label problem(s): {}", bad.len(), listing(&bad)),
    );
    o.with_property(
        "kolla_version",
        versions.keys().cloned().collect::<Vec<_>>().join(", "),
    )
}

async fn flapping(
    api: &Api,
    expected: Vec<Expected>,
    limit: u32,
    window_minutes: u32,
) -> Result<Outcome, String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let since = now.saturating_sub(u64::from(window_minutes) * 60);
    let names: Vec<String> = expected.iter().map(|e| e.name.clone()).collect();
    let filters = [
        ("type".to_owned(), vec!["container".to_owned()]),
        ("event".to_owned(), vec!["die".to_owned()]),
    ]
    .into_iter()
    .collect();
    let options = EventsOptions {
        since: Some(since.to_string()),
        until: Some(now.to_string()),
        filters: Some(filters),
    };
    let mut deaths: BTreeMap<String, u32> = BTreeMap::new();
    let mut stream = api.docker.events(Some(options));
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(ev) = stream.next().await {
            let ev = ev.map_err(|e| format!("reading the Docker event log: {e}"))?;
            let name = ev
                .actor
                .and_then(|a| a.attributes)
                .and_then(|mut a| a.remove("name"))
                .unwrap_or_default();
            if names.contains(&name) {
                *deaths.entry(name).or_default() += 1;
            }
        }
        Ok::<_, String>(())
    })
    .await;
    match read {
        Err(_) => return Err("the Docker event log did not end within 30 s".to_owned()),
        Ok(r) => r?,
    }
    // Docker's own restarts (Kolla before 2023.1 used `unless-stopped`) show in RestartCount
    // and the `restarting` state; systemd's do not, hence the event log above.
    let seen = inspect_all(api, expected).await?;
    Ok(judge_flapping(&seen, &deaths, limit, window_minutes))
}

/// No present container is in a restart loop (Docker's restart count and state, and `die`
/// events from the log). With no container present, nothing was observed.
fn judge_flapping(
    seen: &[Seen],
    deaths: &BTreeMap<String, u32>,
    limit: u32,
    window_minutes: u32,
) -> Outcome {
    if seen.iter().all(|s| s.inspect.is_none()) {
        return none_present(seen, "whether they restart");
    }
    let mut flapping = Vec::new();
    for s in seen {
        let Some(v) = &s.inspect else { continue };
        let name = &s.expected.name;
        let restarts = v["RestartCount"].as_u64().unwrap_or(0);
        let died = deaths.get(name).copied().unwrap_or(0);
        if s.state() == "restarting" || restarts >= u64::from(limit) {
            flapping.push(format!(
                "{name} is {} after {restarts} restarts by Docker",
                s.state()
            ));
        } else if died >= limit {
            flapping.push(format!("{name} died {died} times"));
        }
    }
    let o = Outcome::pass_if(
        flapping.is_empty(),
        format!(
            "no expected container died {limit} or more times in the last {window_minutes} min or is in Docker's restart loop"
        ),
        format!("restart loop: {}", listing(&flapping)),
    );
    o.with_property(
            "deaths in the event log",
            deaths
                .iter()
                .map(|(c, n)| format!("{c}={n}"))
                .collect::<Vec<_>>()
                .join(", "),
        )
        .with_property(
            "event log reach",
            format!("asked for {window_minutes} min; the daemon keeps only its last 256 events, so with frequent health checks it reaches back less"),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use nfvi_harness::{SkipKind, Status};
    use serde_json::json;

    fn seen(name: &str, inspect: Option<Value>) -> Seen {
        Seen {
            expected: Expected {
                name: name.to_owned(),
                service: None,
            },
            inspect,
        }
    }

    fn running(health: Option<&str>) -> Value {
        let mut v = json!({"State": {"Status": "running"}, "HostConfig": {"NetworkMode": "host"},
            "Config": {"Labels": {"maintainer": "Kolla", "name": "keystone", "kolla_version": "18.0.0"}},
            "RestartCount": 0});
        if let Some(h) = health {
            v["Config"]["Healthcheck"] = json!({"Test": ["CMD-SHELL", "healthcheck_curl"]});
            v["State"]["Health"] = json!({"Status": h, "FailingStreak": 0, "Log": []});
        }
        v
    }

    /// Each judge over what was inspected: a pass needs something observed; nothing
    /// present (or nothing expected) is an error, never a pass.
    #[test]
    fn judges_need_something_observed() {
        let present = vec![seen("keystone", Some(running(Some("healthy"))))];
        let missing = vec![seen("keystone", None)];
        type Judge = fn(&[Seen]) -> Outcome;
        let flap: Judge = |s| judge_flapping(s, &BTreeMap::new(), 3, 60);
        let judges: [(&str, Judge); 5] = [
            ("running", judge_running),
            ("healthy", judge_healthy),
            ("host network", judge_host_network),
            ("labels", judge_labels),
            ("flapping", flap),
        ];
        for (name, judge) in judges {
            assert_eq!(judge(&present).status, Status::Passed, "{name}: observed");
            assert_eq!(judge(&[]).status, Status::Error, "{name}: nothing expected");
            let o = judge(&missing);
            assert_ne!(
                o.status,
                Status::Passed,
                "{name}: nothing present: {}",
                o.message
            );
        }
        for judge in [judge_host_network, judge_labels, flap, judge_healthy] {
            assert_eq!(judge(&missing).status, Status::Error);
        }
        assert_eq!(judge_running(&missing).status, Status::Failed);
    }

    /// Health: running containers without any health check observed no health: not
    /// applicable, not "0 containers healthy".
    #[test]
    fn health_without_any_health_check_is_not_applicable() {
        let o = judge_healthy(&[seen("cron", Some(running(None)))]);
        assert_eq!(o.skip_kind(), Some(SkipKind::NotApplicable), "{o:?}");
        let o = judge_healthy(&[
            seen("cron", Some(running(None))),
            seen("keystone", Some(running(Some("unhealthy")))),
        ]);
        assert_eq!(o.status, Status::Failed, "{}", o.message);
    }
}
