//! CNI-ADD, delegation to the IPAM plugin (CNI-ADD-005, -006, -016), observed with `nfvspy`,
//! the recording IPAM plugin built into the nfvi-verify binary (see [`crate::spy`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nfvi_harness::Outcome;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{cid, only_lo, with_prev};
use crate::lab::{Env, Exec, Lab, Netns, expect_result};

/// The recording IPAM plugin of one check: a private plugin directory holding `nfvspy` and
/// the file it records its calls to.
struct Spy {
    dir: String,
    record: PathBuf,
}

impl Spy {
    /// The plugin fixture with the spy as its IPAM plugin, plus the spy's `extra` knobs.
    async fn conf(&self, lab: &Lab<'_>, plugin: &str, extra: Value) -> Result<Value, Outcome> {
        Ok(spy_conf(lab.conf_for(plugin).await?, &self.record, extra))
    }

    /// Runs `command` for the fixture container in `ns`, with the spy's directory first on
    /// CNI_PATH.
    async fn exec(
        &self,
        lab: &Lab<'_>,
        plugin: &str,
        command: &str,
        ns: &Netns,
        stdin: &Value,
    ) -> Exec {
        lab.exec(plugin, &spy_env(lab, command, ns, &self.dir), stdin)
            .await
    }

    /// The calls the spy recorded so far.
    fn records(&self) -> Vec<SpyRecord> {
        spy_records(&self.record)
    }
}

/// A private plugin directory holding `nfvspy` (a symlink to this binary) and its record
/// file. Only the nfvi-verify binary can act as the spy.
fn spy_setup(lab: &Lab<'_>) -> Result<Spy, Outcome> {
    let exe = std::env::current_exe()
        .map_err(|e| Outcome::error(format!("cannot locate this binary: {e}")))?;
    if exe.file_name().is_none_or(|n| n != "nfvi-verify") {
        return Err(Outcome::error(format!(
            "the recording plugin is built into nfvi-verify, but this process is {}",
            exe.display()
        )));
    }
    // The lab's directory is private (0700, random name), and the link is made here or the
    // setup fails: a file that stands at its place already is never taken for the spy.
    let dir = lab.dir.join("spybin");
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(Outcome::error(format!(
                "cannot create {}: {e}",
                dir.display()
            )));
        }
    }
    let link = dir.join(crate::spy::SPY_NAME);
    match std::fs::read_link(&link) {
        Ok(to) if to == exe => {}
        _ if link.symlink_metadata().is_err() => std::os::unix::fs::symlink(&exe, &link)
            .map_err(|e| Outcome::error(format!("cannot link the spy: {e}")))?,
        _ => {
            return Err(Outcome::error(format!(
                "{} exists and is not this harness's link to {}; refusing to run it",
                link.display(),
                exe.display()
            )));
        }
    }
    Ok(Spy {
        dir: dir.display().to_string(),
        record: lab.dir.join("spy.jsonl"),
    })
}

/// One call of the spy: the CNI_* environment and the stdin it received.
#[derive(Debug, Default, Deserialize)]
struct SpyRecord {
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    stdin: String,
}

impl SpyRecord {
    fn command(&self) -> Option<&str> {
        self.env.get("CNI_COMMAND").map(String::as_str)
    }
}

/// The spy's record file, one JSON line per call; unreadable lines are skipped.
fn spy_records(path: &Path) -> Vec<SpyRecord> {
    parse_records(&std::fs::read_to_string(path).unwrap_or_default())
}

fn parse_records(text: &str) -> Vec<SpyRecord> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The plugin fixture with its IPAM type replaced by the spy, which records to `record`,
/// plus the spy's `extra` knobs (`fail`, `stderrMarker`).
fn spy_conf(plugin_conf: Value, record: &Path, extra: Value) -> Value {
    let mut c = plugin_conf;
    let mut ipam = c["ipam"].clone();
    ipam["type"] = crate::spy::SPY_NAME.into();
    ipam["record"] = record.display().to_string().into();
    if let (Some(ipam), Some(extra)) = (ipam.as_object_mut(), extra.as_object()) {
        ipam.extend(extra.clone());
    }
    c["ipam"] = ipam;
    c
}

