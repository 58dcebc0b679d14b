//! The generator: case `index` of a plugin's stream, from the seed alone.
//!
//! A case starts from the plugin's valid configuration ([`templates::config`]) at a version
//! the plugin lists (or, sometimes, one it cannot know), gets a prevResult where the plugin
//! is chained (valid, absent or malformed), capability arguments, then one to four mutations
//! anywhere in the document (a field removed, an unknown field added, a value of the wrong
//! type, empty, huge, unicode, or a value known to be interesting for that key), and
//! sometimes an odd environment (missing or malformed variables, odd CNI_ARGS) or stdin that
//! is not JSON at all. Keys that lead outside the sandbox are pinned back afterwards.

use serde_json::{Map, Value, json};

use super::case::{CNI_PATH, Case, Flow, NETNS, Stdin};
use super::rng::Rng;
use super::templates::{self, Kind, ODD_VERSIONS, VERSIONS};

/// One step into a JSON document.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Seg {
    Key(String),
    Idx(usize),
}

/// Every path in `v` (the root is the empty path), depth first.
pub(crate) fn paths(v: &Value) -> Vec<Vec<Seg>> {
    fn walk(v: &Value, at: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
        out.push(at.clone());
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    at.push(Seg::Key(k.clone()));
                    walk(child, at, out);
                    at.pop();
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter().enumerate().take(64) {
                    at.push(Seg::Idx(i));
                    walk(child, at, out);
                    at.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

pub(crate) fn get_mut<'a>(v: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, seg| match seg {
        Seg::Key(k) => v.get_mut(k.as_str()),
        Seg::Idx(i) => v.get_mut(*i),
    })
}

/// Removes the node at `path` (not the root); whether something was removed.
pub(crate) fn remove(v: &mut Value, path: &[Seg]) -> bool {
    let Some((last, parent)) = path.split_last() else {
        return false;
    };
    match (get_mut(v, parent), last) {
        (Some(Value::Object(m)), Seg::Key(k)) => m.remove(k).is_some(),
        (Some(Value::Array(a)), Seg::Idx(i)) if *i < a.len() => {
            a.remove(*i);
            true
        }
        _ => false,
    }
}

const UNICODE: &[&str] = &[
    "ü",
    "é\u{301}",
    "🚀",
    "\u{202e}eth0",
    "名前",
    "\u{feff}",
    "\u{0}",
    "\u{7f}",
    "\u{fffd}",
    "\u{200b}",
    "ǅ",
    "\\",
    "\"",
    "%s%n",
    "$(id)",
    "'",
];
const ODD_KEYS: &[&str] = &[
    "x-vendor",
    "unknownField",
    "ü",
    "",
    "cni.dev/attachments",
    "capabilities",
    "runtimeConfig",
    "prevResult",
    "args",
    "ipam",
    "dns",
    "cniVersions",
    "disableCheck",
];

fn string(r: &mut Rng) -> Value {
    match r.below(6) {
        0 => json!(""),
        1 => json!(r.pick(UNICODE).repeat(1 + r.below(3))),
        2 => json!("A".repeat(*r.pick(&[16, 256, 4096, 65536]))),
        3 => json!(format!("nfv{}", r.below(1000))),
        4 => json!(
            r.pick(&["null", "true", "0", "-1", "1e309", "{}", "[]"])
                .to_string()
        ),
        _ => json!(r.pick(UNICODE).to_string() + "nfv"),
    }
}

fn number(r: &mut Rng) -> Value {
    match r.below(8) {
        0 => json!(0),
        1 => json!(-1),
        2 => json!(i64::MAX),
        3 => json!(i64::MIN),
        4 => json!(u64::MAX),
        5 => json!(1e308),
        6 => json!(0.5),
        _ => json!(r.below(100_000)),
    }
}

/// A random value, at most `depth` levels deep.
fn any(r: &mut Rng, depth: usize) -> Value {
    match r.below(if depth == 0 { 4 } else { 6 }) {
        0 => string(r),
        1 => number(r),
        2 => json!(r.chance(50)),
        3 => Value::Null,
        4 => Value::Array((0..r.below(4)).map(|_| any(r, depth - 1)).collect()),
        _ => {
            let mut m = Map::new();
            for _ in 0..r.below(4) {
                m.insert(r.pick(ODD_KEYS).to_string(), any(r, depth - 1));
            }
            Value::Object(m)
        }
    }
}

/// A value of another JSON type than `v`.
fn wrong_type(r: &mut Rng, v: &Value) -> Value {
    loop {
        let w = any(r, 1);
        if std::mem::discriminant(&w) != std::mem::discriminant(v) {
            return w;
        }
    }
}

