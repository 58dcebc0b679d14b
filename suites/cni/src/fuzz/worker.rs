//! A worker: the catalog's sandbox ([`Lab`]: a private runtime namespace the plugin runs in,
//! a container namespace, a private directory), the devices its plugin needs, and a baseline
//! of both namespaces. It runs one case at a time the way a runtime would and reads back what
//! is left. Invocations go through the harness's process runner under their deadline, but
//! are not recorded one by one as check evidence (thousands would drown the report): the
//! findings carry their own replay.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nfvi_harness::check::BoxFuture;
use nfvi_harness::process::{self, CommandSpec, Launcher};
use nfvi_harness::{CheckContext, Outcome, bytes_to_evidence};
use serde_json::Value;

use super::case::{Bindings, Case, Flow, ReplayStep, Setup, Stdin};
use super::judge::{Call, Violation, judge_call, judge_residue};
use super::templates::{self, Kind};
use crate::lab::{Lab, Netns, Stdout, classify};
use crate::result::validate_result;

/// Forks plugins from a thread inside the runtime namespace (as the lab does).
#[derive(Debug)]
struct InNetns(PathBuf);

impl Launcher for InNetns {
    fn launch(&self, fork: Box<dyn FnOnce() + Send>) -> BoxFuture<'static, io::Result<()>> {
        let path = self.0.clone();
        Box::pin(async move {
            nfvi_net::in_netns(path, fork)
                .await
                .map_err(|e| io::Error::other(nfvi_net::chain(&e)))
        })
    }

    fn label(&self) -> String {
        format!("[netns {}]", self.0.display())
    }
}

/// The CNI variables of one invocation.
type Env = Vec<(String, String)>;

/// What one case did.
#[derive(Debug, Clone, Default)]
pub(crate) struct Observed {
    pub(crate) violations: Vec<Violation>,
    /// The invocations as sent (placeholders unbound), for the replay line.
    pub(crate) steps: Vec<ReplayStep>,
    pub(crate) invocations: usize,
}

impl Observed {
    pub(crate) fn has(&self, signature: &str) -> bool {
        self.violations.iter().any(|v| v.signature == signature)
    }
}

struct State<'a> {
    lab: Lab<'a>,
    ns: Netns,
    launcher: Arc<InNetns>,
    bindings: Bindings,
    /// (runtime namespace, container namespace) state before any case.
    baseline: (BTreeSet<String>, BTreeSet<String>),
}

pub(crate) struct Worker<'a> {
    cx: &'a CheckContext,
    plugin: &'static str,
    plugin_path: String,
    timeout: Duration,
    state: tokio::sync::Mutex<State<'a>>,
}

fn setup_error(what: &str, e: &nfvi_net::NetlinkError) -> Outcome {
    Outcome::error(format!("{what}: {}", nfvi_net::chain(e)))
}

async fn sandbox<'a>(cx: &'a CheckContext, plugin: &str) -> Result<State<'a>, Outcome> {
    let lab = Lab::new(cx, "1.0.0").await?;
    let ns = lab.netns().await?;
    let rt_path = nfvi_net::Netns::named(&lab.rt).path().to_owned();
    match templates::setup(plugin) {
        Setup::None => {}
        Setup::Master => lab.macvlan_master().await?,
        Setup::HostDevice => {
            lab.conf_for("host-device").await?;
        }
        Setup::Chained => {
            let c_path = PathBuf::from(&ns.path);
            nfvi_net::within_async(rt_path.clone(), move |h| async move {
                h.add_veth("nfvfzh0", "eth0").await?;
                h.set_up("nfvfzh0").await?;
                h.set_netns("eth0", &c_path).await
            })
            .await
            .and_then(|r| r)
            .map_err(|e| setup_error("chained fixture (runtime side)", &e))?;
            nfvi_net::within_async(PathBuf::from(&ns.path), |h| async move {
                h.set_up("eth0").await?;
                h.add_address("eth0", "198.18.41.2".parse().expect("address"), 24)
                    .await
            })
            .await
            .and_then(|r| r)
            .map_err(|e| setup_error("chained fixture (container side)", &e))?;
        }
    }
    // A regular file for the cases that point CNI_NETNS at one.
    std::fs::write(lab.dir.join("not-a-netns"), b"")
        .map_err(|e| Outcome::error(format!("cannot write in {}: {e}", lab.dir.display())))?;
    let bindings = Bindings {
        netns: ns.path.clone(),
        dir: lab.dir.display().to_string(),
        cni_path: cx.target().config::<crate::CniConfig>().search_path(),
    };
    let mut state = State {
        launcher: Arc::new(InNetns(rt_path)),
        lab,
        ns,
        bindings,
        baseline: Default::default(),
    };
    state.baseline = (
        snapshot(&state.lab.rt_path(), true).await?,
        snapshot(Path::new(&state.ns.path), false).await?,
    );
    Ok(state)
}

