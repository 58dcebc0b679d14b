//! The assertions, one module per catalog group. Each assertion function runs one catalog
//! assertion against one plugin inside its own [`Lab`] and returns the outcome, with the
//! expected and the observed behaviour in the message when it fails.
//!
//! Observation is kept apart from judging: an assertion function runs the plugins and reads
//! the kernel, collects what it saw as typed data ([`Exec`], [`Link`](crate::netstate::Link),
//! [`Result100`](crate::result::Result100), reservation lists), and hands it to a pure
//! `judge_*` function in the same module. The judges are table-tested without root; only the
//! observing half needs a lab. This module holds what the groups share: the attach helpers,
//! the fixture configurations used by more than one group, the error-reply judge and `t!`.

// Runs the submodules' plugin execs side by side on the current task (I/O-bound
// subprocesses), outputs in input order.
use futures_util::future::join_all;
use nfvi_harness::Outcome;
use serde_json::{Value, json};

use crate::lab::{Env, Exec, Lab, Netns, expect_result};

/// Unwraps `Ok`, or returns the `Err` outcome from the assertion.
macro_rules! t {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(outcome) => return outcome,
        }
    };
}

mod add;
mod add_plugins;
mod add_refused;
mod chain;
mod chain_meta;
mod chain_step;
mod chain_tuning;
mod chk;
mod conc;
mod conf;
mod del;
mod delegate;
mod env;
mod err;
mod ipam;
mod ipam_alloc;
mod pod;
#[cfg(test)]
mod testkit;
mod ver;

pub(crate) use add::{add_001, add_002, add_003, add_007, add_008, add_009};
pub(crate) use add_plugins::{add_011, add_012, add_013, add_014, add_015};
pub(crate) use add_refused::{add_004, add_010};
pub(crate) use chain::{chain_001, chain_009};
pub(crate) use chain_meta::{chain_005, chain_007, chain_008};
pub(crate) use chain_step::{chain_002, chain_006, chain_010, chain_011, chain_013};
pub(crate) use chain_tuning::{chain_003, chain_004, chain_012};
pub(crate) use chk::{
    chk_001, chk_002, chk_003, chk_004, chk_005, chk_006, chk_007, chk_008, chk_009, chk_010,
    chk_011,
};
pub(crate) use conc::conc_001;
pub(crate) use conf::{conf_001, conf_002, conf_003, conf_004, conf_005, conf_006};
pub(crate) use del::{
    del_001, del_002, del_003, del_004, del_005, del_006, del_007, del_008, del_009,
};
pub(crate) use delegate::{add_005, add_006, add_016};
pub(crate) use env::{
    env_001, env_002, env_003, env_004, env_005, env_006, env_007, env_008, env_009, env_010,
    env_011,
};
pub(crate) use err::{err_001, err_002, err_003, err_004};
pub(crate) use ipam::{ipam_001, ipam_002, ipam_005, ipam_007, ipam_008, ipam_009};
pub(crate) use ipam_alloc::{ipam_003, ipam_004, ipam_006};
pub(crate) use pod::{pod_dual_stack, pod_multi_interface, pod_natless_egress};
pub(crate) use ver::{
    supported_versions, ver_001, ver_002, ver_003, ver_004, ver_005, ver_006, ver_007, ver_008,
};

/// The fixture container's ID: unique per check, because some plugin state outside the
/// runtime namespace is keyed by it (tuning's backup of the original MAC and MTU under
/// /run/cni/tuning/<container ID>-<ifname>), and concurrent checks must not share it.
/// Derived from the lab's private directory, whose name is random and alphanumeric.
fn cid(lab: &Lab<'_>) -> String {
    let tag = lab
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tag: String = tag.chars().filter(char::is_ascii_alphanumeric).collect();
    format!("nfvcid-{tag}")
}

fn with_prev(conf: &Value, prev: &Value) -> Value {
    let mut c = conf.clone();
    c["prevResult"] = prev.clone();
    c
}

fn without(conf: &Value, key: &str) -> Value {
    let mut c = conf.clone();
    if let Some(o) = c.as_object_mut() {
        o.remove(key);
    }
    c
}

/// A live attachment: namespace, config and the ADD result.
struct Attached {
    ns: Netns,
    conf: Value,
    result: Value,
}

impl Attached {
    /// Runs `command` (CHECK, DEL) on this attachment, with its ADD result as prevResult.
    async fn exec(&self, lab: &Lab<'_>, plugin: &str, command: &str) -> Exec {
        exec_after(lab, plugin, command, &self.ns, &self.conf, &self.result).await
    }
}