fn empty_of(v: &Value) -> Value {
    match v {
        Value::String(_) => json!(""),
        Value::Number(_) => json!(0),
        Value::Array(_) => json!([]),
        Value::Object(_) => json!({}),
        Value::Bool(_) => json!(false),
        Value::Null => json!({}),
    }
}

fn huge_of(r: &mut Rng, v: &Value) -> Value {
    match v {
        Value::Array(a) if !a.is_empty() => {
            let n = *r.pick(&[100, 1000]);
            Value::Array((0..n).map(|i| a[i % a.len()].clone()).collect())
        }
        Value::Object(m) => {
            let mut m = m.clone();
            for i in 0..*r.pick(&[100, 1000]) {
                m.insert(format!("nfvextra{i}"), json!(i));
            }
            Value::Object(m)
        }
        Value::Number(_) => number(r),
        _ => {
            let mut deep = json!("nfv");
            if r.chance(30) {
                for _ in 0..100 {
                    deep = json!([deep]);
                }
                return deep;
            }
            json!("A".repeat(*r.pick(&[4096, 65536, 262_144])))
        }
    }
}

/// One mutation somewhere in `doc`.
pub(crate) fn mutate(r: &mut Rng, doc: &mut Value) {
    let all = paths(doc);
    let path = r.pick(&all).clone();
    let key = path.iter().rev().find_map(|s| match s {
        Seg::Key(k) => Some(k.clone()),
        Seg::Idx(_) => None,
    });
    let op = r.below(8);
    if op == 0 && !path.is_empty() {
        remove(doc, &path);
        return;
    }
    let Some(node) = get_mut(doc, &path) else {
        return;
    };
    match op {
        1 => {
            if let Value::Object(m) = node {
                m.insert(r.pick(ODD_KEYS).to_string(), any(r, 2));
            } else if let Value::Array(a) = node {
                a.push(any(r, 2));
            } else {
                *node = wrong_type(r, node);
            }
        }
        2 => *node = wrong_type(r, node),
        3 => *node = empty_of(node),
        4 => *node = huge_of(r, node),
        5 => *node = json!(r.pick(UNICODE).to_string() + node.as_str().unwrap_or("")),
        _ => {
            let pool = key
                .as_deref()
                .map(templates::interesting)
                .unwrap_or_default();
            *node = if pool.is_empty() {
                any(r, 1)
            } else {
                r.pick(&pool).clone()
            };
        }
    }
}

/// A prevResult that is not one: odd shapes a careless chained plugin may trip on.
fn malformed_prev(r: &mut Rng, version: &str) -> Value {
    let mut p = templates::prev_result(version);
    match r.below(9) {
        0 => json!(null),
        1 => json!({}),
        2 => json!({"cniVersion": version}),
        3 => {
            p["ips"][0]["interface"] = json!(*r.pick(&[2, 7, -1, 1000]));
            p
        }
        4 => {
            p.as_object_mut().map(|o| o.remove("interfaces"));
            p
        }
        5 => {
            p["cniVersion"] = json!(*r.pick(&["0.1.0", "9.9.9", "", "1.1.0"]));
            p
        }
        6 => {
            p["ips"] = json!([{"address": "garbage"}]);
            p
        }
        7 => wrong_type(r, &p),
        _ => {
            mutate(r, &mut p);
            mutate(r, &mut p);
            p
        }
    }
}

/// Capability arguments as a runtime would pass them in runtimeConfig, valid or not.
fn runtime_config(r: &mut Rng) -> Value {
    let pm = json!([{"hostPort": 18081, "containerPort": 81, "protocol": "udp", "hostIP": "198.18.41.1"}]);
    let entries = [
        ("portMappings", pm),
        (
            "bandwidth",
            json!({"egressRate": 1_000_000, "egressBurst": 100_000}),
        ),
        ("mac", json!("0e:00:00:00:41:77")),
        ("ips", json!(["198.18.42.77/24"])),
        ("ipRanges", json!([[{"subnet": "198.18.52.0/24"}]])),
        ("deviceID", json!("0000:00:00.0")),
        ("infinibandGUID", json!("c2:11:22:33:44:55:66:77")),
        ("aliases", json!(["nfv"])),
        ("cni.dev/attachments", json!([])),
    ];
    let mut m = Map::new();
    for _ in 0..1 + r.below(3) {
        let (k, v) = r.pick(&entries);
        let mut v = v.clone();
        if r.chance(60) {
            mutate(r, &mut v);
        }
        m.insert((*k).to_owned(), v);
    }
    Value::Object(m)
}

const COMMANDS: &[&str] = &[
    "DEL", "CHECK", "VERSION", "GC", "STATUS", "FROB", "", "add", "ADD ", "DEL\tx", "ü",
];