impl Lab<'_> {
    fn rt_path(&self) -> PathBuf {
        nfvi_net::Netns::named(&self.rt).path().to_owned()
    }
}

/// Links, addresses and routes of a namespace as lines; in the runtime namespace
/// (`host`), what belongs to bridges is left out: a bridge plugin's bridge is shared by
/// every container and outlives them by design.
async fn snapshot(path: &Path, host: bool) -> Result<BTreeSet<String>, Outcome> {
    let (links, addrs, routes) = nfvi_net::within_async(path.to_owned(), |h| async move {
        Ok::<_, nfvi_net::NetlinkError>((
            h.links().await?,
            h.addresses().await?,
            h.routes(nfvi_net::Family::V4).await?,
        ))
    })
    .await
    .and_then(|r| r)
    .map_err(|e| setup_error("reading namespace state", &e))?;
    let bridges: BTreeSet<String> = links
        .iter()
        .filter(|l| host && l.kind.as_deref() == Some("bridge"))
        .map(|l| l.name.clone())
        .collect();
    let side = if host { "host" } else { "container" };
    let keep = |dev: &str| dev != "lo" && !bridges.contains(dev);
    let mut out = BTreeSet::new();
    for l in links.iter().filter(|l| keep(&l.name)) {
        out.insert(format!("{side}-link {}", l.name));
    }
    // IPv6 link-local addresses come and go on their own (autoconfiguration after a link
    // comes up), not by any plugin's doing.
    let link_local = |a: &nfvi_net::Address| matches!(a.ip, std::net::IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80);
    for a in addrs.iter().filter(|a| keep(&a.ifname) && !link_local(a)) {
        out.insert(format!("{side}-addr {} on {}", a.cidr(), a.ifname));
    }
    for r in routes.iter().filter(|r| r.dev.as_deref().is_none_or(keep)) {
        out.insert(format!(
            "{side}-route {} dev {}",
            r.dst_text(),
            r.dev.as_deref().unwrap_or("-")
        ));
    }
    Ok(out)
}

/// Files left in the private directory: IPAM reservations, tuning's backups, and anything a
/// plugin created where it had no business (a file at a CNI_NETNS path that did not exist).
/// host-local's lock and last-reserved markers are its bookkeeping, not allocations.
fn data_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                stack.push(p);
            } else if name != "lock"
                && name != "not-a-netns"
                && !name.starts_with("last_reserved_ip")
            {
                let rel = p.strip_prefix(dir).unwrap_or(&p).display().to_string();
                out.push(format!("file {rel}"));
            }
        }
    }
    out.sort();
    out
}

/// The request as the plugin reads it: Go's decoder takes invalid UTF-8 in strings (as
/// U+FFFD), so this one does too.
fn stdin_json(bytes: &[u8]) -> Option<Value> {
    serde_json::from_slice(bytes)
        .ok()
        .or_else(|| serde_json::from_str(&String::from_utf8_lossy(bytes)).ok())
}

