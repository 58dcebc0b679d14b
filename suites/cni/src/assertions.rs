//! The assertions. Each function runs one catalog assertion against one plugin inside its own
//! [`Lab`] and returns the outcome, with the expected and the observed behaviour in the
//! message when it fails.

use std::collections::BTreeSet;

use nfvi_harness::Outcome;
use serde_json::{Value, json};

use crate::lab::{Env, Exec, Lab, Netns, Stdout, expect_result, expect_success};
use crate::result::{
    validate_error, validate_ipam_result, validate_result, validate_version, well_known_code,
};

macro_rules! t {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(outcome) => return outcome,
        }
    };
}

const CID: &str = "nfvcid1";

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

async fn attach(lab: &Lab<'_>, plugin: &str) -> Result<Attached, Outcome> {
    let ns = lab.netns().await?;
    let conf = lab.conf_for(plugin).await?;
    let exec = lab
        .exec(plugin, &lab.env("ADD", &ns, CID, "eth0"), &conf)
        .await;
    let result = expect_result(&exec, &format!("{plugin} ADD"))?;
    Ok(Attached { ns, conf, result })
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

/// Only `lo` (in any state) is left in a container namespace.
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

// ---- ENV ---------------------------------------------------------------------------------

pub(crate) async fn env_001(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let mut env = lab.env("ADD", &ns, CID, "eth0");
    env.command = None;
    let exec = lab
        .exec(plugin, &env, &t!(lab.conf_for(plugin).await))
        .await;
    t!(expect_error(
        &exec,
        "invocation without CNI_COMMAND",
        Some(4),
        Some("CNI_COMMAND")
    ));
    Outcome::pass(format!("rejected with code 4: {}", exec.msg()))
}

pub(crate) async fn env_002(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let exec = lab
        .exec(
            plugin,
            &lab.env("FROB", &ns, CID, "eth0"),
            &t!(lab.conf_for(plugin).await),
        )
        .await;
    t!(expect_error(
        &exec,
        "CNI_COMMAND=FROB",
        Some(4),
        Some("FROB")
    ));
    let left = t!(only_lo(lab, &ns).await);
    if !left.is_empty() {
        return Outcome::fail(format!(
            "the rejected command still created {left:?} in the netns"
        ));
    }
    Outcome::pass(format!("rejected with code 4: {}", exec.msg()))
}

async fn env_missing(lab: &Lab<'_>, plugin: &str, var: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let conf = t!(lab.conf_for(plugin).await);
    let mut env = lab.env("ADD", &ns, CID, "eth0");
    match var {
        "CNI_CONTAINERID" => env.container_id = None,
        "CNI_NETNS" => env.netns = None,
        _ => env.ifname = None,
    }
    let exec = lab.exec(plugin, &env, &conf).await;
    t!(expect_error(
        &exec,
        &format!("ADD without {var}"),
        Some(4),
        Some(var)
    ));
    let left = t!(only_lo(lab, &ns).await);
    let reserved = lab.reservations(&net_name(&conf));
    if !left.is_empty() || !reserved.is_empty() {
        return Outcome::fail(format!(
            "ADD without {var} failed but left links {left:?} and reservations {reserved:?}"
        ));
    }
    Outcome::pass(format!(
        "rejected with code 4 naming {var}; nothing created"
    ))
}

pub(crate) async fn env_003(lab: &Lab<'_>, plugin: &str) -> Outcome {
    env_missing(lab, plugin, "CNI_CONTAINERID").await
}
pub(crate) async fn env_004(lab: &Lab<'_>, plugin: &str) -> Outcome {
    env_missing(lab, plugin, "CNI_NETNS").await
}
pub(crate) async fn env_005(lab: &Lab<'_>, plugin: &str) -> Outcome {
    env_missing(lab, plugin, "CNI_IFNAME").await
}

pub(crate) async fn env_006(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let conf = t!(lab.conf_for(plugin).await);
    let (command, env) = if plugin == "loopback" {
        ("ADD", lab.env("ADD", &ns, CID, "eth0").without_path())
    } else {
        (
            "DEL",
            lab.env("DEL", &ns, "nfvneveradded", "eth0").without_path(),
        )
    };
    let exec = lab.exec(plugin, &env, &conf).await;
    t!(expect_success(
        &exec,
        &format!("{command} without CNI_PATH")
    ));
    Outcome::pass(format!("{command} without CNI_PATH succeeded"))
}

pub(crate) async fn env_007(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    let name = net_name(&a.conf);
    if lab.reservations(&name).is_empty() {
        return Outcome::error("ADD succeeded but host-local recorded no reservation to watch");
    }
    let mut env = lab.env("DEL", &a.ns, CID, "eth0");
    env.netns = None;
    let exec = lab.exec(plugin, &env, &with_prev(&a.conf, &a.result)).await;
    t!(expect_success(&exec, "DEL without CNI_NETNS"));
    let left = lab.reservations(&name);
    if !left.is_empty() {
        return Outcome::fail(format!(
            "DEL without CNI_NETNS exited 0 but left reservations {left:?}"
        ));
    }
    Outcome::pass("DEL without CNI_NETNS succeeded and released the address")
}

pub(crate) async fn env_008(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let conf = t!(lab.conf_for(plugin).await);
    let mut accepted = Vec::new();
    for bad in ["-lead", "has/slash", "has space", "semi;colon", "ümlaut"] {
        let ns = t!(lab.netns().await);
        let exec = lab
            .exec(plugin, &lab.env("ADD", &ns, bad, "eth0"), &conf)
            .await;
        if exec.ok() {
            accepted.push(bad);
            let _ = lab
                .exec(plugin, &lab.env("DEL", &ns, bad, "eth0"), &conf)
                .await;
        }
    }
    let ns = t!(lab.netns().await);
    let good = lab
        .exec(plugin, &lab.env("ADD", &ns, "A1_b.c-D", "eth0"), &conf)
        .await;
    let _ = lab
        .exec(plugin, &lab.env("DEL", &ns, "A1_b.c-D", "eth0"), &conf)
        .await;
    if !accepted.is_empty() {
        return Outcome::fail(format!(
            "container IDs outside [A-Za-z0-9][A-Za-z0-9_.-]* were accepted: {accepted:?} (expected rejection)"
        ));
    }
    t!(expect_success(
        &good,
        "ADD with the valid container ID `A1_b.c-D`"
    ));
    Outcome::pass("invalid container IDs rejected; `A1_b.c-D` accepted")
}

pub(crate) async fn env_009(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let conf = t!(lab.conf_for(plugin).await);
    let mut problems = Vec::new();
    for bad in ["abcdefghijklmnop", "a/b", "a:b", "a b", ".", "..", ""] {
        let ns = t!(lab.netns().await);
        let exec = lab
            .exec(plugin, &lab.env("ADD", &ns, CID, bad), &conf)
            .await;
        let left = t!(only_lo(lab, &ns).await);
        if exec.ok() {
            problems.push(format!("ifname {bad:?} accepted"));
            let _ = lab
                .exec(plugin, &lab.env("DEL", &ns, CID, bad), &conf)
                .await;
        } else if !left.is_empty() {
            problems.push(format!("ifname {bad:?} rejected but left {left:?}"));
        }
    }
    let ns = t!(lab.netns().await);
    let ok = lab
        .exec(plugin, &lab.env("ADD", &ns, CID, "abcdefghijklmno"), &conf)
        .await;
    let present = t!(lab.links(Some(&ns)).await)
        .iter()
        .any(|l| l.name == "abcdefghijklmno");
    if !ok.ok() || !present {
        problems.push(format!(
            "the 15-character ifname was not created ({})",
            ok.describe()
        ));
    }
    if problems.is_empty() {
        Outcome::pass("unusable interface names fail without residue; a 15-character name works")
    } else {
        Outcome::fail(problems.join("; "))
    }
}

pub(crate) async fn env_010(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let conf = t!(lab.conf_for(plugin).await);
    let conf = &conf;
    let run = |args: &'static str| async move {
        let ns = lab.netns().await?;
        let mut env = lab.env("ADD", &ns, CID, "eth0");
        env.args = Some(args.to_owned());
        let exec = lab.exec(plugin, &env, conf).await;
        let _ = lab
            .exec(plugin, &lab.env("DEL", &ns, CID, "eth0"), conf)
            .await;
        Ok::<_, Outcome>(exec)
    };
    let unknown = t!(run("K8S_POD_NAME=x;FOO=bar").await);
    let ignored = t!(run("IgnoreUnknown=1;K8S_POD_NAME=x;FOO=bar").await);
    let malformed = t!(run("garbage-without-equals").await);
    let o = if !unknown.ok() && ignored.ok() && !malformed.ok() {
        Outcome::pass(
            "unknown CNI_ARGS keys rejected unless IgnoreUnknown=1; malformed CNI_ARGS rejected",
        )
    } else {
        Outcome::fail(format!(
            "expected unknown keys rejected, IgnoreUnknown=1 accepted, malformed rejected; got: unknown {}, ignore-unknown {}, malformed {}",
            unknown.describe(),
            ignored.describe(),
            malformed.describe()
        ))
    };
    o.with_property("unknown keys", unknown.describe())
        .with_property("IgnoreUnknown=1", ignored.describe())
}

pub(crate) async fn env_011(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let conf = t!(lab.conf_for(plugin).await);
    let (subnet, _) = lab.subnet(0);
    let want = subnet.replace(".0/24", ".77");
    let mut env = lab.env("ADD", &ns, CID, "eth0");
    env.args = Some(format!("IgnoreUnknown=1;IP={want}"));
    let exec = lab.exec(plugin, &env, &conf).await;
    let result = t!(expect_result(&exec, "ADD with CNI_ARGS IP="));
    let got: Vec<String> = result["ips"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["address"].as_str().map(str::to_owned))
        .collect();
    let addrs = t!(lab.addrs(Some(&ns)).await);
    if got.iter().any(|a| a.starts_with(&format!("{want}/")))
        && addrs
            .iter()
            .any(|(_, a)| a.starts_with(&format!("{want}/")))
    {
        Outcome::pass(format!("requested {want} was assigned and configured"))
    } else {
        Outcome::fail(format!(
            "requested IP={want}; result has {got:?}, netns has {addrs:?}"
        ))
    }
}

// ---- CONF --------------------------------------------------------------------------------

async fn add_with_stdin(
    lab: &Lab<'_>,
    plugin: &str,
    stdin: &[u8],
) -> Result<(Netns, Exec), Outcome> {
    let ns = lab.netns().await?;
    if plugin == "macvlan" {
        lab.macvlan_master().await?;
    }
    let exec = lab
        .exec_raw(plugin, &lab.env("ADD", &ns, CID, "eth0"), stdin)
        .await;
    Ok((ns, exec))
}