fn spy_env(lab: &Lab<'_>, command: &str, ns: &Netns, spydir: &str) -> Env {
    let mut env = lab.env(command, ns, &cid(lab), "eth0");
    env.path = Some(format!("{spydir}:{}", env.path.unwrap_or_default()));
    env
}

/// What the plugin was given for one command: the environment and the stdin.
struct Sent {
    command: &'static str,
    env: Env,
    stdin: Value,
}

pub(crate) async fn add_005(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let spy = t!(spy_setup(lab));
    let ns = t!(lab.netns().await);
    let conf = t!(spy.conf(lab, plugin, json!({})).await);
    let mut sent = Vec::new();
    let mut prev = Value::Null;
    for command in ["ADD", "CHECK", "DEL"] {
        let mut env = spy_env(lab, command, &ns, &spy.dir);
        env.args = Some("IgnoreUnknown=1;X=y".into());
        let stdin = if command == "ADD" {
            conf.clone()
        } else {
            with_prev(&conf, &prev)
        };
        let exec = lab.exec(plugin, &env, &stdin).await;
        if command == "ADD" {
            prev = t!(expect_result(&exec, "ADD with the recording IPAM"));
        }
        sent.push(Sent {
            command,
            env,
            stdin,
        });
    }
    judge_delegation(&sent, &spy.records())
}

/// For every command the delegate was called with the plugin's CNI_* variables and its
/// complete configuration.
fn judge_delegation(sent: &[Sent], records: &[SpyRecord]) -> Outcome {
    let mut p = Vec::new();
    for Sent {
        command,
        env,
        stdin,
    } in sent
    {
        let Some(r) = records.iter().find(|r| r.command() == Some(*command)) else {
            p.push(format!("the IPAM plugin was not called for {command}"));
            continue;
        };
        // The record was found by its command; the other variables must match.
        for (k, v) in env.vars().into_iter().filter(|(k, _)| *k != "CNI_COMMAND") {
            let got = r.env.get(k);
            if got != v.as_ref() {
                p.push(format!(
                    "{command}: delegate got {k}={} but the plugin got {v:?}",
                    json!(got)
                ));
            }
        }
        let got: Value = serde_json::from_str(&r.stdin).unwrap_or(Value::Null);
        if got != *stdin {
            p.push(format!(
                "{command}: the delegate's stdin differs from the plugin's network configuration"
            ));
        }
    }
    Outcome::pass_unless(
        p,
        "the IPAM plugin was found on CNI_PATH and got identical CNI_* variables and the complete configuration for ADD, CHECK and DEL",
    )
}

const MARKER: &str = "nfvspy-stderr-marker";

pub(crate) async fn add_006(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let spy = t!(spy_setup(lab));
    let ns = t!(lab.netns().await);
    let fail = json!({"fail": {"code": 142, "msg": "nfvspy refuses"}, "stderrMarker": MARKER});
    let conf = t!(spy.conf(lab, plugin, fail).await);
    let host_before = t!(host_link_names(lab).await);
    let exec = spy.exec(lab, plugin, "ADD", &ns, &conf).await;
    let records = spy.records();
    let left = t!(only_lo(lab, &ns).await);
    let host_after = t!(host_link_names(lab).await);
    let _ = spy.exec(lab, plugin, "DEL", &ns, &conf).await;
    judge_failed_delegate(&exec, &records, &left, [&host_before, &host_after])
}

/// The names of the links in the runtime namespace.
async fn host_link_names(lab: &Lab<'_>) -> Result<Vec<String>, Outcome> {
    Ok(lab.links(None).await?.into_iter().map(|l| l.name).collect())
}