/// ADD of the fixture container in a fresh namespace, and the positive controls of the
/// readers that later judge "gone" and "released" ([`judge_attachment_visible`]).
async fn attach(lab: &Lab<'_>, plugin: &str) -> Result<Attached, Outcome> {
    let ns = lab.netns().await?;
    let conf = lab.conf_for(plugin).await?;
    let result = add_result(lab, plugin, &ns, &conf, &format!("{plugin} ADD")).await?;
    let links = only_lo(lab, &ns).await?;
    let reserved = if uses_ipam(plugin) {
        Some(lab.reservations(&net_name(&conf)))
    } else {
        None
    };
    judge_attachment_visible(
        plugin,
        &links,
        crate::result::read_result(&result).first_ip(),
        reserved.as_deref(),
    )?;
    Ok(Attached { ns, conf, result })
}

/// The positive controls of a live attachment, read right after its ADD through the same
/// readers the checks use afterwards: the container interface is visible in the namespace
/// (`links`, other than `lo`), and for a plugin that delegates to host-local the reservation
/// of the result's address `ip` is visible in the IPAM directory. When a reader sees nothing
/// while the attachment is live, a later "interfaces gone" or "address released" would
/// prove nothing: an error, never a pass.
fn judge_attachment_visible(
    plugin: &str,
    links: &[String],
    ip: &str,
    reserved: Option<&[(String, String)]>,
) -> Result<(), Outcome> {
    if plugin != "loopback" && links.is_empty() {
        return Err(Outcome::error(format!(
            "{plugin} ADD succeeded but the container namespace shows no interface besides lo, so a later \"interfaces gone\" could not be told from reading the wrong namespace"
        )));
    }
    if let Some(reserved) = reserved
        && !reserved.iter().any(|(a, _)| a == ip)
    {
        return Err(Outcome::error(format!(
            "{plugin} ADD returned {ip:?} but no reservation for it is visible in the IPAM directory ({reserved:?}), so a later \"address released\" could not be observed"
        )));
    }
    Ok(())
}

/// An invocation that never exited on its own: it could not be started (missing or
/// non-executable binary, `setns` failure), or it was killed without a word. Its failure is
/// no refusal by the plugin, and a check that expects a refusal must not count it as one.
fn not_run(exec: &Exec) -> Option<Outcome> {
    (exec.rc.is_none() && !exec.timed_out && exec.stdout == crate::lab::Stdout::Empty).then(|| {
        Outcome::error(format!(
            "{} {} did not run to an exit, so no refusal was observed: {}",
            exec.plugin,
            exec.command,
            exec.stderr.trim()
        ))
    })
}

/// Runs `command` for the fixture container ([`cid`], interface eth0) in `ns`, with `conf`
/// on stdin.
async fn exec_in(lab: &Lab<'_>, plugin: &str, command: &str, ns: &Netns, conf: &Value) -> Exec {
    exec_as(lab, plugin, command, ns, &cid(lab), conf).await
}

/// Runs `command` for container `cid` (interface eth0) in `ns`, with `conf` on stdin.
async fn exec_as(
    lab: &Lab<'_>,
    plugin: &str,
    command: &str,
    ns: &Netns,
    cid: &str,
    conf: &Value,
) -> Exec {
    lab.exec(plugin, &lab.env(command, ns, cid, "eth0"), conf)
        .await
}

/// Runs `command` for the fixture container in `ns`, with `prev` as the prevResult of `conf`.
async fn exec_after(
    lab: &Lab<'_>,
    plugin: &str,
    command: &str,
    ns: &Netns,
    conf: &Value,
    prev: &Value,
) -> Exec {
    exec_in(lab, plugin, command, ns, &with_prev(conf, prev)).await
}

/// ADD of the fixture container in `ns`: the result, or the failure naming `what`.
async fn add_result(
    lab: &Lab<'_>,
    plugin: &str,
    ns: &Netns,
    conf: &Value,
    what: &str,
) -> Result<Value, Outcome> {
    expect_result(&exec_in(lab, plugin, "ADD", ns, conf).await, what)
}

/// IPAM network name of a fixture config.
fn net_name(conf: &Value) -> String {
    conf["name"].as_str().unwrap_or_default().to_owned()
}

fn uses_ipam(plugin: &str) -> bool {
    matches!(
        plugin,
        "bridge" | "macvlan" | "ptp" | "ipvlan" | "vlan" | "host-device"
    )
}

/// The links other than `lo` (in any state) left in a container namespace.
async fn only_lo(lab: &Lab<'_>, ns: &Netns) -> Result<Vec<String>, Outcome> {
    Ok(lab
        .links(Some(ns))
        .await?
        .into_iter()
        .map(|l| l.name)
        .filter(|n| n != "lo")
        .collect())
}