impl<'a> Worker<'a> {
    pub(crate) async fn new(
        cx: &'a CheckContext,
        plugin: &'static str,
        plugin_path: String,
    ) -> Result<Self, Outcome> {
        let timeout = Duration::from_secs(
            cx.target()
                .config::<crate::CniConfig>()
                .exec_timeout_secs
                .max(1),
        );
        Ok(Self {
            cx,
            plugin,
            plugin_path,
            timeout,
            state: tokio::sync::Mutex::new(sandbox(cx, plugin).await?),
        })
    }

    /// The plugin's VERSION answer (supportedVersions), `None` when it gives none.
    pub(crate) async fn supported(&self) -> Option<Vec<String>> {
        let state = self.state.lock().await;
        let env = vec![("CNI_COMMAND".to_owned(), "VERSION".to_owned())];
        let (_, out) = self
            .exec(&state, &env, b"{\"cniVersion\":\"1.0.0\"}")
            .await
            .ok()?;
        let v: Value = serde_json::from_str(out.as_deref()?.trim()).ok()?;
        v["supportedVersions"].as_array().map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
    }

    /// One invocation: (the judge's view, stdout text).
    async fn exec(
        &self,
        state: &State<'_>,
        env: &[(String, String)],
        stdin: &[u8],
    ) -> Result<(Call, Option<String>), Outcome> {
        let mut spec = CommandSpec::new(self.plugin_path.clone())
            .launcher(state.launcher.clone())
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .stdin(state.bindings.bind_bytes(stdin))
            .timeout(self.timeout)
            .output_cap(1 << 20);
        for (k, v) in env {
            spec = spec.env(k.as_str(), state.bindings.bind(v));
        }
        let command = env
            .iter()
            .find(|(k, _)| k == "CNI_COMMAND")
            .map_or("(no CNI_COMMAND)".to_owned(), |(_, v)| v.clone());
        let request = stdin_json(stdin);
        let parsed = request.is_some();
        // Go reads a null cniVersion as an absent one.
        let version = request
            .as_ref()
            .and_then(|r| r.get("cniVersion"))
            .filter(|v| !v.is_null())
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned));
        let prev_valid = request
            .as_ref()
            .and_then(|r| r.get("prevResult"))
            .is_none_or(|p| {
                let v = p["cniVersion"].as_str().unwrap_or("");
                validate_result(p, v, None).is_empty()
            });
        let mut call = Call {
            command,
            version,
            // A request this side cannot read is not judged by its result.
            prev_valid: prev_valid && parsed,
            ipam: templates::kind(self.plugin) == Kind::Ipam,
            rc: None,
            timed_out: false,
            stdout: Stdout::Empty,
            stderr: String::new(),
        };
        match process::run(&spec, self.cx.cancel(), Duration::from_secs(1)).await {
            Ok(out) => {
                let text = bytes_to_evidence(&out.stdout);
                call.rc = out.exit_code;
                call.timed_out = out.timed_out;
                call.stdout = classify(&text);
                call.stderr = out.stderr_text();
                Ok((call, Some(text)))
            }
            Err(e) => Err(Outcome::error(format!(
                "could not start the plugin: {e}: {}",
                e.source
            ))),
        }
    }

    /// Removes what a case left behind (links, files), so the next case starts from the
    /// baseline; a sandbox that cannot be brought back is replaced. Namespaces are made
    /// only when needed: the kernel tears them down slowly under load.
    async fn clear(&self, state: &mut State<'a>, residue: &[String]) -> Result<(), Outcome> {
        let (mut host, mut container) = (Vec::new(), Vec::new());
        for r in residue {
            if let Some(l) = r.strip_prefix("host-link ") {
                host.push(l.to_owned());
            } else if let Some(l) = r.strip_prefix("container-link ") {
                container.push(l.to_owned());
            } else if let Some(f) = r.strip_prefix("file ") {
                let _ = std::fs::remove_file(state.lab.dir.join(f));
            }
        }
        for (path, links) in [
            (state.lab.rt_path(), host),
            (PathBuf::from(&state.ns.path), container),
        ] {
            if !links.is_empty() {
                let _ = nfvi_net::within_async(path, |h| async move {
                    for l in links {
                        let _ = h.delete_link(&l).await;
                    }
                })
                .await;
            }
        }
        let clean = snapshot(&state.lab.rt_path(), true).await? == state.baseline.0
            && snapshot(Path::new(&state.ns.path), false).await? == state.baseline.1
            && data_files(&state.lab.dir).is_empty();
        if !clean {
            let old = std::mem::replace(state, sandbox(self.cx, self.plugin).await?);
            let _ = nfvi_net::delete(&old.ns.name);
            let _ = nfvi_net::delete(&old.lab.rt);
            let _ = std::fs::remove_dir_all(&old.lab.dir);
        }
        Ok(())
    }

    /// Runs `case` as a runtime would and judges every invocation and what is left.
    /// `Err` is an error of the harness (a namespace it could not read).
    pub(crate) async fn run_case(
        &self,
        case: &Case,
        supported: &[String],
    ) -> Result<Observed, Outcome> {
        let mut state = self.state.lock().await;
        let mut obs = Observed::default();
        let stdin = case.stdin.bytes();
        let mut steps: Vec<(Env, Vec<u8>)> = vec![(case.env.clone(), stdin.clone())];
        let mut i = 0;
        while i < steps.len() {
            let (env, input) = steps[i].clone();
            let (call, out) = self.exec(&state, &env, &input).await?;
            obs.invocations += 1;
            obs.steps.push(ReplayStep {
                env: env.clone(),
                stdin: input.clone(),
            });
            obs.violations.extend(judge_call(&call, supported));
            if call.rc.is_none() && !call.timed_out && self.cx.cancel().is_cancelled() {
                return Err(Outcome::error("the run was cancelled"));
            }
            if i == 0
                && let Flow::Lifecycle { check } = case.flow
            {
                let with_env = |command: &str| {
                    let mut c = case.clone();
                    c.set_var("CNI_COMMAND", Some(command.to_owned()));
                    c.env
                };
                let result = (call.rc == Some(0))
                    .then(|| {
                        out.as_deref()
                            .and_then(|t| serde_json::from_str::<Value>(t.trim()).ok())
                    })
                    .flatten();
                let follow = match (&case.stdin, result) {
                    (Stdin::Json(Value::Object(conf)), Some(r)) => {
                        let mut conf = conf.clone();
                        let r = state.bindings.unbind(&r.to_string());
                        conf.insert(
                            "prevResult".into(),
                            serde_json::from_str(&r).unwrap_or(Value::Null),
                        );
                        Value::Object(conf).to_string().into_bytes()
                    }
                    _ => stdin.clone(),
                };
                if check && call.rc == Some(0) {
                    steps.push((with_env("CHECK"), follow.clone()));
                }
                steps.push((with_env("DEL"), follow));
            }
            i += 1;
        }
        let mut residue: Vec<String> = Vec::new();
        let host = snapshot(&state.lab.rt_path(), true).await?;
        let container = snapshot(Path::new(&state.ns.path), false).await?;
        residue.extend(host.difference(&state.baseline.0).cloned());
        residue.extend(container.difference(&state.baseline.1).cloned());
        residue.extend(data_files(&state.lab.dir));
        let last = obs.steps.last().and_then(|s| {
            s.env
                .iter()
                .find(|(k, _)| k == "CNI_COMMAND")
                .map(|(_, v)| v.clone())
        });
        let after = format!(
            "after {}",
            last.unwrap_or_else(|| "(no CNI_COMMAND)".into())
        );
        if let Some(v) = judge_residue(&after, &residue) {
            obs.violations.push(v);
            self.clear(&mut state, &residue).await?;
        }
        Ok(obs)
    }
}