/// ADD whose IPAM ADD fails with code 142: the code is propagated, the delegate's stderr
/// forwarded, IPAM DEL called, and nothing is left in the container or (apart from the bridge,
/// which is kept on purpose) on the host.
fn judge_failed_delegate(
    exec: &Exec,
    records: &[SpyRecord],
    container_left: &[String],
    [host_before, host_after]: [&[String]; 2],
) -> Outcome {
    let mut p = Vec::new();
    if exec.ok() || exec.code() != Some(142) {
        p.push(format!(
            "expected the IPAM error code 142 propagated; got {}",
            exec.describe()
        ));
    }
    if !exec.stderr.contains(MARKER) {
        p.push("the IPAM plugin's stderr was not forwarded".to_owned());
    }
    if !records.iter().any(|r| r.command() == Some("DEL")) {
        p.push("the plugin did not call IPAM DEL after the failed IPAM ADD".to_owned());
    }
    let host_new: Vec<&String> = host_after
        .iter()
        .filter(|n| !host_before.contains(n) && *n != "nfvbr0")
        .collect();
    if !container_left.is_empty() || !host_new.is_empty() {
        p.push(format!(
            "residue after the failed ADD: container {container_left:?}, host {host_new:?}"
        ));
    }
    Outcome::pass_unless(
        p,
        "code 142 propagated, stderr forwarded, IPAM DEL called, no residue",
    )
}

pub(crate) async fn add_016(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let spy = t!(spy_setup(lab));
    let ns = t!(lab.netns().await);
    let conf = t!(spy.conf(lab, plugin, json!({"stderrMarker": MARKER})).await);
    let add = spy.exec(lab, plugin, "ADD", &ns, &conf).await;
    let prev = add.json().cloned().unwrap_or_default();
    let del = spy
        .exec(lab, plugin, "DEL", &ns, &with_prev(&conf, &prev))
        .await;
    let failing = json!({"stderrMarker": MARKER, "fail": {"code": 142}});
    let failing = t!(spy.conf(lab, plugin, failing).await);
    let ns2 = t!(lab.netns().await);
    let fail = spy.exec(lab, plugin, "ADD", &ns2, &failing).await;
    judge_stderr_forwarded(&add, &del, &fail)
}