fn fail_expected(what: &str, expected: &str, exec: &Exec) -> Outcome {
    Outcome::fail(format!(
        "{what}: expected {expected}; got {}",
        exec.describe()
    ))
    .with_property("stderr", &exec.stderr)
}

/// The failed invocation is rejected with a JSON error of `code` whose message mentions
/// `needle` (when given).
fn expect_error(
    exec: &Exec,
    what: &str,
    code: Option<u64>,
    needle: Option<&str>,
) -> Result<(), Outcome> {
    let expected = format!(
        "non-zero exit and a JSON error{}{}",
        code.map(|c| format!(" with code {c}")).unwrap_or_default(),
        needle.map(|n| format!(" naming `{n}`")).unwrap_or_default()
    );
    let good = !exec.ok()
        && exec.json().is_some()
        && code.is_none_or(|c| exec.code() == Some(c))
        && needle.is_none_or(|n| {
            exec.msg().contains(n) || exec.json().is_some_and(|v| v.to_string().contains(n))
        });
    if good {
        Ok(())
    } else {
        Err(fail_expected(what, &expected, exec))
    }
}

/// The environment of a command that names no container (VERSION, GC, STATUS).
fn version_env(command: &str) -> Env {
    Env {
        command: Some(command.to_owned()),
        container_id: None,
        netns: None,
        ifname: None,
        args: None,
        path: None,
    }
}

/// The fixture of a plugin that can run alone: host-local as a main plugin on subnet 3, or an
/// interface plugin's fixture (the macvlan master is not created here).
fn ipam_or_plugin_conf(lab: &Lab<'_>, plugin: &str) -> Value {
    match plugin {
        "host-local" => {
            json!({"cniVersion": lab.version, "name": "nfvnet-ipam", "ipam": lab.host_local(3)})
        }
        "bridge" => lab.bridge_conf(),
        "ptp" => lab.ptp_conf(),
        "macvlan" => lab.macvlan_conf(),
        _ => lab.loopback_conf(),
    }
}

/// An IPAM plugin run directly: host-local on subnet `k`, or static with one address of it.
fn ipam_conf(lab: &Lab<'_>, plugin: &str, k: u32) -> Value {
    match plugin {
        "static" => json!({"cniVersion": lab.version, "name": "nfvnet-static",
            "ipam": {"type": "static", "addresses": [{"address": lab.subnet(k).0.replace(".0/24", ".9/24")}],
                     "routes": [{"dst": "0.0.0.0/0"}], "dns": {"nameservers": ["198.18.39.53"]}}}),
        _ => json!({"cniVersion": lab.version, "name": "nfvnet-ipam", "ipam": lab.host_local(k)}),
    }
}

/// A meta (chained) plugin's own configuration, without prevResult.
fn meta_conf(lab: &Lab<'_>, plugin: &str) -> Value {
    let mut c =
        json!({"cniVersion": lab.version, "name": format!("nfvnet-{plugin}"), "type": plugin});
    match plugin {
        "portmap" => {
            c["capabilities"] = json!({"portMappings": true});
            c["runtimeConfig"] = json!({"portMappings": [{"hostPort": 18080, "containerPort": 80, "protocol": "tcp"}]});
        }
        "firewall" => c["backend"] = "iptables".into(),
        "tuning" => c["sysctl"] = json!({"net.ipv4.conf.IFNAME.arp_notify": "1"}),
        "bandwidth" => {
            c["runtimeConfig"] =
                json!({"bandwidth": {"ingressRate": 8_000_000, "ingressBurst": 800_000}})
        }
        "host-local" | "static" => return ipam_conf(lab, plugin, 3),
        _ => {}
    }
    c
}

/// Lines of a host snapshot ([`Lab::host_snapshot`]) that appeared and disappeared between
/// `before` and `after`.
fn snapshot_diff<'s>(before: &'s [String], after: &'s [String]) -> [Vec<&'s String>; 2] {
    let added = after.iter().filter(|l| !before.contains(l)).collect();
    let removed = before.iter().filter(|l| !after.contains(l)).collect();
    [added, removed]
}

#[cfg(test)]
mod tests {
    use super::testkit::{assert_contains, err, garbage, ok, ok_empty, refused};
    use super::*;
    use nfvi_harness::Status;

    /// (name, invocation, code wanted, needle wanted, judged a good error reply).
    type Row = (&'static str, Exec, Option<u64>, Option<&'static str>, bool);

