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

async fn inspect_all(docker: &Docker, expected: Vec<Expected>) -> Result<Vec<Seen>, String> {
    let calls = expected.into_iter().map(|e| async move {
        let r = tokio::time::timeout(
            Duration::from_secs(30),
            docker.inspect_container(&e.name, None),
        )
        .await;
        match r {
            Err(_) => Err(format!(
                "inspecting container `{}`: no answer from the Docker daemon within 30 s",
                e.name
            )),
            Ok(Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            })) => Ok(Seen {
                expected: e,
                inspect: None,
            }),
            Ok(Err(err)) => Err(format!("inspecting container `{}`: {err}", e.name)),
            Ok(Ok(resp)) => Ok(Seen {
                expected: e,
                inspect: Some(serde_json::to_value(resp).map_err(|e| e.to_string())?),
            }),
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
    let docker = nfvi_suite_docker::client(cx).await?;
    let judged = match kind {
        Kind::Running => running(&docker, expected).await,
        Kind::Healthy => healthy(&docker, expected).await,
        Kind::HostNetwork => host_network(&docker, expected).await,
        Kind::Labels => labels(&docker, expected).await,
        Kind::Flapping => {
            flapping(
                &docker,
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

async fn running(docker: &Docker, expected: Vec<Expected>) -> Result<Outcome, String> {
    let total = expected.len();
    let seen = inspect_all(docker, expected).await?;
    let mut bad = Vec::new();
    for s in &seen {
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
    for s in &seen {
        o = o.with_property(format!("container {}", s.expected.name), s.state());
    }
    Ok(o)
}

async fn healthy(docker: &Docker, expected: Vec<Expected>) -> Result<Outcome, String> {
    // Like Kolla's CI: wait while any health check is still `starting`, then judge.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let mut expected_again = expected.clone();
    let seen = loop {
        let seen = inspect_all(docker, std::mem::take(&mut expected_again)).await?;
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
    let mut checked = 0;
    let mut without = Vec::new();
    let mut bad = Vec::new();
    let mut not_running = Vec::new();
    for s in &seen {
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
    Ok(o)
}

async fn host_network(docker: &Docker, expected: Vec<Expected>) -> Result<Outcome, String> {
    let seen = inspect_all(docker, expected).await?;
    let mut bad = Vec::new();
    let mut judged = 0;
    for s in &seen {
        if let Some(v) = &s.inspect {
            judged += 1;
            let mode = v["HostConfig"]["NetworkMode"].as_str().unwrap_or("");
            if mode != "host" {
                bad.push(format!("{}: network mode `{mode}`", s.expected.name));
            }
        }
    }
    Ok(if bad.is_empty() {
        Outcome::pass(format!(
            "all {judged} present containers use host networking"
        ))
    } else {
        Outcome::fail(format!(
            "{} of {judged} containers do not use host networking: {}",
            bad.len(),
            listing(&bad)
        ))
    })
}

async fn labels(docker: &Docker, expected: Vec<Expected>) -> Result<Outcome, String> {
    let seen = inspect_all(docker, expected).await?;
    let mut bad = Vec::new();
    let mut versions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut judged = 0;
    for s in &seen {
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
    let o = Outcome::pass_if(
        bad.is_empty(),
        format!(
            "all {judged} present containers carry Kolla's labels for the expected image, kolla_version {}",
            versions.keys().next().map_or("-", String::as_str)
        ),
        format!("{} label problem(s): {}", bad.len(), listing(&bad)),
    );
    Ok(o.with_property(
        "kolla_version",
        versions.keys().cloned().collect::<Vec<_>>().join(", "),
    ))
}

async fn flapping(
    docker: &Docker,
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
    let mut stream = docker.events(Some(options));
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
    let seen = inspect_all(docker, expected).await?;
    let mut flapping = Vec::new();
    for s in &seen {
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
    Ok(o
        .with_property(
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
        ))
}