fn odd_env(r: &mut Rng, case: &mut Case) {
    let var = *r.pick(&[
        "CNI_CONTAINERID",
        "CNI_NETNS",
        "CNI_IFNAME",
        "CNI_ARGS",
        "CNI_PATH",
    ]);
    let value: Option<String> = if r.chance(15) {
        None
    } else {
        let pool: &[&str] = match var {
            "CNI_CONTAINERID" => &["", "-lead", "ü", "a.b_c-D", "has space", "a/../b", "x;y"],
            "CNI_NETNS" => &[
                "",
                "@DIR@/nfvnothere",
                "@DIR@/not-a-netns",
                "@DIR@",
                "relative/ns",
                "@NETNS@/",
            ],
            "CNI_IFNAME" => &[
                "",
                "abcdefghijklmno",
                "abcdefghijklmnop",
                "lo",
                "eth0 ",
                "ü",
                ".",
                "..",
                "a:b",
                "net1",
                "nfvfzh0",
            ],
            "CNI_ARGS" => &[
                "",
                "IgnoreUnknown=1",
                "IgnoreUnknown=1;IP=198.18.42.77",
                "IP=198.18.42.77",
                "IgnoreUnknown=1;IP=garbage",
                "K8S_POD_NAME=ü;K8S_POD_NAMESPACE=x",
                "a=b=c",
                ";",
                "=",
                "novalue",
                "IgnoreUnknown=true;FOO=bar",
                "IgnoreUnknown=1;MAC=0e:00:00:00:00:09",
                "IgnoreUnknown=1;IP=198.18.42.77,198.18.42.78",
                "IgnoreUnknown=1;;;",
            ],
            _ => &[
                "",
                "/nonexistent",
                "@CNIPATH@:@CNIPATH@",
                "@DIR@",
                ":",
                "@CNIPATH@:",
            ],
        };
        let mut v = r.pick(pool).to_string();
        if var == "CNI_CONTAINERID" && r.chance(20) {
            v = "c".repeat(*r.pick(&[256, 4096]));
        }
        if var == "CNI_ARGS" && r.chance(20) {
            v = "IgnoreUnknown=1;".to_owned() + &"K=V;".repeat(*r.pick(&[100, 2000]));
        }
        Some(v)
    };
    case.set_var(var, value);
}

fn raw_stdin(r: &mut Rng, doc: &Value) -> Vec<u8> {
    let text = doc.to_string().into_bytes();
    match r.below(6) {
        0 => Vec::new(),
        1 => text[..r.below(text.len().max(1))].to_vec(),
        2 => {
            let mut t = b"\xef\xbb\xbf".to_vec();
            t.extend(text);
            t
        }
        3 => {
            let mut t = text.clone();
            let at = r.below(t.len().max(1));
            t.insert(at.min(t.len()), *r.pick(&[0xff, 0x00, b'}', b',', b'"']));
            t
        }
        4 => {
            let mut t = text.clone();
            t.extend_from_slice(b" {}");
            t
        }
        _ => r
            .pick(&[
                &b"null"[..],
                b"[]",
                b"1",
                b"\"x\"",
                b"{\"cniVersion\":\"1.0.0\"",
                &[b'['; 20000][..],
            ])
            .to_vec(),
    }
}

/// Drops each key of `doc` but `keep` with probability `percent`.
fn dropout_keys(r: &mut Rng, doc: &mut Value, percent: u32, keep: &[&str]) {
    if let Some(o) = doc.as_object_mut() {
        let keys: Vec<String> = o
            .keys()
            .filter(|k| !keep.contains(&k.as_str()))
            .cloned()
            .collect();
        for k in keys {
            if r.chance(percent) {
                o.remove(&k);
            }
        }
    }
}