    #[test]
    fn error_replies_are_judged_on_exit_code_object_code_and_message() {
        let frob = json!({"code": 4, "msg": "unknown CNI_COMMAND: FROB"});
        #[rustfmt::skip]
        let rows: &[Row] = &[
            ("code and needle match", err(1, frob.clone()), Some(4), Some("FROB"), true),
            ("needle only in details", err(1, json!({"code": 4, "msg": "bad", "details": "FROB"})), Some(4), Some("FROB"), true),
            ("no code or needle asked", refused("x"), None, None, true),
            ("wrong code", err(1, frob.clone()), Some(7), Some("FROB"), false),
            ("needle missing", err(1, frob.clone()), Some(4), Some("CNI_NETNS"), false),
            ("exit 0 with an error object", ok(frob.clone()), Some(4), None, false),
            ("non-zero exit, empty stdout", garbage(1, None), None, None, false),
            ("non-zero exit, text on stdout", garbage(1, Some("not JSON")), None, None, false),
            ("success", ok_empty(), None, None, false),
        ];
        for (name, exec, code, needle, good) in rows {
            let got = expect_error(exec, "probe", *code, *needle);
            assert_eq!(got.is_ok(), *good, "{name}: {got:?}");
            if let Err(o) = got {
                assert_eq!(o.status, Status::Failed, "{name}");
                assert!(
                    o.message
                        .starts_with("probe: expected non-zero exit and a JSON error"),
                    "{name}: {}",
                    o.message
                );
            }
        }
        let o = expect_error(&err(1, frob), "x", Some(7), Some("FROB")).unwrap_err();
        assert_contains(
            &o.message,
            "with code 7 naming `FROB`; got bridge ADD: exit 1",
        );
    }

    /// The positive controls of a live attachment: a reader that sees nothing of it makes
    /// every later "gone" or "released" undecidable.
    #[test]
    fn a_live_attachment_must_be_visible_to_the_readers() {
        let eth0 = ["eth0".to_owned()];
        let held = [("198.18.30.2".to_owned(), "nfvcid1\neth0".to_owned())];
        let other = [("198.18.30.3".to_owned(), "x".to_owned())];
        type Row<'a> = (
            &'a str,
            &'a str,
            &'a [String],
            Option<&'a [(String, String)]>,
            Option<&'a str>,
        );
        #[rustfmt::skip]
        let rows: &[Row] = &[
            ("observed", "bridge", &eth0, Some(&held), None),
            ("no IPAM plugin", "loopback", &[], None, None),
            ("nothing observed: no interface", "bridge", &[], Some(&held), Some("shows no interface besides lo")),
            ("nothing observed: no reservation", "bridge", &eth0, Some(&[]), Some("no reservation for it is visible")),
            ("control failed: another address reserved", "macvlan", &eth0, Some(&other), Some("no reservation for it is visible")),
        ];
        for (name, plugin, links, reserved, error) in rows {
            let got = judge_attachment_visible(plugin, links, "198.18.30.2", *reserved);
            match (got, error) {
                (Ok(()), None) => {}
                (Err(o), Some(part)) => {
                    assert_eq!(o.status, Status::Error, "{name}");
                    assert_contains(&o.message, part);
                }
                (got, _) => panic!("{name}: {got:?}"),
            }
        }
        assert!(not_run(&ok_empty()).is_none());
        assert!(not_run(&refused("x")).is_none());
        let o = not_run(&super::testkit::garbage_not_started()).expect("not run");
        assert_eq!(o.status, Status::Error);
    }

    #[tokio::test]
    async fn join_all_keeps_input_order() {
        let slow_first = (0..4u64).map(|i| async move {
            tokio::time::sleep(std::time::Duration::from_millis(20 * (4 - i))).await;
            i
        });
        assert_eq!(join_all(slow_first).await, [0, 1, 2, 3]);
    }

    /// futures-util's `join_all` polls, beyond 30 futures, only the futures that were woken;
    /// the hand-rolled one it replaced polled every pending future on every wake-up (about
    /// n²/2 polls for n staggered execs).
    #[tokio::test]
    async fn join_all_polls_only_woken_futures() {
        use std::future::Future;
        use std::sync::atomic::{AtomicUsize, Ordering};
        const N: u64 = 64;
        let polls = AtomicUsize::new(0);
        let staggered = (0..N).map(|i| {
            let mut sleep = Box::pin(tokio::time::sleep(std::time::Duration::from_millis(N - i)));
            let polls = &polls;
            std::future::poll_fn(move |cx| {
                polls.fetch_add(1, Ordering::Relaxed);
                sleep.as_mut().poll(cx).map(|()| i)
            })
        });
        let out = join_all(staggered).await;
        assert_eq!(out, (0..N).collect::<Vec<_>>());
        let polls = polls.load(Ordering::Relaxed);
        assert!(polls <= 4 * N as usize, "{polls} polls for {N} futures");
    }
}
