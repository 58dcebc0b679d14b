//! Builders of observed data for the judges' table tests: plugin invocations, links and
//! routes as the observing half would have collected them.

use serde_json::{Value, json};

use super::add::NsState;
use crate::lab::{Exec, Stdout};
use crate::netstate::{Link, RouteEntry};

fn exec(rc: i32, stdout: Stdout, text: String) -> Exec {
    Exec {
        plugin: "bridge".to_owned(),
        command: "ADD".to_owned(),
        rc: Some(rc),
        stdout,
        stdout_text: text,
        stderr: String::new(),
        timed_out: false,
    }
}

/// Exit 0 with a JSON document on stdout.
pub(super) fn ok(v: Value) -> Exec {
    let text = v.to_string();
    exec(0, Stdout::Json(v), text)
}

/// Exit 0 with nothing on stdout.
pub(super) fn ok_empty() -> Exec {
    exec(0, Stdout::Empty, String::new())
}

/// Exit `rc` with a JSON document (normally an error object) on stdout.
pub(super) fn err(rc: i32, v: Value) -> Exec {
    let text = v.to_string();
    exec(rc, Stdout::Json(v), text)
}

/// Exit 1 with the error object a plugin reports an unclassified failure with (code 999).
pub(super) fn refused(msg: &str) -> Exec {
    err(1, json!({"code": 999, "msg": msg}))
}

/// Exit 0 with a result holding one address.
pub(super) fn addr(address: &str) -> Exec {
    ok(json!({"cniVersion": "1.0.0", "ips": [{"address": address}]}))
}

/// Exit `rc` with an empty stdout (`None`) or a stdout that is not one JSON document.
pub(super) fn garbage(rc: i32, text: Option<&str>) -> Exec {
    match text {
        None => exec(rc, Stdout::Empty, String::new()),
        Some(t) => exec(rc, Stdout::Garbage(format!("not JSON: {t}")), t.to_owned()),
    }
}

/// The same invocation with another command name and stderr.
pub(super) fn named(mut e: Exec, command: &str, stderr: &str) -> Exec {
    command.clone_into(&mut e.command);
    stderr.clone_into(&mut e.stderr);
    e
}

/// A link that is UP with MTU 1500.
pub(super) fn link(name: &str, index: u64, kind: Option<&str>) -> Link {
    Link {
        name: name.to_owned(),
        index,
        link_index: None,
        up: true,
        mtu: 1500,
        mac: String::new(),
        kind: kind.map(str::to_owned),
        master: None,
        mode: None,
    }
}

/// A route as `ip -j route` reports it.
pub(super) fn route(dst: &str, dev: Option<&str>) -> RouteEntry {
    RouteEntry {
        dst: dst.to_owned(),
        gateway: None,
        dev: dev.map(str::to_owned),
    }
}

/// (interface, "addr/prefix") pairs as `ip -j addr` is parsed.
pub(super) fn addrs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, a)| ((*n).to_owned(), (*a).to_owned()))
        .collect()
}

/// host-local reservation files: (address, content).
pub(super) fn reservations(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    addrs(pairs)
}

pub(super) const NS: &str = "/run/netns/nfvc-1";

/// A bridge ADD result: host bridge and veth, container eth0 with one address.
pub(super) fn bridge_result() -> Value {
    json!({"cniVersion": "1.0.0",
        "interfaces": [{"name": "nfvbr0", "mac": "aa:00:00:00:00:01"}, {"name": "veth1", "mac": "aa:00:00:00:00:02"},
                       {"name": "eth0", "mac": "0E:00:00:00:00:03", "sandbox": NS}],
        "ips": [{"interface": 2, "address": "198.18.30.2/24", "gateway": "198.18.30.1"}],
        "routes": [{"dst": "0.0.0.0/0", "gw": "198.18.30.1"}]})
}

/// The container netns as `bridge_result` describes it.
pub(super) fn agreeing_ns() -> NsState {
    let mut eth0 = link("eth0", 2, Some("veth"));
    eth0.mac = "0e:00:00:00:00:03".into();
    NsState {
        links: vec![link("lo", 1, None), eth0],
        addrs: addrs(&[("lo", "127.0.0.1/8"), ("eth0", "198.18.30.2/24")]),
        routes: vec![
            route("default", Some("eth0")),
            route("198.18.30.0/24", Some("eth0")),
        ],
    }
}

/// Asserts that a message starts with `prefix`, showing both when it does not.
#[track_caller]
pub(super) fn assert_starts_with(message: &str, prefix: &str) {
    assert!(
        message.starts_with(prefix),
        "{message:?}\ndoes not start with\n{prefix:?}"
    );
}

/// Asserts that a message ends with `suffix`, showing both when it does not.
#[track_caller]
pub(super) fn assert_ends_with(message: &str, suffix: &str) {
    assert!(
        message.ends_with(suffix),
        "{message:?}\ndoes not end with\n{suffix:?}"
    );
}

/// Asserts that a message contains `part`, showing both when it does not.
#[track_caller]
pub(super) fn assert_contains(message: &str, part: &str) {
    assert!(
        message.contains(part),
        "{message:?}\ndoes not contain\n{part:?}"
    );
}

/// An invocation that could not be started: no exit code, nothing on stdout, the launch
/// error on stderr (as the lab records a failed spawn).
pub(super) fn garbage_not_started() -> Exec {
    let mut e = exec(0, Stdout::Empty, String::new());
    e.rc = None;
    e.stderr = "failed to start `/x/bridge`: Permission denied (os error 13)".to_owned();
    e
}