pub(crate) async fn conf_001(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let (_, exec) = t!(add_with_stdin(lab, plugin, br#"{"cniVersion": "1.0.0", "name": "#).await);
    t!(expect_error(
        &exec,
        "ADD with truncated JSON",
        Some(6),
        None
    ));
    Outcome::pass("truncated JSON rejected with code 6")
}

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

pub(crate) async fn conf_002(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let conf = without(&ipam_or_plugin_conf(lab, plugin), "name");
    let (_, exec) = t!(add_with_stdin(lab, plugin, conf.to_string().as_bytes()).await);
    t!(expect_error(
        &exec,
        "ADD of a config without `name`",
        Some(7),
        None
    ));
    Outcome::pass("config without name rejected with code 7")
}

pub(crate) async fn conf_003(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let mut accepted = Vec::new();
    for bad in ["bad/name", "-lead", "sp ace"] {
        let mut conf = ipam_or_plugin_conf(lab, plugin);
        conf["name"] = bad.into();
        let (ns, exec) = t!(add_with_stdin(lab, plugin, conf.to_string().as_bytes()).await);
        if exec.ok() || exec.code() != Some(7) {
            accepted.push(format!("{bad:?}: {}", exec.describe()));
            let _ = lab
                .exec(plugin, &lab.env("DEL", &ns, CID, "eth0"), &conf)
                .await;
        }
    }
    if accepted.is_empty() {
        Outcome::pass("invalid network names rejected with code 7")
    } else {
        Outcome::fail(format!(
            "expected code 7 for invalid network names; got {}",
            accepted.join("; ")
        ))
    }
}

pub(crate) async fn conf_004(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let mut conf = t!(lab.conf_for(plugin).await);
    conf["keyA"] = json!(["x", 1]);
    conf["x-vendor"] = json!({"nested": true});
    let (_, exec) = t!(add_with_stdin(lab, plugin, conf.to_string().as_bytes()).await);
    t!(expect_result(&exec, "ADD with unknown vendor keys"));
    Outcome::pass("unknown vendor keys tolerated")
}

pub(crate) async fn conf_005(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let conf = without(&t!(lab.conf_for(plugin).await), "cniVersion");
    let (_, exec) = t!(add_with_stdin(lab, plugin, conf.to_string().as_bytes()).await);
    let result = t!(expect_result(&exec, "ADD without cniVersion"));
    let v = result["cniVersion"]
        .as_str()
        .unwrap_or("missing")
        .to_owned();
    if v == "0.1.0" || v == "0.2.0" {
        Outcome::pass(format!("treated as legacy: result cniVersion {v}"))
            .with_property("result", result)
    } else {
        Outcome::fail(format!(
            "expected a legacy (0.1.0) result; result cniVersion is {v}"
        ))
        .with_property("result", result)
    }
}

pub(crate) async fn conf_006(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let (_, exec) = t!(add_with_stdin(lab, plugin, b"").await);
    t!(expect_error(&exec, "ADD with empty stdin", None, None));
    Outcome::pass(format!(
        "empty stdin rejected (code {})",
        exec.code().unwrap_or(0)
    ))
}

// ---- VER ---------------------------------------------------------------------------------

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

pub(crate) async fn supported_versions(
    lab: &Lab<'_>,
    plugin: &str,
) -> Result<Vec<String>, Outcome> {
    let exec = lab
        .exec(
            plugin,
            &version_env("VERSION"),
            &json!({"cniVersion": "1.0.0"}),
        )
        .await;
    let v = expect_result(&exec, "VERSION")?;
    Ok(v["supportedVersions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect())
}

pub(crate) async fn ver_001(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let exec = lab
        .exec(
            plugin,
            &version_env("VERSION"),
            &json!({"cniVersion": "1.0.0"}),
        )
        .await;
    let v = t!(expect_result(&exec, "VERSION"));
    let problems = validate_version(&v);
    if problems.is_empty() {
        Outcome::pass(format!("supportedVersions {}", v["supportedVersions"]))
            .with_property("version", v)
    } else {
        Outcome::fail(format!(
            "VERSION output does not match the schema: {}",
            problems.join("; ")
        ))
    }
}

pub(crate) async fn ver_002(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let mut wrong = Vec::new();
    for input in ["0.4.0", "0.3.1"] {
        let exec = lab
            .exec(
                plugin,
                &version_env("VERSION"),
                &json!({"cniVersion": input}),
            )
            .await;
        let v = t!(expect_result(&exec, "VERSION"));
        if v["cniVersion"] != input {
            wrong.push(format!(
                "input {input} -> output cniVersion {}",
                v["cniVersion"]
            ));
        }
    }
    if wrong.is_empty() {
        Outcome::pass("VERSION echoes the input cniVersion")
    } else {
        Outcome::fail(format!(
            "expected the input version echoed: {}",
            wrong.join("; ")
        ))
    }
}

pub(crate) async fn ver_003(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let exec = lab.exec_raw(plugin, &version_env("VERSION"), b"").await;
    let v = t!(expect_result(&exec, "VERSION with empty stdin"));
    let problems = validate_version(&v);
    if problems.is_empty() {
        Outcome::pass("VERSION works with only CNI_COMMAND and empty stdin")
    } else {
        Outcome::fail(problems.join("; "))
    }
}

pub(crate) async fn ver_004(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let supported = t!(supported_versions(lab, plugin).await);
    let mut problems = Vec::new();
    for v in ["1.1.0", "2.0.0"]
        .into_iter()
        .filter(|v| !supported.iter().any(|s| s == v))
    {
        let ns = t!(lab.netns().await);
        let mut conf = ipam_or_plugin_conf(lab, plugin);
        if plugin == "macvlan" {
            t!(lab.macvlan_master().await);
        }
        conf["cniVersion"] = v.into();
        let exec = lab
            .exec(plugin, &lab.env("ADD", &ns, CID, "eth0"), &conf)
            .await;
        if let Err(o) = expect_error(
            &exec,
            &format!("ADD at unsupported version {v}"),
            Some(1),
            None,
        ) {
            problems.push(o.message);
        }
        let left = t!(only_lo(lab, &ns).await);
        if !left.is_empty() {
            problems.push(format!("ADD at {v} left {left:?}"));
        }
    }
    if problems.is_empty() {
        Outcome::pass("unsupported versions rejected with code 1, nothing created")
    } else {
        Outcome::fail(problems.join("; "))
    }
}

pub(crate) async fn ver_005(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let supported = t!(supported_versions(lab, plugin).await);
    let mut problems = Vec::new();
    let mut tried = Vec::new();
    for v in ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]
        .into_iter()
        .filter(|v| supported.iter().any(|s| s == v))
    {
        tried.push(v);
        let ns = t!(lab.netns().await);
        let mut conf = t!(lab.conf_for(plugin).await);
        conf["cniVersion"] = v.into();
        let exec = lab
            .exec(plugin, &lab.env("ADD", &ns, CID, "eth0"), &conf)
            .await;
        match expect_result(&exec, &format!("ADD at {v}")) {
            Ok(r) => {
                for p in validate_result(&r, v, Some(&ns.path)) {
                    problems.push(format!("{v}: {p}"));
                }
                let _ = lab
                    .exec(
                        plugin,
                        &lab.env("DEL", &ns, CID, "eth0"),
                        &with_prev(&conf, &r),
                    )
                    .await;
            }
            Err(o) => problems.push(o.message),
        }
    }
    if problems.is_empty() {
        Outcome::pass(format!(
            "results match the schema of each version: {}",
            tried.join(", ")
        ))
    } else {
        Outcome::fail(problems.join("; "))
    }
}

pub(crate) async fn ver_006(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let mut conf = t!(lab.conf_for(plugin).await);
    conf["cniVersion"] = "0.3.1".into();
    let add = lab
        .exec(plugin, &lab.env("ADD", &ns, CID, "eth0"), &conf)
        .await;
    let r = t!(expect_result(&add, "ADD at 0.3.1"));
    let check = lab
        .exec(
            plugin,
            &lab.env("CHECK", &ns, CID, "eth0"),
            &with_prev(&conf, &r),
        )
        .await;
    t!(expect_error(&check, "CHECK at 0.3.1", Some(1), None));
    Outcome::pass("CHECK below 0.4.0 rejected with code 1")
}

pub(crate) async fn ver_007(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let supported = t!(supported_versions(lab, plugin).await);
    let Some(old) = ["0.3.1", "0.3.0", "0.2.0", "0.1.0"]
        .into_iter()
        .find(|v| !supported.iter().any(|s| s == v))
    else {
        return crate::catalog::not_applicable(
            "the plugin supports every older version, so there is none to reject",
        );
    };
    let ns = t!(lab.netns().await);
    let conf = json!({"cniVersion": old, "name": "nfvnet-old", "type": plugin,
        "prevResult": {"cniVersion": old, "interfaces": [{"name": "eth0", "sandbox": ns.path}],
                       "ips": [{"version": "4", "interface": 0, "address": "198.18.30.2/24"}]}});
    let exec = lab
        .exec(plugin, &lab.env("ADD", &ns, CID, "eth0"), &conf)
        .await;
    t!(expect_error(
        &exec,
        &format!("ADD at {old}, which VERSION does not list"),
        Some(1),
        None
    ));
    Outcome::pass(format!(
        "version {old} (not in supportedVersions) rejected with code 1"
    ))
}

pub(crate) async fn ver_008(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let supported = t!(supported_versions(lab, plugin).await);
    let has_11 = supported.iter().any(|s| s == "1.1.0");
    let mut seen = Vec::new();
    let mut problems = Vec::new();
    for cmd in ["GC", "STATUS"] {
        let conf = json!({"cniVersion": if has_11 { "1.1.0" } else { "1.0.0" }, "name": "nfvnet-gc", "type": plugin,
                          "cni.dev/attachments": [], "cni.dev/valid-attachments": []});
        let exec = lab.exec(plugin, &version_env(cmd), &conf).await;
        seen.push(exec.describe());
        let fine = if has_11 {
            exec.ok()
        } else {
            !exec.ok() && exec.json().is_some()
        };
        if !fine {
            problems.push(format!(
                "{cmd}: expected {}; got {}",
                if has_11 {
                    "success (the plugin lists 1.1.0)"
                } else {
                    "a JSON error (the plugin does not list 1.1.0)"
                },
                exec.describe()
            ));
        }
    }
    let o = if problems.is_empty() {
        Outcome::pass(format!(
            "GC/STATUS answered consistently with supportedVersions: {}",
            seen.join("; ")
        ))
    } else {
        Outcome::fail(problems.join("; "))
    };
    o.with_property("supports 1.1.0", has_11)
}

// ---- ADD ---------------------------------------------------------------------------------

pub(crate) async fn add_001(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let conf = t!(lab.conf_for(plugin).await);
    let exec = lab
        .exec(plugin, &lab.env("ADD", &ns, CID, "eth0"), &conf)
        .await;
    if let Stdout::Garbage(what) = &exec.stdout {
        return Outcome::fail(format!(
            "ADD stdout must be exactly one JSON result; it is {what}"
        ));
    }
    let r = t!(expect_result(&exec, "ADD"));
    let problems = validate_result(&r, &lab.version, Some(&ns.path));
    if problems.is_empty() {
        Outcome::pass(format!("one JSON result, valid for {}", lab.version))
            .with_property("result", r)
    } else {
        Outcome::fail(format!(
            "the result violates the {} schema: {}",
            lab.version,
            problems.join("; ")
        ))
        .with_property("result", r)
    }
}

/// Compares a result with the container namespace: the interface, MAC, UP state, addresses,
/// routes. Returns the problems found.
async fn kernel_agrees(
    lab: &Lab<'_>,
    r: &Value,
    ns: &Netns,
    ifname: &str,
) -> Result<Vec<String>, Outcome> {
    let mut p = Vec::new();
    let links = lab.links(Some(ns)).await?;
    let Some(link) = links.iter().find(|l| l.name == ifname) else {
        return Ok(vec![format!(
            "{ifname} does not exist in the netns (links: {:?})",
            links.iter().map(|l| &l.name).collect::<Vec<_>>()
        )]);
    };
    if !link.up {
        p.push(format!("{ifname} is not UP"));
    }
    let interfaces = r["interfaces"].as_array().cloned().unwrap_or_default();
    let idx = interfaces
        .iter()
        .position(|i| i["name"] == ifname && i["sandbox"].as_str() == Some(ns.path.as_str()));
    match idx {
        None => p.push(format!(
            "the result lists no interface {ifname} with sandbox {}",
            ns.path
        )),
        Some(i) => {
            if let Some(mac) = interfaces[i]["mac"].as_str()
                && !mac.eq_ignore_ascii_case(&link.mac)
            {
                p.push(format!("result MAC {mac} but the kernel has {}", link.mac));
            }
            for ip in r["ips"].as_array().into_iter().flatten() {
                if ip["interface"].as_u64() != Some(i as u64) {
                    p.push(format!(
                        "ips entry {} does not point at {ifname} (index {i})",
                        ip["address"]
                    ));
                }
            }
        }
    }
    let addrs = lab.addrs(Some(ns)).await?;
    for ip in r["ips"].as_array().into_iter().flatten() {
        let a = ip["address"].as_str().unwrap_or_default();
        if !addrs.iter().any(|(n, x)| n == ifname && x == a) {
            p.push(format!("address {a} is not configured on {ifname}"));
        }
    }
    let routes = lab.routes(Some(ns)).await?;
    for route in r["routes"].as_array().into_iter().flatten() {
        let dst = route["dst"].as_str().unwrap_or_default();
        if !routes
            .iter()
            .any(|e| crate::netstate::route_matches(e, dst))
        {
            p.push(format!("route to {dst} is not installed"));
        }
    }
    Ok(p)
}

pub(crate) async fn add_002(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    let p = t!(kernel_agrees(lab, &a.result, &a.ns, "eth0").await);
    if p.is_empty() {
        Outcome::pass(
            "the netns matches the result: interface UP with the result's MAC, addresses and routes",
        )
    } else {
        Outcome::fail(p.join("; ")).with_property("result", a.result)
    }
}

pub(crate) async fn add_003(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    let mut p = Vec::new();
    let ifs = a.result["interfaces"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let host: Vec<&Value> = ifs
        .iter()
        .filter(|i| i["sandbox"].as_str().is_none_or(str::is_empty))
        .collect();
    let host_links = t!(lab.links(None).await);
    let bridge = host_links.iter().find(|l| l.name == "nfvbr0");
    if bridge.is_none() {
        p.push("bridge nfvbr0 does not exist on the host".to_owned());
    }
    let veth = host.iter().find_map(|i| {
        host_links
            .iter()
            .find(|l| i["name"] == l.name.as_str() && l.kind.as_deref() == Some("veth"))
    });
    let container = t!(lab.links(Some(&a.ns)).await)
        .into_iter()
        .find(|l| l.name == "eth0");
    match (veth, container) {
        (Some(v), Some(c)) => {
            if v.master.as_deref() != Some("nfvbr0") {
                p.push(format!(
                    "host veth {} is not enslaved to nfvbr0 (master {:?})",
                    v.name, v.master
                ));
            }
            if c.link_index != Some(v.index) {
                p.push(format!(
                    "container eth0 peer index {:?} is not host veth {} ({})",
                    c.link_index, v.name, v.index
                ));
            }
        }
        _ => p.push("the result lists no host veth that exists on the host".to_owned()),
    }
    let addrs = t!(lab.addrs(None).await);
    let (_, gw) = lab.subnet(0);
    if !addrs
        .iter()
        .any(|(n, x)| n == "nfvbr0" && x.starts_with(&format!("{gw}/")))
    {
        p.push(format!("isGateway is set but nfvbr0 does not hold {gw}"));
    }
    if p.is_empty() {
        Outcome::pass(
            "host side: bridge and veth without sandbox, veth enslaved and peered, gateway on the bridge",
        )
    } else {
        Outcome::fail(p.join("; ")).with_property("result", a.result)
    }
}

pub(crate) async fn add_004(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    t!(lab
        .run_ok(
            "ip",
            &[
                "-n", &ns.name, "link", "add", "eth0", "type", "veth", "peer", "name", "nfvpeer"
            ]
        )
        .await);
    let before = t!(lab.links(Some(&ns)).await)
        .into_iter()
        .find(|l| l.name == "eth0")
        .map(|l| l.mac);
    let host_before = t!(lab.links(None).await).len();
    let conf = t!(lab.conf_for(plugin).await);
    let host_before = if plugin == "macvlan" {
        t!(lab.links(None).await).len()
    } else {
        host_before
    };
    let exec = lab
        .exec(plugin, &lab.env("ADD", &ns, CID, "eth0"), &conf)
        .await;
    let mut p = Vec::new();
    if exec.ok() {
        p.push(format!(
            "expected an error because eth0 exists; got {}",
            exec.describe()
        ));
    }
    let after = t!(lab.links(Some(&ns)).await)
        .into_iter()
        .find(|l| l.name == "eth0")
        .map(|l| l.mac);
    if after != before {
        p.push(format!(
            "the existing eth0 changed: MAC {before:?} -> {after:?}"
        ));
    }
    let host_after = t!(lab.links(None).await);
    let extra = host_after.len().saturating_sub(host_before);
    let stray: Vec<&str> = host_after
        .iter()
        .filter(|l| l.kind.as_deref() == Some("veth") && l.name != "nfvmm0" && l.name != "nfvmm1")
        .map(|l| l.name.as_str())
        .collect();
    if !stray.is_empty() {
        p.push(format!("host veths left behind: {stray:?}"));
    }
    let reserved = lab.reservations(&net_name(&conf));
    if !reserved.is_empty() {
        p.push(format!("IPAM reservations left: {reserved:?}"));
    }
    if p.is_empty() {
        Outcome::pass(format!(
            "rejected ({}); existing eth0 untouched; no residue",
            exec.msg()
        ))
        .with_metric("new_host_links", extra as f64, "count")
    } else {
        Outcome::fail(p.join("; "))
    }
}

pub(crate) async fn add_007(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let mut conf = t!(lab.conf_for(plugin).await);
    let mac = "0e:00:00:00:30:01";
    conf["runtimeConfig"] = json!({"mac": mac});
    let exec = lab
        .exec(plugin, &lab.env("ADD", &ns, CID, "eth0"), &conf)
        .await;
    let r = t!(expect_result(&exec, "ADD with runtimeConfig.mac"));
    let kernel = t!(lab.links(Some(&ns)).await)
        .into_iter()
        .find(|l| l.name == "eth0")
        .map(|l| l.mac)
        .unwrap_or_default();
    let reported = r["interfaces"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["name"] == "eth0")
        .and_then(|i| i["mac"].as_str())
        .unwrap_or("")
        .to_owned();
    if kernel == mac && reported == mac {
        Outcome::pass(format!("container MAC set to {mac} and reported"))
    } else {
        Outcome::fail(format!(
            "expected MAC {mac}; the kernel has {kernel}, the result reports {reported:?}"
        ))
    }
}

pub(crate) async fn add_008(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let conf = t!(lab.conf_for(plugin).await);
    let r0 = t!(expect_result(
        &lab.exec(plugin, &lab.env("ADD", &ns, CID, "eth0"), &conf)
            .await,
        "ADD eth0"
    ));
    let r1 = t!(expect_result(
        &lab.exec(plugin, &lab.env("ADD", &ns, CID, "net1"), &conf)
            .await,
        "ADD net1"
    ));
    let ip = |r: &Value| {
        r["ips"][0]["address"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    if ip(&r0) == ip(&r1) {
        return Outcome::fail(format!("eth0 and net1 got the same address {}", ip(&r0)));
    }
    t!(expect_success(
        &lab.exec(
            plugin,
            &lab.env("DEL", &ns, CID, "eth0"),
            &with_prev(&conf, &r0)
        )
        .await,
        "DEL eth0"
    ));
    let links = t!(lab.links(Some(&ns)).await);
    let addrs = t!(lab.addrs(Some(&ns)).await);
    if links.iter().any(|l| l.name == "eth0")
        || !links.iter().any(|l| l.name == "net1")
        || !addrs.iter().any(|(n, a)| n == "net1" && *a == ip(&r1))
    {
        return Outcome::fail(
            "after DEL of eth0, expected eth0 gone and net1 intact with its address".to_owned(),
        )
        .with_property(
            "links",
            links
                .iter()
                .map(|l| l.name.clone())
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    Outcome::pass(format!(
        "eth0 {} and net1 {} coexisted; DEL eth0 left net1 intact",
        ip(&r0),
        ip(&r1)
    ))
}

pub(crate) async fn add_009(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let mut conf = t!(lab.conf_for(plugin).await);
    conf["mtu"] = 1400.into();
    let r = t!(expect_result(
        &lab.exec(plugin, &lab.env("ADD", &ns, CID, "eth0"), &conf)
            .await,
        "ADD with mtu 1400"
    ));
    let c = t!(lab.links(Some(&ns)).await)
        .into_iter()
        .find(|l| l.name == "eth0")
        .map(|l| l.mtu);
    let host_veth = r["interfaces"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["sandbox"].is_null())
        .filter_map(|i| i["name"].as_str())
        .map(str::to_owned)
        .collect::<Vec<_>>();
    let hl = t!(lab.links(None).await);
    let h = hl
        .iter()
        .find(|l| host_veth.contains(&l.name) && l.kind.as_deref() == Some("veth"))
        .map(|l| l.mtu);
    if c == Some(1400) && h == Some(1400) {
        Outcome::pass("mtu 1400 applied to the container interface and the host veth")
    } else {
        Outcome::fail(format!(
            "expected MTU 1400 on both ends; container {c:?}, host veth {h:?}"
        ))
    }
}

pub(crate) async fn add_010(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let conf = t!(lab.conf_for(plugin).await);
    let before = t!(lab.links(None).await).len();
    let ghost = Netns {
        name: "nfvdoesnotexist".into(),
        path: "/run/netns/nfvdoesnotexist".into(),
    };
    let exec = lab
        .exec(plugin, &lab.env("ADD", &ghost, CID, "eth0"), &conf)
        .await;
    t!(expect_error(
        &exec,
        "ADD with a CNI_NETNS that does not exist",
        None,
        None
    ));
    let after = t!(lab.links(None).await);
    let reserved = lab.reservations(&net_name(&conf));
    let stray: Vec<String> = after
        .iter()
        .filter(|l| l.kind.as_deref() == Some("veth") && !l.name.starts_with("nfvmm"))
        .map(|l| l.name.clone())
        .collect();
    if !stray.is_empty() || !reserved.is_empty() {
        return Outcome::fail(format!(
            "the failed ADD left host veths {stray:?} and reservations {reserved:?}"
        ))
        .with_metric("host_links_before", before as f64, "count");
    }
    Outcome::pass(format!("rejected ({}), no host residue", exec.msg()))
}

pub(crate) async fn add_011(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    let mut p = t!(kernel_agrees(lab, &a.result, &a.ns, "eth0").await);
    let link = t!(lab.links(Some(&a.ns)).await)
        .into_iter()
        .find(|l| l.name == "eth0");
    let master = t!(lab.links(None).await)
        .into_iter()
        .find(|l| l.name == "nfvmm0");
    match (link, master) {
        (Some(l), Some(m)) => {
            if l.kind.as_deref() != Some("macvlan") {
                p.push(format!("eth0 is {:?}, not macvlan", l.kind));
            }
            if l.mode.as_deref() != Some("bridge") {
                p.push(format!("macvlan mode is {:?}, configured bridge", l.mode));
            }
            if l.link_index != Some(m.index) {
                p.push(format!(
                    "lower device index {:?} is not the master nfvmm0 ({})",
                    l.link_index, m.index
                ));
            }
        }
        _ => p.push("eth0 or the master nfvmm0 is missing".to_owned()),
    }
    let n = a.result["interfaces"].as_array().map_or(0, Vec::len);
    if n != 1 {
        p.push(format!(
            "the result lists {n} interfaces, expected exactly 1"
        ));
    }
    if p.is_empty() {
        Outcome::pass("eth0 is a bridge-mode macvlan of nfvmm0 matching the result")
    } else {
        Outcome::fail(p.join("; "))
    }
}

pub(crate) async fn add_012(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    let mut p = t!(kernel_agrees(lab, &a.result, &a.ns, "eth0").await);
    let ip = a.result["ips"][0]["address"]
        .as_str()
        .unwrap_or_default()
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let host_veth = a.result["interfaces"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["sandbox"].is_null())
        .and_then(|i| i["name"].as_str())
        .unwrap_or_default()
        .to_owned();
    let routes = t!(lab.routes(None).await);
    if !routes
        .iter()
        .any(|r| r.dst == ip && r.dev.as_deref() == Some(host_veth.as_str()))
    {
        p.push(format!("no host /32 route to {ip} via {host_veth}"));
    }
    t!(expect_success(
        &lab.exec(
            plugin,
            &lab.env("DEL", &a.ns, CID, "eth0"),
            &with_prev(&a.conf, &a.result)
        )
        .await,
        "DEL"
    ));
    let after = t!(lab.routes(None).await);
    if after.iter().any(|r| r.dst == ip)
        || t!(lab.links(None).await)
            .iter()
            .any(|l| l.name == host_veth)
    {
        p.push(format!(
            "after DEL the host veth {host_veth} or the route to {ip} remains"
        ));
    }
    if p.is_empty() {
        Outcome::pass(format!(
            "veth pair with host route {ip}/32 via {host_veth}; gone after DEL"
        ))
    } else {
        Outcome::fail(p.join("; "))
    }
}

pub(crate) async fn add_013(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let conf = lab.loopback_conf();
    let exec = lab
        .exec(plugin, &lab.env("ADD", &ns, CID, "eth7"), &conf)
        .await;
    let r = t!(expect_result(&exec, "loopback ADD"));
    let mut p = Vec::new();
    let lo = t!(lab.links(Some(&ns)).await)
        .into_iter()
        .find(|l| l.name == "lo");
    if !lo.is_some_and(|l| l.up) {
        p.push("lo is not UP".to_owned());
    }
    let lists_lo = r["interfaces"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|i| i["name"] == "lo" && i["sandbox"].as_str() == Some(ns.path.as_str()));
    if !lists_lo {
        p.push("the result does not list lo with the sandbox".to_owned());
    }
    if !r["ips"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|i| i["address"] == "127.0.0.1/8")
    {
        p.push("the result does not list 127.0.0.1/8".to_owned());
    }
    if p.is_empty() {
        Outcome::pass("lo UP; result lists lo with the sandbox and 127.0.0.1/8")
            .with_property("result", r)
    } else {
        Outcome::fail(p.join("; ")).with_property("result", r)
    }
}

pub(crate) async fn add_015(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let mut conf = t!(lab.conf_for(plugin).await);
    conf["ipMasq"] = true.into();
    let r = t!(expect_result(
        &lab.exec(plugin, &lab.env("ADD", &ns, CID, "eth0"), &conf)
            .await,
        "ADD with ipMasq"
    ));
    let ip = r["ips"][0]["address"]
        .as_str()
        .unwrap_or_default()
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let rt = lab.rt.clone();
    let nat_args = ["netns", "exec", rt.as_str(), "iptables-save", "-t", "nat"];
    let before = t!(lab.run_ok("ip", &nat_args).await);
    let has_chain = before
        .lines()
        .any(|l| l.contains(&ip) && l.contains("CNI-"));
    t!(expect_success(
        &lab.exec(
            plugin,
            &lab.env("DEL", &ns, CID, "eth0"),
            &with_prev(&conf, &r)
        )
        .await,
        "DEL"
    ));
    let after = t!(lab.run_ok("ip", &nat_args).await);
    let left = after.lines().filter(|l| l.contains(&ip)).count();
    if has_chain && left == 0 {
        Outcome::pass(format!(
            "a CNI- masquerade chain for {ip} was installed and removed on DEL"
        ))
    } else {
        Outcome::fail(format!(
            "expected a CNI- masquerade rule for {ip} after ADD and none after DEL; installed: {has_chain}, rules left after DEL: {left}"
        ))
    }
}

// ---- IPAM --------------------------------------------------------------------------------

fn ipam_conf(lab: &Lab<'_>, plugin: &str, k: u32) -> Value {
    match plugin {
        "static" => json!({"cniVersion": lab.version, "name": "nfvnet-static",
            "ipam": {"type": "static", "addresses": [{"address": lab.subnet(k).0.replace(".0/24", ".9/24")}],
                     "routes": [{"dst": "0.0.0.0/0"}], "dns": {"nameservers": ["198.18.39.53"]}}}),
        _ => json!({"cniVersion": lab.version, "name": "nfvnet-ipam", "ipam": lab.host_local(k)}),
    }
}

pub(crate) async fn ipam_001(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let conf = ipam_conf(lab, plugin, 3);
    let r = t!(expect_result(
        &lab.exec(plugin, &lab.env("ADD", &ns, CID, "eth0"), &conf)
            .await,
        "IPAM ADD"
    ));
    let p = validate_ipam_result(&r, &lab.version);
    if p.is_empty() {
        Outcome::pass("abbreviated result: ips without interface, no interfaces")
            .with_property("result", r)
    } else {
        Outcome::fail(p.join("; ")).with_property("result", r)
    }
}

pub(crate) async fn ipam_002(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let conf = ipam_conf(lab, plugin, 3);
    let r = t!(expect_result(
        &lab.exec(plugin, &lab.env("ADD", &ns, "nfvi2", "eth3"), &conf)
            .await,
        "host-local ADD"
    ));
    let ip = r["ips"][0]["address"]
        .as_str()
        .unwrap_or_default()
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let res = lab.reservations("nfvnet-ipam");
    let Some((_, content)) = res.iter().find(|(a, _)| *a == ip) else {
        return Outcome::fail(format!("no reservation file for {ip}; files: {res:?}"));
    };
    if !(content.contains("nfvi2") && content.contains("eth3")) {
        return Outcome::fail(format!(
            "the reservation for {ip} holds {content:?}, expected the container ID and ifname"
        ));
    }
    t!(expect_success(
        &lab.exec(plugin, &lab.env("DEL", &ns, "nfvi2", "eth3"), &conf)
            .await,
        "host-local DEL"
    ));
    if lab
        .reservations("nfvnet-ipam")
        .iter()
        .any(|(a, _)| *a == ip)
    {
        return Outcome::fail(format!("DEL left the reservation for {ip}"));
    }
    Outcome::pass(format!(
        "reservation {ip} recorded container ID and ifname; removed on DEL"
    ))
}

pub(crate) async fn ipam_004(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let (subnet, _) = lab.subnet(3);
    let tiny = subnet.replace(".0/24", ".16/30");
    let gw = subnet.replace(".0/24", ".17");
    let conf = json!({"cniVersion": lab.version, "name": "nfvnet-tiny",
        "ipam": {"type": "host-local", "subnet": tiny, "gateway": gw, "dataDir": lab.ipam_dir()}});
    let ns = t!(lab.netns().await);
    let a = lab
        .exec(plugin, &lab.env("ADD", &ns, "nfva", "eth0"), &conf)
        .await;
    let b = lab
        .exec(plugin, &lab.env("ADD", &ns, "nfvb", "eth0"), &conf)
        .await;
    let mut p = Vec::new();
    if !a.ok() {
        p.push(format!(
            "the first ADD in {tiny} should succeed: {}",
            a.describe()
        ));
    }
    if b.ok() || b.json().is_none() {
        p.push(format!(
            "ADD in the exhausted range should fail with a JSON error: {}",
            b.describe()
        ));
    }
    let before = lab.reservations("nfvnet-tiny");
    if before.len() != 1 {
        p.push(format!(
            "expected one reservation after exhaustion, found {before:?}"
        ));
    }
    let _ = lab
        .exec(plugin, &lab.env("DEL", &ns, "nfva", "eth0"), &conf)
        .await;
    let c = lab
        .exec(plugin, &lab.env("ADD", &ns, "nfvc", "eth0"), &conf)
        .await;
    if !c.ok() {
        p.push(format!(
            "after releasing one address ADD should succeed: {}",
            c.describe()
        ));
    }
    if p.is_empty() {
        Outcome::pass(format!(
            "{tiny} exhausted with a JSON error ({}); freed address reused",
            b.msg()
        ))
    } else {
        Outcome::fail(p.join("; "))
    }
}

pub(crate) async fn ipam_005(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let conf = ipam_conf(lab, plugin, 3);
    let mut p = Vec::new();
    let never = lab
        .exec(plugin, &lab.env("DEL", &ns, "nfvnever", "eth0"), &conf)
        .await;
    if !never.ok() {
        p.push(format!(
            "DEL of a never-allocated container: {}",
            never.describe()
        ));
    }
    let _ = lab
        .exec(plugin, &lab.env("ADD", &ns, CID, "eth0"), &conf)
        .await;
    for i in 1..=2 {
        let d = lab
            .exec(plugin, &lab.env("DEL", &ns, CID, "eth0"), &conf)
            .await;
        if !d.ok() {
            p.push(format!("DEL #{i}: {}", d.describe()));
        }
    }
    let mut env = lab.env("DEL", &ns, CID, "eth0");
    env.netns = None;
    let d = lab.exec(plugin, &env, &conf).await;
    if !d.ok() {
        p.push(format!("DEL without CNI_NETNS: {}", d.describe()));
    }
    if p.is_empty() {
        Outcome::pass(
            "DEL of a never-allocated address, repeated DEL and DEL without netns all succeed",
        )
    } else {
        Outcome::fail(format!("expected every DEL to succeed: {}", p.join("; ")))
    }
}

pub(crate) async fn ipam_006(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let conf = ipam_conf(lab, plugin, 4);
    let adds = (0..40).map(|i| {
        let (conf, ns) = (&conf, &ns);
        async move {
            lab.exec(
                plugin,
                &lab.env("ADD", ns, &format!("nfvconc{i}"), "eth0"),
                conf,
            )
            .await
        }
    });
    let results = join_all(adds).await;
    let failed: Vec<String> = results
        .iter()
        .filter(|e| !e.ok())
        .map(Exec::describe)
        .collect();
    let ips: BTreeSet<String> = results
        .iter()
        .filter_map(|e| e.json()?["ips"][0]["address"].as_str().map(str::to_owned))
        .collect();
    let dels = (0..40).map(|i| {
        let (conf, ns) = (&conf, &ns);
        async move {
            lab.exec(
                plugin,
                &lab.env("DEL", ns, &format!("nfvconc{i}"), "eth0"),
                conf,
            )
            .await
        }
    });
    let del_failed = join_all(dels).await.iter().filter(|e| !e.ok()).count();
    let left = lab.reservations("nfvnet-ipam");
    if failed.is_empty() && ips.len() == 40 && del_failed == 0 && left.is_empty() {
        Outcome::pass(
            "40 concurrent ADDs got 40 distinct addresses; 40 concurrent DELs released all",
        )
    } else {
        Outcome::fail(format!(
            "expected 40 distinct addresses and a clean release; {} ADDs failed ({}), {} distinct addresses, {del_failed} DELs failed, {} reservations left",
            failed.len(),
            failed.first().cloned().unwrap_or_default(),
            ips.len(),
            left.len()
        ))
    }
}

pub(crate) async fn ipam_007(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let conf = ipam_conf(lab, plugin, 3);
    let r = t!(expect_result(
        &lab.exec(plugin, &lab.env("ADD", &ns, CID, "eth0"), &conf)
            .await,
        "ADD"
    ));
    let live = lab
        .exec(
            plugin,
            &lab.env("CHECK", &ns, CID, "eth0"),
            &with_prev(&conf, &r),
        )
        .await;
    let _ = lab
        .exec(plugin, &lab.env("DEL", &ns, CID, "eth0"), &conf)
        .await;
    let gone = lab
        .exec(
            plugin,
            &lab.env("CHECK", &ns, CID, "eth0"),
            &with_prev(&conf, &r),
        )
        .await;
    if live.ok() && !gone.ok() {
        Outcome::pass("CHECK passes for a live reservation and fails once it is released")
    } else {
        Outcome::fail(format!(
            "expected CHECK to pass while reserved and fail after DEL; live: {}, after DEL: {}",
            live.describe(),
            gone.describe()
        ))
    }
}

pub(crate) async fn ipam_008(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    let name = net_name(&a.conf);
    let before = lab.reservations(&name);
    if before.is_empty() {
        return Outcome::fail("ADD succeeded but no host-local reservation exists");
    }
    t!(expect_success(
        &lab.exec(
            plugin,
            &lab.env("DEL", &a.ns, CID, "eth0"),
            &with_prev(&a.conf, &a.result)
        )
        .await,
        "DEL"
    ));
    let after = lab.reservations(&name);
    if after.is_empty() {
        Outcome::pass(format!("DEL released {}", before[0].0))
    } else {
        Outcome::fail(format!("DEL left reservations {after:?}"))
    }
}

pub(crate) async fn ipam_009(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let conf = ipam_conf(lab, plugin, 3);
    let first = t!(expect_result(
        &lab.exec(plugin, &lab.env("ADD", &ns, CID, "eth0"), &conf)
            .await,
        "first ADD"
    ));
    let second = lab
        .exec(plugin, &lab.env("ADD", &ns, CID, "eth0"), &conf)
        .await;
    let res = lab.reservations("nfvnet-ipam");
    let ip = first["ips"][0]["address"]
        .as_str()
        .unwrap_or_default()
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    if !second.ok() && res.len() == 1 && res[0].0 == ip {
        Outcome::pass(format!(
            "second ADD refused ({}); first reservation {ip} kept",
            second.msg()
        ))
    } else {
        Outcome::fail(format!(
            "expected the second ADD refused and only {ip} reserved; got {} and reservations {res:?}",
            second.describe()
        ))
    }
}

// ---- DEL ---------------------------------------------------------------------------------

pub(crate) async fn del_001(lab: &Lab<'_>, plugin: &str) -> Outcome {
    t!(lab.conf_for(plugin).await);
    let snapshot = t!(lab.host_snapshot().await);
    let a = t!(attach(lab, plugin).await);
    let host_ifs: Vec<String> = a.result["interfaces"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["sandbox"].is_null() && i["name"] != "nfvbr0")
        .filter_map(|i| i["name"].as_str().map(str::to_owned))
        .collect();
    let exec = lab
        .exec(
            plugin,
            &lab.env("DEL", &a.ns, CID, "eth0"),
            &with_prev(&a.conf, &a.result),
        )
        .await;
    let mut p = Vec::new();
    if !exec.ok() {
        p.push(format!("DEL: {}", exec.describe()));
    }
    if exec.stdout != Stdout::Empty {
        p.push(format!(
            "DEL printed on stdout: {}",
            exec.stdout_text.trim()
        ));
    }
    let left = t!(only_lo(lab, &a.ns).await);
    if !left.is_empty() {
        p.push(format!("the netns still has {left:?}"));
    }
    let host = t!(lab.links(None).await);
    let stale: Vec<&String> = host_ifs
        .iter()
        .filter(|n| host.iter().any(|l| &l.name == *n))
        .collect();
    if !stale.is_empty() {
        p.push(format!("host interfaces from the result remain: {stale:?}"));
    }
    if uses_ipam(plugin) && !lab.reservations(&net_name(&a.conf)).is_empty() {
        p.push("the address is still reserved".to_owned());
    }
    // The runtime namespace is back to its state before ADD, except for the bridge itself,
    // which the bridge plugin creates on first use and deliberately keeps.
    let after = t!(lab.host_snapshot().await);
    let added: Vec<&String> = after
        .iter()
        .filter(|l| !snapshot.contains(l) && l.as_str() != "link nfvbr0")
        .collect();
    let removed: Vec<&String> = snapshot.iter().filter(|l| !after.contains(l)).collect();
    if !added.is_empty() || !removed.is_empty() {
        p.push(format!(
            "host state differs after DEL: added {added:?}, removed {removed:?}"
        ));
    }
    if p.is_empty() {
        Outcome::pass(
            "DEL: exit 0, empty stdout, interfaces gone, address released, host links, iptables and qdiscs as before",
        )
    } else {
        Outcome::fail(p.join("; "))
    }
}

pub(crate) async fn del_002(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    let conf = with_prev(&a.conf, &a.result);
    for i in 1..=3 {
        let exec = lab
            .exec(plugin, &lab.env("DEL", &a.ns, CID, "eth0"), &conf)
            .await;
        if !exec.ok() {
            return fail_expected(&format!("DEL #{i} of the same attachment"), "exit 0", &exec);
        }
    }
    Outcome::pass("three DELs of the same attachment all exited 0")
}

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

pub(crate) async fn del_003(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let conf = match plugin {
        "bridge" | "macvlan" | "ptp" | "loopback" => t!(lab.conf_for(plugin).await),
        _ => meta_conf(lab, plugin),
    };
    let exec = lab
        .exec(plugin, &lab.env("DEL", &ns, "nfvunknown", "eth0"), &conf)
        .await;
    t!(expect_success(
        &exec,
        "DEL of an attachment that was never added"
    ));
    Outcome::pass("DEL of a never-added attachment exited 0")
}

pub(crate) async fn del_004(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    t!(lab.delete_netns(&a.ns).await);
    let exec = lab
        .exec(
            plugin,
            &lab.env("DEL", &a.ns, CID, "eth0"),
            &with_prev(&a.conf, &a.result),
        )
        .await;
    t!(expect_success(&exec, "DEL after the netns was deleted"));
    if uses_ipam(plugin) && !lab.reservations(&net_name(&a.conf)).is_empty() {
        return Outcome::fail(
            "DEL after the netns was deleted exited 0 but did not release the address",
        );
    }
    Outcome::pass("DEL with a stale CNI_NETNS exited 0 and released the address")
}

pub(crate) async fn del_005(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    t!(lab
        .run_ok("ip", &["-n", &lab.rt, "link", "del", "nfvmm0"])
        .await);
    let exec = lab
        .exec(
            plugin,
            &lab.env("DEL", &a.ns, CID, "eth0"),
            &with_prev(&a.conf, &a.result),
        )
        .await;
    t!(expect_success(
        &exec,
        "macvlan DEL after its master disappeared"
    ));
    Outcome::pass("DEL succeeded after the master was deleted")
}

pub(crate) async fn del_006(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    let exec = lab
        .exec(plugin, &lab.env("DEL", &a.ns, CID, "eth0"), &a.conf)
        .await;
    t!(expect_success(&exec, "DEL without prevResult"));
    let left = t!(only_lo(lab, &a.ns).await);
    let res = lab.reservations(&net_name(&a.conf));
    if !left.is_empty() || !res.is_empty() {
        return Outcome::fail(format!(
            "DEL without prevResult exited 0 but left {left:?} and reservations {res:?}"
        ));
    }
    Outcome::pass("DEL without prevResult exited 0 and cleaned up")
}

pub(crate) async fn del_008(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    let exec = lab
        .exec(
            plugin,
            &lab.env("DEL", &a.ns, CID, "eth0"),
            &with_prev(&a.conf, &a.result),
        )
        .await;
    t!(expect_success(&exec, "DEL"));
    if exec.stdout == Stdout::Empty {
        Outcome::pass("successful DEL printed nothing")
    } else {
        Outcome::fail(format!(
            "successful DEL printed {}",
            exec.stdout_text.trim()
        ))
    }
}

pub(crate) async fn del_009(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    let env = lab.env("DEL", &a.ns, CID, "eth0").without_path();
    let exec = lab.exec(plugin, &env, &with_prev(&a.conf, &a.result)).await;
    t!(expect_success(
        &exec,
        "DEL without CNI_PATH for a live attachment"
    ));
    let res = lab.reservations(&net_name(&a.conf));
    if uses_ipam(plugin) && !res.is_empty() {
        return Outcome::fail(format!(
            "DEL without CNI_PATH exited 0 but the IPAM reservation {res:?} was not released"
        ));
    }
    Outcome::pass("DEL without CNI_PATH succeeded")
}

// ---- CHECK -------------------------------------------------------------------------------

async fn check_after(lab: &Lab<'_>, plugin: &str, a: &Attached) -> Exec {
    lab.exec(
        plugin,
        &lab.env("CHECK", &a.ns, CID, "eth0"),
        &with_prev(&a.conf, &a.result),
    )
    .await
}

pub(crate) async fn chk_001(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    let exec = check_after(lab, plugin, &a).await;
    if exec.ok() && exec.stdout == Stdout::Empty {
        Outcome::pass("CHECK right after ADD: exit 0, no output")
    } else {
        fail_expected("CHECK right after ADD", "exit 0 and empty stdout", &exec)
    }
}

pub(crate) async fn chk_002(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    let exec = lab
        .exec(plugin, &lab.env("CHECK", &a.ns, CID, "eth0"), &a.conf)
        .await;
    if exec.ok() {
        fail_expected(
            "CHECK without prevResult",
            "an error (nothing to verify against)",
            &exec,
        )
    } else {
        Outcome::pass(format!("refused: {}", exec.msg()))
    }
}

async fn check_detects(
    lab: &Lab<'_>,
    plugin: &str,
    what: &str,
    perturb: impl AsyncFnOnce(&Attached) -> Result<(), Outcome>,
) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    let before = check_after(lab, plugin, &a).await;
    if !before.ok() {
        return Outcome::error(format!(
            "CHECK already fails before {what}, so the assertion cannot be judged: {}",
            before.describe()
        ));
    }
    t!(perturb(&a).await);
    let exec = check_after(lab, plugin, &a).await;
    if exec.ok() {
        fail_expected(&format!("CHECK after {what}"), "an error", &exec)
    } else {
        Outcome::pass(format!("CHECK noticed {what}: {}", exec.msg()))
    }
}

pub(crate) async fn chk_003(lab: &Lab<'_>, plugin: &str) -> Outcome {
    check_detects(
        lab,
        plugin,
        "the container address was removed",
        async |a: &Attached| {
            let ip = a.result["ips"][0]["address"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            lab.run_ok("ip", &["-n", &a.ns.name, "addr", "del", &ip, "dev", "eth0"])
                .await
                .map(|_| ())
        },
    )
    .await
}

pub(crate) async fn chk_004(lab: &Lab<'_>, plugin: &str) -> Outcome {
    check_detects(
        lab,
        plugin,
        "the default route was removed",
        async |a: &Attached| {
            lab.run_ok("ip", &["-n", &a.ns.name, "route", "del", "default"])
                .await
                .map(|_| ())
        },
    )
    .await
}

pub(crate) async fn chk_005(lab: &Lab<'_>, plugin: &str) -> Outcome {
    check_detects(
        lab,
        plugin,
        "the container interface was deleted",
        async |a: &Attached| {
            lab.run_ok("ip", &["-n", &a.ns.name, "link", "del", "eth0"])
                .await
                .map(|_| ())
        },
    )
    .await
}

pub(crate) async fn chk_006(lab: &Lab<'_>, plugin: &str) -> Outcome {
    check_detects(
        lab,
        plugin,
        "the host veth was detached from the bridge",
        async |a: &Attached| {
            let veth = a.result["interfaces"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|i| i["sandbox"].is_null() && i["name"] != "nfvbr0")
                .and_then(|i| i["name"].as_str())
                .unwrap_or_default()
                .to_owned();
            lab.run_ok("ip", &["-n", &lab.rt, "link", "set", &veth, "nomaster"])
                .await
                .map(|_| ())
        },
    )
    .await
}

pub(crate) async fn chk_007(lab: &Lab<'_>, plugin: &str) -> Outcome {
    check_detects(
        lab,
        plugin,
        "the IPAM reservation was removed",
        async |a: &Attached| {
            for (ip, _) in lab.reservations(&net_name(&a.conf)) {
                std::fs::remove_file(lab.dir.join("ipam").join(net_name(&a.conf)).join(ip))
                    .map_err(|e| Outcome::error(e.to_string()))?;
            }
            Ok(())
        },
    )
    .await
}

pub(crate) async fn chk_008(lab: &Lab<'_>, plugin: &str) -> Outcome {
    check_detects(
        lab,
        plugin,
        "the container MAC was changed",
        async |a: &Attached| {
            lab.run_ok(
                "ip",
                &[
                    "-n",
                    &a.ns.name,
                    "link",
                    "set",
                    "eth0",
                    "address",
                    "0e:00:00:00:3f:3f",
                ],
            )
            .await
            .map(|_| ())
        },
    )
    .await
}

pub(crate) async fn chk_009(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let conf = without(&t!(lab.conf_for(plugin).await), "ipam");
    let r = t!(expect_result(
        &lab.exec(plugin, &lab.env("ADD", &ns, CID, "eth0"), &conf)
            .await,
        "L2-only ADD"
    ));
    let exec = lab
        .exec(
            plugin,
            &lab.env("CHECK", &ns, CID, "eth0"),
            &with_prev(&conf, &r),
        )
        .await;
    if exec.ok() {
        Outcome::pass("CHECK after an L2-only ADD exited 0")
    } else {
        fail_expected("CHECK after an L2-only ADD", "exit 0", &exec)
    }
}

pub(crate) async fn chk_011(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    let mut accepted = Vec::new();
    let mut altered = a.result.clone();
    if let Some(ifs) = altered["interfaces"].as_array_mut() {
        for i in ifs.iter_mut().filter(|i| i["sandbox"].is_string()) {
            i["sandbox"] = "/run/netns/nfvelsewhere".into();
        }
    }
    let cases = [
        (
            "prevResult sandbox altered",
            lab.env("CHECK", &a.ns, CID, "eth0"),
            with_prev(&a.conf, &altered),
        ),
        (
            "CNI_IFNAME=eth9",
            lab.env("CHECK", &a.ns, CID, "eth9"),
            with_prev(&a.conf, &a.result),
        ),
        (
            "another CNI_CONTAINERID",
            lab.env("CHECK", &a.ns, "nfvother", "eth0"),
            with_prev(&a.conf, &a.result),
        ),
    ];
    for (what, env, conf) in cases {
        let exec = lab.exec(plugin, &env, &conf).await;
        if exec.ok() {
            accepted.push(what);
        }
    }
    if accepted.is_empty() {
        Outcome::pass("CHECK with parameters that do not match the attachment failed every time")
    } else {
        Outcome::fail(format!(
            "expected CHECK to fail, but it passed for: {}",
            accepted.join(", ")
        ))
    }
}

// ---- ERR ---------------------------------------------------------------------------------

/// A fixed set of invocations that must fail (bad command, missing variables, malformed
/// config, unsupported version, unusable netns), plus successful ones.
async fn error_corpus(lab: &Lab<'_>, plugin: &str) -> Result<Vec<Exec>, Outcome> {
    let ns = lab.netns().await?;
    let conf = match plugin {
        "host-local" | "static" => ipam_conf(lab, plugin, 3),
        "bridge" | "macvlan" | "ptp" | "loopback" => lab.conf_for(plugin).await?,
        _ => meta_conf(lab, plugin),
    };
    let mut out = Vec::new();
    out.push(
        lab.exec(plugin, &lab.env("FROB", &ns, CID, "eth0"), &conf)
            .await,
    );
    let mut env = lab.env("ADD", &ns, CID, "eth0");
    env.container_id = None;
    out.push(lab.exec(plugin, &env, &conf).await);
    out.push(
        lab.exec_raw(
            plugin,
            &lab.env("ADD", &ns, CID, "eth0"),
            b"{\"cniVersion\":",
        )
        .await,
    );
    let mut v = conf.clone();
    v["cniVersion"] = "9.9.9".into();
    out.push(
        lab.exec(plugin, &lab.env("ADD", &ns, CID, "eth0"), &v)
            .await,
    );
    let ghost = Netns {
        name: "nfvghost".into(),
        path: "/run/netns/nfvghost".into(),
    };
    out.push(
        lab.exec(plugin, &lab.env("ADD", &ghost, CID, "eth0"), &conf)
            .await,
    );
    out.push(
        lab.exec(
            plugin,
            &version_env("VERSION"),
            &json!({"cniVersion": "1.0.0"}),
        )
        .await,
    );
    out.push(
        lab.exec(plugin, &lab.env("DEL", &ns, "nfvnever", "eth0"), &conf)
            .await,
    );
    Ok(out)
}

pub(crate) async fn err_001(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let corpus = t!(error_corpus(lab, plugin).await);
    let bad: Vec<String> = corpus
        .iter()
        .filter(|e| {
            let is_error_obj = e.json().is_some_and(|v| v.get("code").is_some());
            (!e.ok() && !is_error_obj) || (e.ok() && is_error_obj)
        })
        .map(Exec::describe)
        .collect();
    if bad.is_empty() {
        Outcome::pass(format!(
            "{} invocations: every failure exited non-zero with a JSON error on stdout",
            corpus.len()
        ))
    } else {
        Outcome::fail(format!(
            "expected non-zero exit with a JSON error object on stdout for failures only: {}",
            bad.join("; ")
        ))
    }
}

pub(crate) async fn err_002(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let corpus = t!(error_corpus(lab, plugin).await);
    let mut p = Vec::new();
    for e in corpus.iter().filter(|e| !e.ok()) {
        if let Some(v) = e.json() {
            let mut issues = validate_error(v);
            if v.get("cniVersion").is_none() {
                issues.push("no cniVersion".to_owned());
            }
            if !issues.is_empty() {
                p.push(format!("{} {}: {}", e.command, v, issues.join(", ")));
            }
        }
    }
    if p.is_empty() {
        Outcome::pass("every error object carries cniVersion, an integer code and msg")
    } else {
        Outcome::fail(format!(
            "error objects lacking required keys: {}",
            p.join("; ")
        ))
    }
}

pub(crate) async fn err_003(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let corpus = t!(error_corpus(lab, plugin).await);
    let mut histogram = std::collections::BTreeMap::new();
    let mut p = Vec::new();
    for e in corpus.iter().filter(|e| !e.ok()) {
        if let Some(code) = e.code() {
            *histogram.entry(code).or_insert(0u32) += 1;
            if code < 100 && well_known_code(code).is_none() {
                p.push(format!(
                    "code {code} is in the reserved range 1-99 but has no well-known meaning ({})",
                    e.msg()
                ));
            }
        }
    }
    let hist = histogram
        .iter()
        .map(|(c, n)| format!("{c}:{n}"))
        .collect::<Vec<_>>()
        .join(" ");
    let o = if p.is_empty() {
        Outcome::pass(format!("codes seen: {hist}"))
    } else {
        Outcome::fail(p.join("; "))
    };
    o.with_property("code histogram", hist)
}

pub(crate) async fn err_004(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let corpus = t!(error_corpus(lab, plugin).await);
    let bad: Vec<String> = corpus
        .iter()
        .filter(|e| matches!(e.stdout, Stdout::Garbage(_)))
        .map(Exec::describe)
        .collect();
    if bad.is_empty() {
        Outcome::pass(format!(
            "{} invocations: stdout was empty or one JSON document each time",
            corpus.len()
        ))
    } else {
        Outcome::fail(bad.join("; "))
    }
}

// ---- CONC --------------------------------------------------------------------------------

pub(crate) async fn conc_001(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let conf = t!(lab.conf_for(plugin).await);
    let mut spaces = Vec::new();
    for _ in 0..16 {
        spaces.push(t!(lab.netns().await));
    }
    let adds = spaces.iter().enumerate().map(|(i, ns)| {
        let conf = &conf;
        async move {
            lab.exec(
                plugin,
                &lab.env("ADD", ns, &format!("nfvconc{i}"), "eth0"),
                conf,
            )
            .await
        }
    });
    let results = join_all(adds).await;
    let failed: Vec<String> = results
        .iter()
        .filter(|e| !e.ok())
        .map(Exec::describe)
        .collect();
    let ips: BTreeSet<String> = results
        .iter()
        .filter_map(|e| e.json()?["ips"][0]["address"].as_str().map(str::to_owned))
        .collect();
    let dels = spaces.iter().enumerate().zip(&results).map(|((i, ns), r)| {
        let conf = r
            .json()
            .map_or_else(|| conf.clone(), |r| with_prev(&conf, r));
        async move {
            lab.exec(
                plugin,
                &lab.env("DEL", ns, &format!("nfvconc{i}"), "eth0"),
                &conf,
            )
            .await
        }
    });
    let del_failed = join_all(dels).await.iter().filter(|e| !e.ok()).count();
    let left = lab.reservations(&net_name(&conf));
    if failed.is_empty() && ips.len() == 16 && del_failed == 0 && left.is_empty() {
        Outcome::pass(
            "16 concurrent ADDs succeeded with 16 distinct addresses; 16 concurrent DELs cleaned up",
        )
    } else {
        Outcome::fail(format!(
            "expected 16 successes with distinct addresses and a clean release; {} ADDs failed ({}), {} distinct addresses, {del_failed} DELs failed, {} reservations left",
            failed.len(),
            failed.first().cloned().unwrap_or_default(),
            ips.len(),
            left.len()
        ))
    }
}

/// Runs futures concurrently on the current task (plugin execs are I/O-bound subprocesses).
async fn join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = (0..futures.len()).map(|_| None).collect();
    let mut pending: Vec<(usize, std::pin::Pin<Box<F>>)> =
        futures.into_iter().enumerate().collect();
    std::future::poll_fn(|cx| {
        pending.retain_mut(|(i, f)| match f.as_mut().poll(cx) {
            std::task::Poll::Ready(v) => {
                outputs[*i] = Some(v);
                false
            }
            std::task::Poll::Pending => true,
        });
        if pending.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|o| o.expect("every future completed"))
        .collect()
}

/// CHECK with the ADD result, then DEL twice (a repeated DEL must succeed as well); `between`
/// looks at the host after the first DEL. Returns the problems found and what `between` saw.
async fn check_then_delete_twice<T>(
    lab: &Lab<'_>,
    plugin: &str,
    ns: &Netns,
    conf: &Value,
    between: impl AsyncFnOnce() -> Result<T, Outcome>,
) -> Result<(Vec<String>, T), Outcome> {
    let mut p = Vec::new();
    let check = lab
        .exec(plugin, &lab.env("CHECK", ns, CID, "eth0"), conf)
        .await;
    if !check.ok() {
        p.push(format!("CHECK: {}", check.describe()));
    }
    let d1 = lab
        .exec(plugin, &lab.env("DEL", ns, CID, "eth0"), conf)
        .await;
    let seen = between().await?;
    let d2 = lab
        .exec(plugin, &lab.env("DEL", ns, CID, "eth0"), conf)
        .await;
    if !d1.ok() || !d2.ok() {
        p.push(format!(
            "DEL: {}; second DEL: {}",
            d1.describe(),
            d2.describe()
        ));
    }
    Ok((p, seen))
}

// ---- CHAIN -------------------------------------------------------------------------------

use crate::runtime::{Attachment, Runtime};

/// The CHAIN fixture: bridge -> tuning -> portmap -> firewall -> bandwidth, with the
/// capability arguments a kubelet would offer.
fn chain_list(lab: &Lab<'_>) -> (Value, Value) {
    let mut ipam = lab.host_local(4);
    ipam.as_object_mut().expect("object").remove("routes");
    let list = json!({
        "cniVersion": lab.version, "name": "nfvchain",
        "plugins": [
            {"type": "bridge", "bridge": "nfvbr1", "isGateway": true, "isDefaultGateway": true, "ipam": ipam},
            {"type": "tuning", "capabilities": {"mac": true}, "sysctl": {"net.ipv4.conf.IFNAME.arp_notify": "1"}},
            {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true},
            {"type": "firewall", "backend": "iptables"},
            {"type": "bandwidth", "capabilities": {"bandwidth": true}}
        ]
    });
    let caps = json!({
        "mac": "0e:00:00:00:34:42",
        "portMappings": [
            {"hostPort": 18080, "containerPort": 80, "protocol": "tcp"},
            {"hostPort": 18053, "containerPort": 53, "protocol": "udp"}
        ],
        "bandwidth": {"ingressRate": 8_000_000, "ingressBurst": 800_000, "egressRate": 4_000_000, "egressBurst": 400_000},
        "unknownCapability": {"ignored": true}
    });
    (list, caps)
}

async fn chain_attachment(lab: &Lab<'_>, caps: Value) -> Result<Attachment, Outcome> {
    Ok(Attachment {
        container_id: CID.to_owned(),
        ns: lab.netns().await?,
        ifname: "eth0".to_owned(),
        capability_args: caps,
    })
}

fn names(r: &Value) -> Vec<String> {
    r["interfaces"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["name"].as_str().map(str::to_owned))
        .collect()
}

pub(crate) async fn chain_001(lab: &Lab<'_>, _plugin: &str) -> Outcome {
    let (list, caps) = chain_list(lab);
    let att = t!(chain_attachment(lab, caps).await);
    let rt = Runtime::new(lab);
    let (last, steps) = match rt.add(&list, &att).await {
        Ok(v) => v,
        Err(e) => {
            return Outcome::fail(format!(
                "chain ADD: expected every plugin to succeed; {}",
                e.describe()
            ));
        }
    };
    // The harness is the runtime here: its requests must follow CNI-RT-003, or the verdict on
    // the plugins means nothing.
    for s in &steps {
        let declared_mac = s.request["type"] == "tuning";
        let rc = &s.request["runtimeConfig"];
        if s.request.get("capabilities").is_some()
            || s.request["cniVersion"] != lab.version.as_str()
            || s.request["name"] != "nfvchain"
            || rc.get("unknownCapability").is_some()
            || (declared_mac != rc.get("mac").is_some())
        {
            return Outcome::error(format!(
                "the harness built a request that breaks CNI-RT-003: {}",
                s.request
            ));
        }
    }
    let mut p = Vec::new();
    for s in &steps {
        let r = s.exec.json().cloned().unwrap_or_default();
        for problem in validate_result(&r, &lab.version, Some(&att.ns.path)) {
            p.push(format!("{}: {problem}", s.exec.plugin));
        }
    }
    let first = steps[0].exec.json().cloned().unwrap_or_default();
    if first["ips"] != last["ips"] || first["routes"] != last["routes"] {
        p.push("ips or routes changed between the bridge result and the final result".to_owned());
    }
    let (n0, n1) = (names(&first), names(&last));
    if !n0.iter().all(|n| n1.contains(n)) {
        p.push(format!(
            "interfaces of the bridge result were dropped: {n0:?} -> {n1:?}"
        ));
    }
    let added: Vec<&String> = n1.iter().filter(|n| !n0.contains(n)).collect();
    if added.len() != 1 {
        p.push(format!(
            "expected exactly one added interface (bandwidth's ifb), found {added:?}"
        ));
    }
    let mac = last["interfaces"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["name"] == "eth0")
        .and_then(|i| i["mac"].as_str())
        .unwrap_or("");
    if mac != "0e:00:00:00:34:42" {
        p.push(format!(
            "the final result's eth0 MAC is {mac:?}, tuning set 0e:00:00:00:34:42"
        ));
    }
    let _ = rt.del(&list, &att).await;
    if p.is_empty() {
        Outcome::pass(format!(
            "5-plugin chain: every step valid; final result adds {added:?} and tuning's MAC"
        ))
        .with_property("final result", last)
    } else {
        Outcome::fail(p.join("; "))
    }
}

async fn bridge_then(lab: &Lab<'_>, ns: &Netns, version: &str) -> Result<(Value, Value), Outcome> {
    bridge_then_as(lab, ns, version, CID).await
}

async fn bridge_then_as(
    lab: &Lab<'_>,
    ns: &Netns,
    version: &str,
    cid: &str,
) -> Result<(Value, Value), Outcome> {
    let mut conf = lab.bridge_conf();
    conf["cniVersion"] = version.into();
    let r = expect_result(
        &lab.exec("bridge", &lab.env("ADD", ns, cid, "eth0"), &conf)
            .await,
        "bridge ADD",
    )?;
    Ok((conf, r))
}

fn noop_conf(lab: &Lab<'_>, plugin: &str) -> Value {
    let mut c = meta_conf(lab, plugin);
    c["name"] = "nfvnet-br".into();
    c
}

pub(crate) async fn chain_002(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let (_, prev) = t!(bridge_then(lab, &ns, &lab.version).await);
    let conf = with_prev(&noop_conf(lab, plugin), &prev);
    let out = t!(expect_result(
        &lab.exec(plugin, &lab.env("ADD", &ns, CID, "eth0"), &conf)
            .await,
        &format!("{plugin} ADD with prevResult")
    ));
    let _ = lab
        .exec(plugin, &lab.env("DEL", &ns, CID, "eth0"), &conf)
        .await;
    if out == prev {
        Outcome::pass("the result equals prevResult")
    } else {
        Outcome::fail(format!(
            "expected prevResult echoed unchanged; got {out}, prevResult {prev}"
        ))
    }
}

pub(crate) async fn chain_003(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let (_, prev) = t!(bridge_then(lab, &ns, &lab.version).await);
    let before = t!(lab.links(Some(&ns)).await)
        .into_iter()
        .find(|l| l.name == "eth0");
    let mac = "0e:00:00:00:34:43";
    let conf = json!({"cniVersion": lab.version, "name": "nfvnet-br", "type": plugin, "mtu": 1300, "promisc": true,
                      "runtimeConfig": {"mac": mac}, "prevResult": prev});
    let out = t!(expect_result(
        &lab.exec(plugin, &lab.env("ADD", &ns, CID, "eth0"), &conf)
            .await,
        "tuning ADD"
    ));
    let during = t!(lab.links(Some(&ns)).await)
        .into_iter()
        .find(|l| l.name == "eth0");
    let reported = out["interfaces"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["name"] == "eth0")
        .and_then(|i| i["mac"].as_str())
        .unwrap_or("")
        .to_owned();
    let check = lab
        .exec(
            plugin,
            &lab.env("CHECK", &ns, CID, "eth0"),
            &with_prev(&conf, &out),
        )
        .await;
    let del = lab
        .exec(
            plugin,
            &lab.env("DEL", &ns, CID, "eth0"),
            &with_prev(&conf, &out),
        )
        .await;
    let after = t!(lab.links(Some(&ns)).await)
        .into_iter()
        .find(|l| l.name == "eth0");
    let mut p = Vec::new();
    if during.as_ref().map(|l| l.mac.as_str()) != Some(mac) || reported != mac {
        p.push(format!(
            "expected MAC {mac} in the kernel and the result; kernel {:?}, result {reported:?}",
            during.as_ref().map(|l| &l.mac)
        ));
    }
    if during.as_ref().map(|l| l.mtu) != Some(1300) {
        p.push(format!(
            "MTU is {:?}, tuning set 1300",
            during.as_ref().map(|l| l.mtu)
        ));
    }
    if !check.ok() {
        p.push(format!("CHECK: {}", check.describe()));
    }
    if !del.ok() {
        p.push(format!("DEL: {}", del.describe()));
    }
    if after.as_ref().map(|l| &l.mac) != before.as_ref().map(|l| &l.mac)
        || after.as_ref().map(|l| l.mtu) != before.as_ref().map(|l| l.mtu)
    {
        p.push(format!(
            "DEL did not restore eth0: MAC {:?} -> {:?}, MTU {:?} -> {:?}",
            before.as_ref().map(|l| &l.mac),
            after.as_ref().map(|l| &l.mac),
            before.as_ref().map(|l| l.mtu),
            after.as_ref().map(|l| l.mtu)
        ));
    }
    if p.is_empty() {
        Outcome::pass(format!(
            "tuning set MAC {mac} and MTU 1300, CHECK passed, DEL restored both"
        ))
    } else {
        Outcome::fail(p.join("; "))
    }
}

async fn sysctl_in(lab: &Lab<'_>, ns: &str, key: &str) -> String {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    lab.run_ok("ip", &["netns", "exec", ns, "cat", &path])
        .await
        .unwrap_or_default()
        .trim()
        .to_owned()
}

pub(crate) async fn chain_004(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let (_, prev) = t!(bridge_then(lab, &ns, &lab.version).await);
    let rt_all_before = sysctl_in(lab, &lab.rt, "net.ipv4.conf.all.arp_ignore").await;
    let conf = json!({"cniVersion": lab.version, "name": "nfvnet-br", "type": plugin, "prevResult": prev,
                      "sysctl": {"net.ipv4.conf.IFNAME.arp_ignore": "2", "net.ipv4.conf.all.arp_ignore": "1"}});
    let add = lab
        .exec(plugin, &lab.env("ADD", &ns, CID, "eth0"), &conf)
        .await;
    let mut p = Vec::new();
    if !add.ok() {
        p.push(format!("tuning ADD: {}", add.describe()));
    }
    let eth0 = sysctl_in(lab, &ns.name, "net.ipv4.conf.eth0.arp_ignore").await;
    let all = sysctl_in(lab, &ns.name, "net.ipv4.conf.all.arp_ignore").await;
    let rt_all = sysctl_in(lab, &lab.rt, "net.ipv4.conf.all.arp_ignore").await;
    if eth0 != "2" || all != "1" {
        p.push(format!(
            "inside the netns eth0 arp_ignore = {eth0:?} (want 2), all = {all:?} (want 1)"
        ));
    }
    if rt_all != rt_all_before {
        p.push(format!(
            "the runtime namespace's all.arp_ignore changed {rt_all_before:?} -> {rt_all:?}"
        ));
    }
    let bad = json!({"cniVersion": lab.version, "name": "nfvnet-br", "type": plugin, "prevResult": prev, "sysctl": {"kernel.hostname": "nfvpwned"}});
    let ns2 = ns.clone();
    let refused = lab
        .exec(plugin, &lab.env("ADD", &ns2, CID, "eth0"), &bad)
        .await;
    if refused.ok() {
        p.push("a non-net sysctl (kernel.hostname) was accepted".to_owned());
    }
    if p.is_empty() {
        Outcome::pass(
            "IFNAME substituted; sysctls applied in the container netns only; kernel.hostname refused",
        )
    } else {
        Outcome::fail(p.join("; "))
    }
}

async fn iptables(lab: &Lab<'_>, table: &str) -> Result<String, Outcome> {
    lab.run_ok(
        "ip",
        &["netns", "exec", &lab.rt, "iptables-save", "-t", table],
    )
    .await
}

fn container_ip(r: &Value) -> String {
    r["ips"][0]["address"]
        .as_str()
        .unwrap_or_default()
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}

pub(crate) async fn chain_005(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let (_, prev) = t!(bridge_then(lab, &ns, &lab.version).await);
    let ip = container_ip(&prev);
    let conf = json!({"cniVersion": lab.version, "name": "nfvnet-br", "type": plugin, "snat": true, "prevResult": prev,
        "runtimeConfig": {"portMappings": [{"hostPort": 18080, "containerPort": 80, "protocol": "tcp"}, {"hostPort": 18053, "containerPort": 53, "protocol": "udp"}]}});
    let out = t!(expect_result(
        &lab.exec(plugin, &lab.env("ADD", &ns, CID, "eth0"), &conf)
            .await,
        "portmap ADD"
    ));
    let nat = t!(iptables(lab, "nat").await);
    let mut p = Vec::new();
    for (port, to) in [("18080", format!("{ip}:80")), ("18053", format!("{ip}:53"))] {
        if !nat.lines().any(|l| {
            l.contains("DNAT") && l.contains(&format!("--dport {port}")) && l.contains(&to)
        }) {
            p.push(format!("no DNAT rule for port {port} to {to}"));
        }
    }
    let (problems, after) =
        t!(
            check_then_delete_twice(lab, plugin, &ns, &with_prev(&conf, &out), async || {
                iptables(lab, "nat").await
            })
            .await
        );
    p.extend(problems);
    if after.lines().any(|l| l.contains("DNAT") && l.contains(&ip)) {
        p.push("DNAT rules remain after DEL".to_owned());
    }
    if p.is_empty() {
        Outcome::pass(format!(
            "DNAT 18080->{ip}:80 and 18053->{ip}:53 installed, CHECK passed, DEL removed them, second DEL ok"
        ))
    } else {
        Outcome::fail(p.join("; "))
    }
}

pub(crate) async fn chain_006(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let conf = meta_conf(lab, plugin);
    let exec = lab
        .exec(plugin, &lab.env("ADD", &ns, CID, "eth0"), &conf)
        .await;
    let clean_error = !exec.ok() && exec.json().is_some_and(|v| validate_error(v).is_empty());
    let pass_through = exec.ok()
        && exec
            .json()
            .is_some_and(|v| validate_result(v, &lab.version, None).is_empty());
    if clean_error || pass_through {
        Outcome::pass(if clean_error {
            format!("failed cleanly: {}", exec.msg())
        } else {
            "passed through a valid result".to_owned()
        })
    } else {
        fail_expected(
            &format!("{plugin} as the first plugin"),
            "a JSON error or a valid pass-through result",
            &exec,
        )
    }
}

pub(crate) async fn chain_007(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let (_, prev) = t!(bridge_then(lab, &ns, &lab.version).await);
    let ip = container_ip(&prev);
    let conf = json!({"cniVersion": lab.version, "name": "nfvnet-br", "type": plugin, "backend": "iptables", "prevResult": prev});
    let out = t!(expect_result(
        &lab.exec(plugin, &lab.env("ADD", &ns, CID, "eth0"), &conf)
            .await,
        "firewall ADD"
    ));
    let filter = t!(iptables(lab, "filter").await);
    let mut p = Vec::new();
    if !filter
        .lines()
        .any(|l| l.contains("CNI-") && l.contains(&ip))
    {
        p.push(format!("no CNI-FORWARD rule mentions {ip}"));
    }
    let (problems, after) =
        t!(
            check_then_delete_twice(lab, plugin, &ns, &with_prev(&conf, &out), async || {
                iptables(lab, "filter").await
            })
            .await
        );
    p.extend(problems);
    if after.lines().any(|l| l.contains(&ip)) {
        p.push(format!("rules for {ip} remain after DEL"));
    }
    if p.is_empty() {
        Outcome::pass(format!(
            "CNI-FORWARD rules for {ip} installed, checked and removed; DEL twice ok"
        ))
    } else {
        Outcome::fail(p.join("; "))
    }
}

pub(crate) async fn chain_008(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let (_, prev) = t!(bridge_then(lab, &ns, &lab.version).await);
    let conf = json!({"cniVersion": lab.version, "name": "nfvnet-br", "type": plugin, "prevResult": prev,
        "runtimeConfig": {"bandwidth": {"ingressRate": 8_000_000, "ingressBurst": 800_000, "egressRate": 4_000_000, "egressBurst": 400_000}}});
    let out = t!(expect_result(
        &lab.exec(plugin, &lab.env("ADD", &ns, CID, "eth0"), &conf)
            .await,
        "bandwidth ADD"
    ));
    let qdiscs = t!(lab
        .run_ok("ip", &["netns", "exec", &lab.rt, "tc", "qdisc", "show"])
        .await);
    let added: Vec<String> = names(&out)
        .into_iter()
        .filter(|n| !names(&prev).contains(n))
        .collect();
    let mut p = Vec::new();
    if !qdiscs.contains("tbf") {
        p.push("no tbf qdisc in the runtime namespace".to_owned());
    }
    let links = t!(lab.links(None).await);
    let ifb = added.iter().find(|n| {
        links
            .iter()
            .any(|l| &&l.name == n && l.kind.as_deref() == Some("ifb"))
    });
    if ifb.is_none() {
        p.push(format!(
            "no ifb device added to the result and present on the host (added: {added:?})"
        ));
    }
    let (problems, after) =
        t!(
            check_then_delete_twice(lab, plugin, &ns, &with_prev(&conf, &out), async || lab
                .links(None)
                .await)
            .await
        );
    p.extend(problems);
    if let Some(ifb) = ifb
        && after.iter().any(|l| &l.name == ifb)
    {
        p.push(format!("ifb {ifb} remains after DEL"));
    }
    if p.is_empty() {
        Outcome::pass(format!(
            "tbf on the host veth, ifb {} in the result, removed on DEL; DEL twice ok",
            ifb.map_or("", |s| s)
        ))
        .with_property("qdiscs", qdiscs)
    } else {
        Outcome::fail(p.join("; ")).with_property("qdiscs", qdiscs)
    }
}

pub(crate) async fn chain_009(lab: &Lab<'_>, _plugin: &str) -> Outcome {
    let (list, caps) = chain_list(lab);
    let att = t!(chain_attachment(lab, caps).await);
    let rt = Runtime::new(lab);
    let before = t!(lab.host_snapshot().await);
    let first_result = match rt.add(&list, &att).await {
        Ok((_, steps)) => steps[0].exec.json().cloned().unwrap_or_default(),
        Err(e) => return Outcome::fail(format!("chain ADD: {}", e.describe())),
    };
    let mut p = Vec::new();
    if let Err(e) = rt.check(&list, &att).await {
        p.push(format!("chain CHECK (list order): {}", e.describe()));
    }
    if let Err(e) = rt.del(&list, &att).await {
        p.push(format!("chain DEL (reverse order): {}", e.describe()));
    }
    let after = t!(lab.host_snapshot().await);
    // Anything left that names the attachment (its address, container ID or host interfaces)
    // is a leak. Shared infrastructure the plugins create on first use and keep for the next
    // container (the bridge, the CNI-FORWARD and CNI-HOSTPORT-* base chains) is recorded but
    // allowed, like the bridge itself.
    let ip = container_ip(&first_result);
    let mut markers: Vec<String> = names(&first_result)
        .into_iter()
        .filter(|n| n != "eth0" && n != "nfvbr1")
        .collect();
    markers.push(CID.to_owned());
    markers.push(ip.clone());
    let added: Vec<&String> = after.iter().filter(|l| !before.contains(l)).collect();
    let leaked: Vec<&&String> = added
        .iter()
        .filter(|l| {
            markers
                .iter()
                .any(|m| !m.is_empty() && l.contains(m.as_str()))
        })
        .collect();
    let removed: Vec<&String> = before.iter().filter(|l| !after.contains(l)).collect();
    if !leaked.is_empty() || !removed.is_empty() {
        p.push(format!(
            "host state of the attachment survived DEL: {leaked:?}; removed: {removed:?}"
        ));
    }
    let shared: Vec<&&String> = added.iter().filter(|l| !leaked.contains(l)).collect();
    let res = lab.reservations("nfvchain");
    if !res.is_empty() {
        p.push(format!("IPAM reservations left: {res:?}"));
    }
    let left = t!(only_lo(lab, &att.ns).await);
    if !left.is_empty() {
        p.push(format!("container netns still has {left:?}"));
    }
    if rt.cached(&list, &att).is_some() {
        p.push("the runtime's cached result survived a successful DEL".to_owned());
    }
    let o = if p.is_empty() {
        Outcome::pass(
            "chain CHECK passed; reverse DEL removed every rule, qdisc, link and reservation of the attachment",
        )
    } else {
        Outcome::fail(p.join("; "))
    };
    o.with_property(
        "shared infrastructure kept after DEL",
        format!("{shared:?}"),
    )
}

pub(crate) async fn chain_010(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let (_, prev) = t!(bridge_then(lab, &ns, "0.4.0").await);
    let mut conf = noop_conf(lab, plugin);
    conf["cniVersion"] = "0.4.0".into();
    let out = t!(expect_result(
        &lab.exec(
            plugin,
            &lab.env("ADD", &ns, CID, "eth0"),
            &with_prev(&conf, &prev)
        )
        .await,
        "ADD at 0.4.0 with a 0.4.0 prevResult"
    ));
    let p = validate_result(&out, "0.4.0", Some(&ns.path));
    let _ = lab
        .exec(
            plugin,
            &lab.env("DEL", &ns, CID, "eth0"),
            &with_prev(&conf, &out),
        )
        .await;
    if p.is_empty() {
        Outcome::pass("the 0.4.0 chain got a 0.4.0-shaped result (ips[].version present)")
    } else {
        Outcome::fail(format!("expected a 0.4.0 result: {}", p.join("; ")))
    }
}

pub(crate) async fn chain_011(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let (_, prev) = t!(bridge_then(lab, &ns, &lab.version).await);
    let mut conf = with_prev(&noop_conf(lab, plugin), &prev);
    conf["capabilities"] = json!({"mac": true, "portMappings": true});
    let rc = conf
        .get("runtimeConfig")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut rc = rc;
    rc["nfvUnknownKey"] = json!({"x": 1});
    conf["runtimeConfig"] = rc;
    let exec = lab
        .exec(plugin, &lab.env("ADD", &ns, CID, "eth0"), &conf)
        .await;
    let _ = lab
        .exec(plugin, &lab.env("DEL", &ns, CID, "eth0"), &conf)
        .await;
    if exec.ok() {
        Outcome::pass("a stray capabilities key and an unknown runtimeConfig key were tolerated")
    } else {
        fail_expected(
            "ADD with a stray capabilities key and unknown runtimeConfig",
            "exit 0",
            &exec,
        )
    }
}

pub(crate) async fn chain_012(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let mut p = Vec::new();
    for (n, key) in [
        "net.ipv4.conf.IFNAME.arp_notify",
        "net.ipv4.conf.eth0.arp_notify",
    ]
    .into_iter()
    .enumerate()
    {
        let ns = t!(lab.netns().await);
        let cid = format!("nfvsysctl{n}");
        let (_, prev) = t!(bridge_then_as(lab, &ns, &lab.version, &cid).await);
        let conf = json!({"cniVersion": lab.version, "name": "nfvnet-br", "type": plugin, "sysctl": {key: "1"}});
        let out = lab
            .exec(
                plugin,
                &lab.env("ADD", &ns, &cid, "eth0"),
                &with_prev(&conf, &prev),
            )
            .await;
        let Some(r) = out.json().filter(|_| out.ok()).cloned() else {
            p.push(format!("ADD with {key}: {}", out.describe()));
            continue;
        };
        let check = lab
            .exec(
                plugin,
                &lab.env("CHECK", &ns, &cid, "eth0"),
                &with_prev(&conf, &r),
            )
            .await;
        if !check.ok() {
            p.push(format!(
                "CHECK right after ADD with {key}: {}",
                check.describe()
            ));
        }
    }
    if p.is_empty() {
        Outcome::pass("CHECK right after ADD passed for the IFNAME placeholder and a literal key")
    } else {
        Outcome::fail(p.join("; "))
    }
}

pub(crate) async fn chain_013(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let conf = t!(lab.conf_for(plugin).await);
    let prev = json!({"cniVersion": lab.version,
        "interfaces": [{"name": "nfvprev0", "mac": "0e:00:00:00:39:01", "sandbox": ns.path}],
        "ips": [{"interface": 0, "address": "198.18.39.201/24", "gateway": "198.18.39.1"}],
        "routes": [{"dst": "198.18.38.0/24", "gw": "198.18.39.1"}],
        "dns": {"nameservers": ["198.18.39.53"], "search": ["nfv.example"]}});
    let out = t!(expect_result(
        &lab.exec(
            plugin,
            &lab.env("ADD", &ns, CID, "net1"),
            &with_prev(&conf, &prev)
        )
        .await,
        &format!("{plugin} ADD as the second plugin")
    ));
    let mut p = Vec::new();
    if !names(&out).iter().any(|n| n == "nfvprev0") {
        p.push("the prevResult interface nfvprev0 is missing".to_owned());
    }
    if !out["ips"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|i| i["address"] == "198.18.39.201/24")
    {
        p.push("the prevResult address 198.18.39.201/24 is missing".to_owned());
    }
    if !out["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| r["dst"] == "198.18.38.0/24")
    {
        p.push("the prevResult route 198.18.38.0/24 is missing".to_owned());
    }
    if out["dns"]["nameservers"]
        .as_array()
        .is_none_or(|n| !n.iter().any(|x| x == "198.18.39.53"))
    {
        p.push("the prevResult DNS nameserver is missing".to_owned());
    }
    if p.is_empty() {
        Outcome::pass("prevResult interfaces, ips, routes and dns kept in the output")
    } else {
        Outcome::fail(p.join("; ")).with_property("result", out)
    }
}

pub(crate) async fn chk_010(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let (conf, prev) = t!(bridge_then(lab, &ns, &lab.version).await);
    let tuning = json!({"cniVersion": lab.version, "name": "nfvnet-br", "type": "tuning", "runtimeConfig": {"mac": "0e:00:00:00:34:44"}});
    let fin = t!(expect_result(
        &lab.exec(
            "tuning",
            &lab.env("ADD", &ns, CID, "eth0"),
            &with_prev(&tuning, &prev)
        )
        .await,
        "tuning ADD (mac)"
    ));
    let check = lab
        .exec(
            plugin,
            &lab.env("CHECK", &ns, CID, "eth0"),
            &with_prev(&conf, &fin),
        )
        .await;
    let tcheck = lab
        .exec(
            "tuning",
            &lab.env("CHECK", &ns, CID, "eth0"),
            &with_prev(&tuning, &fin),
        )
        .await;
    if check.ok() && tcheck.ok() {
        Outcome::pass("bridge and tuning CHECK accept the final result with tuning's MAC")
    } else {
        Outcome::fail(format!(
            "expected both CHECKs to pass with the final chain result; bridge: {}, tuning: {}",
            check.describe(),
            tcheck.describe()
        ))
    }
}

// ---- more ADD / IPAM / DEL ----------------------------------------------------------------

pub(crate) async fn add_014(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let resolv = lab.dir.join("resolv.conf");
    if let Err(e) = std::fs::write(&resolv, "nameserver 198.18.39.53\nsearch nfv.example\n") {
        return Outcome::error(format!("cannot write {}: {e}", resolv.display()));
    }
    let mut ipam = lab.host_local(3);
    ipam.as_object_mut().expect("object").remove("routes");
    ipam["resolvConf"] = resolv.display().to_string().into();
    let ns = t!(lab.netns().await);
    let direct = json!({"cniVersion": lab.version, "name": "nfvnet-dns", "ipam": ipam});
    let ipam_result = t!(expect_result(
        &lab.exec(
            "host-local",
            &lab.env("ADD", &ns, "nfvdns0", "eth0"),
            &direct
        )
        .await,
        "host-local ADD with resolvConf"
    ));
    let mut plugin_dns = lab.bridge_conf();
    plugin_dns["ipam"] = ipam.clone();
    plugin_dns["dns"] = json!({"nameservers": ["198.18.39.54"]});
    let ns1 = t!(lab.netns().await);
    let with_plugin_dns = t!(expect_result(
        &lab.exec(
            plugin,
            &lab.env("ADD", &ns1, "nfvdns1", "eth0"),
            &plugin_dns
        )
        .await,
        "bridge ADD with plugin-level dns"
    ));
    let mut only_ipam = lab.bridge_conf();
    only_ipam["ipam"] = ipam;
    let ns2 = t!(lab.netns().await);
    let with_ipam_dns = t!(expect_result(
        &lab.exec(plugin, &lab.env("ADD", &ns2, "nfvdns2", "eth0"), &only_ipam)
            .await,
        "bridge ADD with IPAM dns only"
    ));
    let mut p = Vec::new();
    if with_plugin_dns["dns"]["nameservers"] != json!(["198.18.39.54"]) {
        p.push(format!(
            "the plugin-level dns block was not copied: {}",
            with_plugin_dns["dns"]
        ));
    }
    if with_ipam_dns["dns"] != ipam_result["dns"] {
        p.push(format!("the DNS host-local returned ({}) is not in the bridge result ({}); 0.4.0 says they should match", ipam_result["dns"], with_ipam_dns["dns"]));
    }
    let o = if p.is_empty() {
        Outcome::pass("plugin-level dns copied; IPAM dns propagated")
    } else {
        Outcome::fail(p.join("; "))
    };
    o.with_property("host-local dns", ipam_result["dns"].to_string())
        .with_property("bridge dns (IPAM only)", with_ipam_dns["dns"].to_string())
}

pub(crate) async fn ipam_003(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let (subnet, _) = lab.subnet(3);
    let at = |host: u8| subnet.replace(".0/24", &format!(".{host}"));
    let mut p = Vec::new();
    let base = ipam_conf(lab, plugin, 3);
    let mut cases = Vec::new();
    if plugin == "host-local" {
        let mut rc = base.clone();
        rc["runtimeConfig"] = json!({"ips": [at(66)]});
        cases.push(("runtimeConfig.ips", rc, Some(at(66))));
        let mut args = base.clone();
        args["args"] = json!({"cni": {"ips": [at(67)]}});
        cases.push(("args.cni.ips", args, Some(at(67))));
        let mut out = base.clone();
        out["runtimeConfig"] = json!({"ips": ["198.19.250.1"]});
        cases.push(("an out-of-range request", out, None));
    } else {
        let mut rc = json!({"cniVersion": lab.version, "name": "nfvnet-static", "capabilities": {"ips": true},
                            "ipam": {"type": "static", "routes": [{"dst": "0.0.0.0/0"}]}});
        rc["runtimeConfig"] = json!({"ips": [format!("{}/24", at(68))]});
        cases.push(("runtimeConfig.ips", rc, Some(at(68))));
    }
    for (i, (what, conf, want)) in cases.into_iter().enumerate() {
        let cid = format!("nfvreq{i}");
        let exec = lab
            .exec(plugin, &lab.env("ADD", &ns, &cid, "eth0"), &conf)
            .await;
        match want {
            Some(ip) => {
                let got = exec
                    .json()
                    .and_then(|v| v["ips"][0]["address"].as_str())
                    .unwrap_or("")
                    .to_owned();
                if !exec.ok() || !got.starts_with(&format!("{ip}/")) {
                    p.push(format!("{what} asked for {ip}: {}", exec.describe()));
                }
            }
            None => {
                let leaked = lab
                    .reservations("nfvnet-ipam")
                    .into_iter()
                    .filter(|(_, c)| c.contains(&cid))
                    .count();
                if exec.ok() || leaked > 0 {
                    p.push(format!(
                        "{what} should fail without a reservation: {}, {leaked} reservations",
                        exec.describe()
                    ));
                }
            }
        }
    }
    if p.is_empty() {
        Outcome::pass(
            "requested addresses honoured; an unsatisfiable request failed without leaking",
        )
    } else {
        Outcome::fail(p.join("; "))
    }
}

pub(crate) async fn del_007(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    let file = lab.dir.join("not-a-netns");
    if let Err(e) = std::fs::write(&file, b"") {
        return Outcome::error(format!("cannot create {}: {e}", file.display()));
    }
    let mut env = lab.env("DEL", &a.ns, CID, "eth0");
    env.netns = Some(file.display().to_string());
    let exec = lab.exec(plugin, &env, &with_prev(&a.conf, &a.result)).await;
    let res = lab.reservations(&net_name(&a.conf));
    if exec.ok() && res.is_empty() {
        Outcome::pass(
            "DEL with CNI_NETNS pointing at a regular file exited 0 and released the address",
        )
    } else {
        Outcome::fail(format!(
            "expected a best-effort DEL (exit 0, address released); got {}, reservations {res:?}",
            exec.describe()
        ))
    }
}

// ---- delegation (the nfvspy recording IPAM plugin) -------------------------------------------

/// A private plugin directory holding `nfvspy` (a symlink to this binary) and its record
/// file. Only the nfvi-verify binary can act as the spy.
fn spy_setup(lab: &Lab<'_>) -> Result<(String, std::path::PathBuf), Outcome> {
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
    Ok((dir.display().to_string(), lab.dir.join("spy.jsonl")))
}

fn spy_records(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn spy_conf(lab: &Lab<'_>, plugin_conf: Value, record: &std::path::Path, extra: Value) -> Value {
    let mut c = plugin_conf;
    let mut ipam = c["ipam"].clone();
    ipam["type"] = crate::spy::SPY_NAME.into();
    ipam["record"] = record.display().to_string().into();
    if let (Some(ipam), Some(extra)) = (ipam.as_object_mut(), extra.as_object()) {
        ipam.extend(extra.clone());
    }
    c["ipam"] = ipam;
    let _ = lab;
    c
}

fn spy_env(lab: &Lab<'_>, command: &str, ns: &Netns, spydir: &str) -> Env {
    let mut env = lab.env(command, ns, CID, "eth0");
    env.path = Some(format!("{spydir}:{}", env.path.unwrap_or_default()));
    env
}

pub(crate) async fn add_005(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let (spydir, record) = t!(spy_setup(lab));
    let ns = t!(lab.netns().await);
    let conf = spy_conf(lab, t!(lab.conf_for(plugin).await), &record, json!({}));
    let mut p = Vec::new();
    let mut sent = Vec::new();
    let mut prev = Value::Null;
    for command in ["ADD", "CHECK", "DEL"] {
        let mut env = spy_env(lab, command, &ns, &spydir);
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
        sent.push((command, env, stdin));
    }
    let records = spy_records(&record);
    for (command, env, stdin) in &sent {
        let Some(r) = records.iter().find(|r| r["env"]["CNI_COMMAND"] == *command) else {
            p.push(format!("the IPAM plugin was not called for {command}"));
            continue;
        };
        for (k, v) in [
            ("CNI_CONTAINERID", &env.container_id),
            ("CNI_NETNS", &env.netns),
            ("CNI_IFNAME", &env.ifname),
            ("CNI_ARGS", &env.args),
            ("CNI_PATH", &env.path),
        ] {
            if r["env"][k].as_str() != v.as_deref() {
                p.push(format!(
                    "{command}: delegate got {k}={} but the plugin got {v:?}",
                    r["env"][k]
                ));
            }
        }
        let got: Value =
            serde_json::from_str(r["stdin"].as_str().unwrap_or("")).unwrap_or(Value::Null);
        if got != *stdin {
            p.push(format!(
                "{command}: the delegate's stdin differs from the plugin's network configuration"
            ));
        }
    }
    if p.is_empty() {
        Outcome::pass(
            "the IPAM plugin was found on CNI_PATH and got identical CNI_* variables and the complete configuration for ADD, CHECK and DEL",
        )
    } else {
        Outcome::fail(p.join("; "))
    }
}

pub(crate) async fn add_006(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let (spydir, record) = t!(spy_setup(lab));
    let ns = t!(lab.netns().await);
    let marker = "nfvspy-stderr-marker";
    let conf = spy_conf(
        lab,
        t!(lab.conf_for(plugin).await),
        &record,
        json!({"fail": {"code": 142, "msg": "nfvspy refuses"}, "stderrMarker": marker}),
    );
    let host_before: Vec<String> = t!(lab.links(None).await)
        .into_iter()
        .map(|l| l.name)
        .collect();
    let exec = lab
        .exec(plugin, &spy_env(lab, "ADD", &ns, &spydir), &conf)
        .await;
    let mut p = Vec::new();
    if exec.ok() || exec.code() != Some(142) {
        p.push(format!(
            "expected the IPAM error code 142 propagated; got {}",
            exec.describe()
        ));
    }
    if !exec.stderr.contains(marker) {
        p.push("the IPAM plugin's stderr was not forwarded".to_owned());
    }
    let records = spy_records(&record);
    if !records.iter().any(|r| r["env"]["CNI_COMMAND"] == "DEL") {
        p.push("the plugin did not call IPAM DEL after the failed IPAM ADD".to_owned());
    }
    let left = t!(only_lo(lab, &ns).await);
    let host_after: Vec<String> = t!(lab.links(None).await)
        .into_iter()
        .map(|l| l.name)
        .filter(|n| !host_before.contains(n) && n != "nfvbr0")
        .collect();
    if !left.is_empty() || !host_after.is_empty() {
        p.push(format!(
            "residue after the failed ADD: container {left:?}, host {host_after:?}"
        ));
    }
    let _ = lab
        .exec(plugin, &spy_env(lab, "DEL", &ns, &spydir), &conf)
        .await;
    if p.is_empty() {
        Outcome::pass("code 142 propagated, stderr forwarded, IPAM DEL called, no residue")
    } else {
        Outcome::fail(p.join("; "))
    }
}

pub(crate) async fn add_016(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let (spydir, record) = t!(spy_setup(lab));
    let ns = t!(lab.netns().await);
    let marker = "nfvspy-stderr-marker";
    let conf = spy_conf(
        lab,
        t!(lab.conf_for(plugin).await),
        &record,
        json!({"stderrMarker": marker}),
    );
    let add = lab
        .exec(plugin, &spy_env(lab, "ADD", &ns, &spydir), &conf)
        .await;
    let prev = add.json().cloned().unwrap_or_default();
    let del = lab
        .exec(
            plugin,
            &spy_env(lab, "DEL", &ns, &spydir),
            &with_prev(&conf, &prev),
        )
        .await;
    let failing = spy_conf(
        lab,
        t!(lab.conf_for(plugin).await),
        &record,
        json!({"stderrMarker": marker, "fail": {"code": 142}}),
    );
    let ns2 = t!(lab.netns().await);
    let fail = lab
        .exec(plugin, &spy_env(lab, "ADD", &ns2, &spydir), &failing)
        .await;
    let mut p = Vec::new();
    for (what, exec) in [
        ("successful ADD", &add),
        ("DEL", &del),
        ("failing ADD", &fail),
    ] {
        let cmd = if what == "DEL" { "DEL" } else { "ADD" };
        if !exec.stderr.contains(&format!("{marker} {cmd}")) {
            p.push(format!(
                "{what}: the delegate's stderr marker is missing from the plugin's stderr"
            ));
        }
    }
    if p.is_empty() {
        Outcome::pass("the delegate's stderr reached the caller on success and on failure")
    } else {
        Outcome::fail(p.join("; "))
    }
}

// ---- pod-level requirements RC2 leaves untested ---------------------------------------------

/// A pod sandbox as a kubelet with a multiplexer would build it: loopback, the default network
/// and five extra networks from different plugins.
pub(crate) async fn pod_multi_interface(lab: &Lab<'_>, _plugin: &str) -> Outcome {
    let sandbox = t!(lab.netns().await);
    t!(lab.macvlan_master().await);
    t!(lab
        .run_ok(
            "ip",
            &[
                "-n", &lab.rt, "link", "add", "nfvmm2", "type", "veth", "peer", "name", "nfvmm3"
            ]
        )
        .await);
    t!(lab
        .run_ok("ip", &["-n", &lab.rt, "link", "set", "nfvmm2", "up"])
        .await);
    let ipam = |k: u32| {
        let mut i = lab.host_local(k);
        i.as_object_mut().expect("object").remove("routes");
        i
    };
    let v = lab.version.clone();
    let nets: Vec<(&str, &str, Value)> = vec![
        (
            "loopback",
            "lo",
            json!({"cniVersion": v, "name": "nfvpod-lo", "type": "loopback"}),
        ),
        (
            "bridge",
            "eth0",
            json!({"cniVersion": v, "name": "nfvpod-default", "type": "bridge", "bridge": "nfvbr0", "isGateway": true, "isDefaultGateway": true, "ipam": ipam(10)}),
        ),
        (
            "macvlan",
            "net1",
            json!({"cniVersion": v, "name": "nfvpod-mv1", "type": "macvlan", "master": "nfvmm0", "mode": "bridge", "ipam": ipam(11)}),
        ),
        (
            "ptp",
            "net2",
            json!({"cniVersion": v, "name": "nfvpod-ptp1", "type": "ptp", "ipam": ipam(12)}),
        ),
        (
            "bridge",
            "net3",
            json!({"cniVersion": v, "name": "nfvpod-br2", "type": "bridge", "bridge": "nfvbr2", "ipam": ipam(13)}),
        ),
        (
            "macvlan",
            "net4",
            json!({"cniVersion": v, "name": "nfvpod-mv2", "type": "macvlan", "master": "nfvmm2", "mode": "private", "ipam": ipam(14)}),
        ),
        (
            "ptp",
            "net5",
            json!({"cniVersion": v, "name": "nfvpod-ptp2", "type": "ptp", "ipam": ipam(15)}),
        ),
    ];
    let mut results = Vec::new();
    for (plugin, ifname, conf) in &nets {
        let exec = lab
            .exec(plugin, &lab.env("ADD", &sandbox, CID, ifname), conf)
            .await;
        results.push(t!(expect_result(
            &exec,
            &format!("{plugin} ADD of {ifname}")
        )));
    }
    let mut p = Vec::new();
    let addrs = t!(lab.addrs(Some(&sandbox)).await);
    let mut seen = BTreeSet::new();
    for ((_, ifname, _), r) in nets.iter().zip(&results).skip(1) {
        let a = r["ips"][0]["address"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if !addrs.iter().any(|(n, x)| n == ifname && *x == a) {
            p.push(format!("{ifname} does not carry its address {a}"));
        }
        if !seen.insert(a.clone()) {
            p.push(format!("address {a} is used twice"));
        }
    }
    let extra = nets.len() - 2;
    for ((plugin, ifname, conf), r) in nets.iter().zip(&results).rev() {
        let exec = lab
            .exec(
                plugin,
                &lab.env("DEL", &sandbox, CID, ifname),
                &with_prev(conf, r),
            )
            .await;
        if !exec.ok() {
            p.push(format!(
                "DEL of {ifname} (reverse order): {}",
                exec.describe()
            ));
        }
    }
    let left = t!(only_lo(lab, &sandbox).await);
    if !left.is_empty() {
        p.push(format!("interfaces left after removing all: {left:?}"));
    }
    if p.is_empty() {
        Outcome::pass(format!("the pod had lo, eth0 and {extra} extra interfaces from bridge, macvlan and ptp networks with distinct addresses; all removed in reverse order"))
            .with_metric("extra_interfaces", extra as f64, "count")
    } else {
        Outcome::fail(p.join("; "))
    }
}

/// Dual stack: IPv4 from the lab range and IPv6 from the IPv6 benchmarking range
/// 2001:2::/48 (RFC 5180), both configured on one attachment.
pub(crate) async fn pod_dual_stack(lab: &Lab<'_>, _plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let (v4, gw4) = lab.subnet(16);
    let conf = json!({"cniVersion": lab.version, "name": "nfvpod-ds", "type": "bridge", "bridge": "nfvbr0", "isGateway": true,
        "ipam": {"type": "host-local", "dataDir": lab.ipam_dir(),
                 "ranges": [[{"subnet": v4, "gateway": gw4}], [{"subnet": "2001:2:0:1::/64", "gateway": "2001:2:0:1::1"}]],
                 "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]}});
    let r = t!(expect_result(
        &lab.exec("bridge", &lab.env("ADD", &ns, CID, "eth0"), &conf)
            .await,
        "dual-stack ADD"
    ));
    let ips: Vec<String> = r["ips"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["address"].as_str().map(str::to_owned))
        .collect();
    let mut p = Vec::new();
    let v6 = ips.iter().find(|a| a.contains(':')).cloned();
    let v4a = ips.iter().find(|a| !a.contains(':')).cloned();
    if v4a.is_none() || v6.is_none() {
        p.push(format!("the result does not hold both families: {ips:?}"));
    }
    let addrs = t!(lab.addrs(Some(&ns)).await);
    for a in ips.iter() {
        if !addrs.iter().any(|(n, x)| n == "eth0" && x == a) {
            p.push(format!("{a} is not configured on eth0"));
        }
    }
    let routes6 = t!(lab
        .run_ok("ip", &["-n", &ns.name, "-6", "-j", "route", "show"])
        .await);
    if !routes6.contains("\"default\"") {
        p.push("no IPv6 default route in the pod".to_owned());
    }
    // IPv4 reachability of the gateway; IPv6 is verified as configuration only, because the
    // lab sends traffic to 198.18.0.0/15 and nowhere else.
    if !reaches(lab, &ns, &gw4).await {
        p.push(format!(
            "the IPv4 gateway {gw4} does not answer ARP from the pod"
        ));
    }
    let _ = lab
        .exec(
            "bridge",
            &lab.env("DEL", &ns, CID, "eth0"),
            &with_prev(&conf, &r),
        )
        .await;
    let o = if p.is_empty() {
        Outcome::pass(format!(
            "dual-stack attachment: {} configured with default routes for both families; IPv4 gateway reachable",
            ips.join(" and ")
        ))
    } else {
        Outcome::fail(p.join("; "))
    };
    o.with_property(
        "ipv6 reachability",
        "not sent: the lab's traffic rule allows only 198.18.0.0/15; IPv6 checked as configuration",
    )
}

/// NAT-less egress: a peer on the far side of the macvlan master sees the pod's own address.
pub(crate) async fn pod_natless_egress(lab: &Lab<'_>, _plugin: &str) -> Outcome {
    let pod = t!(lab.netns().await);
    let peer = t!(lab.netns().await);
    t!(lab.macvlan_master().await);
    // The far end of the master's veth becomes the external peer (the gateway of the subnet).
    let (subnet, gw) = lab.subnet(1);
    let _ = subnet;
    t!(lab
        .run_ok(
            "ip",
            &["-n", &lab.rt, "link", "set", "nfvmm1", "netns", &peer.name]
        )
        .await);
    t!(lab
        .run_ok(
            "ip",
            &[
                "-n",
                &peer.name,
                "addr",
                "add",
                &format!("{gw}/24"),
                "dev",
                "nfvmm1"
            ]
        )
        .await);
    t!(lab
        .run_ok("ip", &["-n", &peer.name, "link", "set", "nfvmm1", "up"])
        .await);
    t!(lab
        .run_ok("ip", &["-n", &peer.name, "link", "set", "lo", "up"])
        .await);
    let conf = lab.macvlan_conf();
    let r = t!(expect_result(
        &lab.exec("macvlan", &lab.env("ADD", &pod, CID, "eth0"), &conf)
            .await,
        "macvlan ADD"
    ));
    let pod_ip = container_ip(&r);
    let bind = format!("{gw}:17999");
    let listener = {
        let bind = bind.clone();
        crate::nsthread::in_netns(peer.path.clone(), move || {
            let sock = std::net::UdpSocket::bind(&bind).map_err(|e| format!("bind {bind}: {e}"))?;
            sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .map_err(|e| e.to_string())?;
            let mut buf = [0u8; 64];
            let (_, from) = sock
                .recv_from(&mut buf)
                .map_err(|e| format!("no datagram reached the peer: {e}"))?;
            Ok(from.ip().to_string())
        })
    };
    let sender = crate::nsthread::in_netns(pod.path.clone(), move || {
        // Give the listener time to bind before the first datagram.
        std::thread::sleep(std::time::Duration::from_millis(200));
        let sock = std::net::UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
        for _ in 0..3 {
            sock.send_to(b"nfvi-verify natless probe", &bind)
                .map_err(|e| format!("send: {e}"))?;
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Ok(())
    });
    let (seen, sent) = tokio::join!(listener, sender);
    let _ = lab
        .exec(
            "macvlan",
            &lab.env("DEL", &pod, CID, "eth0"),
            &with_prev(&conf, &r),
        )
        .await;
    match (seen, sent) {
        (Ok(src), Ok(())) if src == pod_ip => Outcome::pass(format!(
            "the peer saw the pod's own address {pod_ip} as source: no NAT on the macvlan path"
        )),
        (Ok(src), Ok(())) => Outcome::fail(format!(
            "the peer saw source {src}, the pod's address is {pod_ip}: the egress path translates addresses"
        )),
        (Err(e), _) | (_, Err(e)) => Outcome::fail(format!("the probe did not get through: {e}")),
    }
}

/// Whether `ip` answers ARP from inside `ns`: a datagram to its discard port makes the kernel
/// resolve it, and the neighbour entry shows whether a reply came. Only lab addresses are
/// ever probed.
async fn reaches(lab: &Lab<'_>, ns: &Netns, ip: &str) -> bool {
    let target = format!("{ip}:9");
    let sent = crate::nsthread::in_netns(ns.path.clone(), move || {
        let sock = std::net::UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
        for _ in 0..3 {
            let _ = sock.send_to(b"nfvi-verify reachability probe", &target);
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Ok(())
    })
    .await;
    let neigh = lab
        .run_ok("ip", &["-n", &ns.name, "neigh", "show", ip])
        .await
        .unwrap_or_default();
    sent.is_ok()
        && neigh.contains("lladdr")
        && !neigh.contains("FAILED")
        && !neigh.contains("INCOMPLETE")
}