/// The delegate writes "<marker> <command>" to stderr; the plugin's stderr must hold it after
/// a successful ADD, a DEL and a failing ADD.
fn judge_stderr_forwarded(add: &Exec, del: &Exec, failing_add: &Exec) -> Outcome {
    let mut p = Vec::new();
    for (what, cmd, exec) in [
        ("successful ADD", "ADD", add),
        ("DEL", "DEL", del),
        ("failing ADD", "ADD", failing_add),
    ] {
        if !exec.stderr.contains(&format!("{MARKER} {cmd}")) {
            p.push(format!(
                "{what}: the delegate's stderr marker is missing from the plugin's stderr"
            ));
        }
    }
    Outcome::pass_unless(
        p,
        "the delegate's stderr reached the caller on success and on failure",
    )
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{err, named, ok};
    use super::*;
    use nfvi_harness::Status;

    fn env(command: &str) -> Env {
        Env {
            command: Some(command.to_owned()),
            container_id: Some("nfvcid1".to_owned()),
            netns: Some("/run/netns/nfvc-1".to_owned()),
            ifname: Some("eth0".to_owned()),
            args: Some("IgnoreUnknown=1;X=y".to_owned()),
            path: Some("/spy:/opt/cni/bin".to_owned()),
        }
    }

    /// The spy's record line for a faithful delegation of `env` and `stdin`.
    fn record_line(env: &Env, stdin: &Value) -> String {
        let mut vars = serde_json::Map::new();
        for (k, v) in env.vars() {
            if let Some(v) = v {
                vars.insert(k.to_owned(), v.clone().into());
            }
        }
        json!({"env": vars, "stdin": stdin.to_string()}).to_string()
    }

    fn sent() -> Vec<Sent> {
        let conf = json!({"cniVersion": "1.0.0", "name": "nfvnet-br", "ipam": {"type": "nfvspy"}});
        ["ADD", "CHECK", "DEL"]
            .into_iter()
            .map(|command| Sent {
                command,
                env: env(command),
                stdin: conf.clone(),
            })
            .collect()
    }

    #[test]
    fn the_delegate_gets_the_same_environment_and_configuration() {
        let s = sent();
        let faithful: Vec<String> = s.iter().map(|x| record_line(&x.env, &x.stdin)).collect();
        let o = judge_delegation(&s, &parse_records(&faithful.join("\n")));
        assert_eq!(o.status, Status::Passed, "{}", o.message);

        // CHECK never delegated; DEL without CNI_NETNS and with a trimmed configuration.
        let mut del_env = env("DEL");
        del_env.netns = None;
        let lines = [
            faithful[0].clone(),
            "not json".to_owned(),
            record_line(&del_env, &json!({"cniVersion": "1.0.0"})),
        ];
        let o = judge_delegation(&s, &parse_records(&lines.join("\n")));
        assert_eq!(o.status, Status::Failed);
        assert_eq!(
            o.message,
            "the IPAM plugin was not called for CHECK; DEL: delegate got CNI_NETNS=null but the plugin got Some(\"/run/netns/nfvc-1\"); DEL: the delegate's stdin differs from the plugin's network configuration"
        );
        let mut other = env("ADD");
        other.args = Some("X=z".into());
        let o = judge_delegation(&s[..1], &parse_records(&record_line(&other, &s[0].stdin)));
        assert_eq!(
            o.message,
            "ADD: delegate got CNI_ARGS=\"X=z\" but the plugin got Some(\"IgnoreUnknown=1;X=y\")"
        );
    }

    #[test]
    fn a_failing_delegate_is_reported_and_cleaned_up() {
        let failed = named(
            err(1, json!({"code": 142, "msg": "nfvspy refuses"})),
            "ADD",
            "nfvspy-stderr-marker ADD\n",
        );
        let calls = parse_records(
            &[
                record_line(&env("ADD"), &json!({})),
                record_line(&env("DEL"), &json!({})),
            ]
            .join("\n"),
        );
        let before = vec!["lo".to_owned()];
        let after = vec!["lo".to_owned(), "nfvbr0".to_owned()];
        let o = judge_failed_delegate(&failed, &calls, &[], [&before, &after]);
        assert_eq!(o.status, Status::Passed, "{}", o.message);

        let silent = err(1, json!({"code": 999, "msg": "wrapped"}));
        let leaky = vec!["lo".to_owned(), "veth3b50e44d".to_owned()];
        let o = judge_failed_delegate(
            &silent,
            &calls[..1],
            &["eth0".to_owned()],
            [&before, &leaky],
        );
        assert_eq!(
            o.message,
            "expected the IPAM error code 142 propagated; got bridge ADD: exit 1, stdout {\"code\":999,\"msg\":\"wrapped\"}; the IPAM plugin's stderr was not forwarded; the plugin did not call IPAM DEL after the failed IPAM ADD; residue after the failed ADD: container [\"eth0\"], host [\"veth3b50e44d\"]"
        );
        let o = judge_failed_delegate(&ok(json!({})), &calls, &[], [&before, &before]);
        assert_eq!(o.status, Status::Failed, "success is not propagation");
    }

    #[test]
    fn delegate_stderr_is_forwarded() {
        let with = |cmd: &str| named(ok(json!({})), cmd, &format!("bridge log\n{MARKER} {cmd}\n"));
        let o = judge_stderr_forwarded(&with("ADD"), &with("DEL"), &with("ADD"));
        assert_eq!(o.status, Status::Passed, "{}", o.message);
        let o =
            judge_stderr_forwarded(&with("ADD"), &with("ADD"), &named(ok(json!({})), "ADD", ""));
        assert_eq!(
            o.message,
            "DEL: the delegate's stderr marker is missing from the plugin's stderr; failing ADD: the delegate's stderr marker is missing from the plugin's stderr"
        );
    }
}