/// The canonical environment of a case.
fn env(command: &str, index: u64) -> Vec<(String, String)> {
    [
        ("CNI_COMMAND", command.to_owned()),
        ("CNI_CONTAINERID", format!("nfvfz{index:x}")),
        ("CNI_NETNS", NETNS.to_owned()),
        ("CNI_IFNAME", "eth0".to_owned()),
        ("CNI_PATH", CNI_PATH.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Case `index` of `plugin` in campaign `seed`.
pub(crate) fn generate(seed: u64, plugin: &str, index: u64) -> Case {
    let r = &mut Rng::for_case(seed, plugin, index);
    let version = if r.chance(88) {
        *r.pick(VERSIONS)
    } else {
        *r.pick(ODD_VERSIONS)
    };
    let mut conf = templates::config(plugin, version);
    // Missing fields: each optional key dropped with a probability drawn per case, from
    // none to all (the plugin's bare minimum).
    let dropout = *r.pick(&[0, 0, 30, 60, 100]);
    dropout_keys(r, &mut conf, dropout, &["cniVersion", "name", "type"]);
    if let Some(ipam) = conf.get_mut("ipam") {
        dropout_keys(
            r,
            ipam,
            dropout / 2,
            &["type", "dataDir", "daemonSocketPath"],
        );
    }
    let kind = templates::kind(plugin);
    let prev = match (kind, r.below(100)) {
        (Kind::Chained, 0..=54) => {
            let other = *r.pick(VERSIONS);
            Some(templates::prev_result(if r.chance(80) {
                version
            } else {
                other
            }))
        }
        (Kind::Chained, 55..=64) => None,
        (Kind::Chained, _) => Some(malformed_prev(r, version)),
        (_, 0..=7) => Some(templates::prev_result(version)),
        (_, 8..=14) => Some(malformed_prev(r, version)),
        _ => None,
    };
    if let Some(p) = prev {
        conf["prevResult"] = p;
    }
    if r.chance(25) {
        conf["runtimeConfig"] = runtime_config(r);
    }
    let mutations = match r.below(10) {
        0 => 0,
        1..=5 => 1,
        6..=8 => 2,
        _ => 4,
    };
    for _ in 0..mutations {
        mutate(r, &mut conf);
    }
    templates::pin(plugin, &mut conf);
    let single = r.chance(20);
    let command = if single { *r.pick(COMMANDS) } else { "ADD" };
    let mut case = Case {
        index,
        flow: if single {
            Flow::Single
        } else {
            Flow::Lifecycle {
                check: r.chance(30),
            }
        },
        env: env(command, index),
        stdin: Stdin::Json(Value::Null),
    };
    if r.chance(25) {
        odd_env(r, &mut case);
        if r.chance(20) {
            odd_env(r, &mut case);
        }
    }
    if r.chance(3) {
        case.set_var("CNI_COMMAND", None);
    }
    case.stdin = if r.chance(8) {
        Stdin::Raw(raw_stdin(r, &conf))
    } else {
        Stdin::Json(conf)
    };
    case
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_is_a_function_of_seed_plugin_and_index() {
        for plugin in ["bridge", "tuning", "host-local"] {
            let a: Vec<Case> = (0..200).map(|i| generate(1, plugin, i)).collect();
            let b: Vec<Case> = (0..200).map(|i| generate(1, plugin, i)).collect();
            assert_eq!(a, b, "{plugin}: same seed, same cases");
            let c: Vec<Case> = (0..200).map(|i| generate(2, plugin, i)).collect();
            assert_ne!(a, c, "{plugin}: another seed, other cases");
            // Out of order, as workers take them, case 150 is still case 150.
            assert_eq!(generate(1, plugin, 150), a[150]);
        }
    }

    #[test]
    fn the_stream_covers_the_shapes_the_issue_names() {
        let cases: Vec<Case> = (0..3000).map(|i| generate(1, "tuning", i)).collect();
        let json = |c: &Case| match &c.stdin {
            Stdin::Json(v) => Some(v.clone()),
            Stdin::Raw(_) => None,
        };
        let has = |f: &dyn Fn(&Case) -> bool| cases.iter().any(f);
        assert!(has(&|c| matches!(c.stdin, Stdin::Raw(_))), "raw stdin");
        assert!(
            has(&|c| json(c).is_some_and(|v| v.get("prevResult").is_none())),
            "absent prevResult"
        );
        assert!(
            has(&|c| json(c)
                .is_some_and(|v| v["prevResult"].is_null() && v.get("prevResult").is_some())),
            "null prevResult"
        );
        assert!(
            has(&|c| json(c).is_some_and(|v| v["cniVersion"] == "9.9.9")),
            "unknown version"
        );
        assert!(has(&|c| c.var("CNI_ARGS").is_some()), "CNI_ARGS");
        assert!(has(&|c| c.var("CNI_IFNAME").is_none()), "missing variable");
        assert!(
            has(&|c| json(c).is_some_and(|v| v.get("runtimeConfig").is_some())),
            "capability args"
        );
        assert!(has(&|c| c.size() > 60_000), "huge values");
        assert!(has(&|c| c.flow == Flow::Single), "other commands");
        for c in &cases {
            if let Some(v) = json(c)
                && v.is_object()
            {
                assert_eq!(v["dataDir"], "@DIR@/tuning", "pinned in case {}", c.index);
            }
        }
    }

    #[test]
    fn paths_and_removal() {
        let mut v = json!({"a": [1, {"b": 2}], "c": 3});
        assert_eq!(paths(&v).len(), 6);
        assert!(remove(
            &mut v,
            &[Seg::Key("a".into()), Seg::Idx(1), Seg::Key("b".into())]
        ));
        assert_eq!(v, json!({"a": [1, {}], "c": 3}));
        assert!(!remove(&mut v, &[]));
    }
}
