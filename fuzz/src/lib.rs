//! Strategies shared by the property/fuzz targets under `tests/` (issue #14, "no panic on
//! any input"): arbitrary bytes, and structure-aware mutations of real seeds (truncation at
//! any point, byte flips, hostile tokens inserted, ranges deleted or repeated, two seeds
//! spliced). A parser under test must return (`Ok` or `Err`), never panic: proptest catches
//! a panic, shrinks the input and fails the test.
//!
//! Cases per target: `PROPTEST_CASES` when set (`cargo xtask fuzz --cases N`), else the
//! target's own default (256, lower for slow parsers) so that the crate's run stays bounded
//! in CI.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;
use serde_json::Value;

pub use proptest;

/// The default number of cases of a target.
pub const DEFAULT_CASES: u32 = 256;

/// `PROPTEST_CASES` when set to a number, else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// A proptest configuration with [`cases`]`(default)` cases; a failure's seed is persisted
/// beside the test file (`tests/<name>.proptest-regressions`, committed) and replayed first.
pub fn config(default: u32) -> Config {
    Config {
        cases: cases(default),
        max_shrink_iters: 2048,
        ..Config::default()
    }
}

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("fuzz/ lives in the workspace")
        .to_owned()
}

/// The first `max` bytes of a file of the workspace (`rel` from its root), as a seed.
///
/// # Panics
/// When the file cannot be read: a missing seed is a broken test, not a finding.
pub fn seed_file(rel: &str, max: usize) -> Vec<u8> {
    let path = root().join(rel);
    let mut bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("seed {}: {e}", path.display()));
    bytes.truncate(max);
    bytes
}

/// Tokens that break parsers: numbers past every integer type, NaN and infinities, negative
/// and fractional values where counts are expected, multi-byte UTF-8 (a byte index inside a
/// character), NUL and control bytes, quoting and escaping, deep nesting, long lines.
pub fn hostile_tokens() -> Vec<Vec<u8>> {
    let mut t: Vec<Vec<u8>> = [
        "99999999999999999999999999999",
        "18446744073709551616",
        "18446744073709551615",
        "4294967296",
        "65536",
        "-1",
        "-9223372036854775809",
        "0",
        "-0",
        "1e309",
        "-1e309",
        "NaN",
        "nan",
        "inf",
        "-inf",
        "0.0000000001",
        "0x",
        "ffffffffffffffff",
        "é",
        "ü\u{301}",
        "💥",
        "\u{202e}",
        "\u{200b}",
        "\u{feff}",
        "\u{fffd}",
        "\0",
        "\r\n",
        "\n",
        "\r",
        "\t",
        " ",
        "\"",
        "'",
        "'\\''",
        "\\",
        "\\u0000",
        "\\ud800",
        "${HOME}",
        "$(id)",
        "`id`",
        "=",
        ":",
        ";",
        ",",
        "#",
        "*",
        "**",
        "?",
        "[",
        "]",
        "{",
        "}",
        "<",
        ">",
        "/",
        "../../",
        "%00",
        "&amp;",
        "&#0;",
        "&#x110000;",
        "&bogus;",
        "]]>",
        "<![CDATA[",
        "<!DOCTYPE x [<!ENTITY a \"aaaaaaaa\">]>",
        "<?xml version=\"1.0\"?>",
        "---\n",
        "&anchor ",
        "*anchor",
        "!!binary ",
        "-----BEGIN SSH SIGNATURE-----\n",
        "-----END SSH SIGNATURE-----\n",
        "null",
        "true",
        "[]",
        "{}",
        "255.255.255.256/33",
        "::/129",
        "fe80::1%eth0",
        "10.0.0.1/",
        "/24",
        "password=hunter2",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    t.push(b"[".repeat(5000));
    t.push(b"{\"a\":".repeat(2000));
    t.push(b"<a>".repeat(2000));
    t.push(b"- ".repeat(2000));
    t.push(b"A".repeat(70_000));
    t.push("é".repeat(3000).into_bytes());
    t.push(vec![0xff, 0xfe, 0xc0, 0x80]);
    t.push(vec![0xb3, 0x29, 0x01, 0xff, 0xff, 0xff, 0xff]);
    t.push(vec![0x1f, 0x8b, 0x08, 0x00]);
    t.push(u32::MAX.to_be_bytes().to_vec());
    t.push(0x7fff_ffffu32.to_be_bytes().to_vec());
    t
}

/// One change to an input.
#[derive(Clone, Debug)]
pub enum Mutation {
    /// Keep the bytes before this point.
    Truncate(Index),
    /// XOR one byte with a non-zero mask.
    Flip(Index, u8),
    /// Insert a hostile token.
    Insert(Index, Index),
    /// Insert a run of one random byte.
    Bytes(Index, u8, u8),
    /// Remove a range.
    Delete(Index, Index),
    /// Repeat a range a few times.
    Repeat(Index, Index, u8),
    /// Replace the tail from one point by the tail of another seed from another point.
    Splice(Index, Index, Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => any::<Index>().prop_map(Mutation::Truncate),
        3 => (any::<Index>(), 1u8..).prop_map(|(i, m)| Mutation::Flip(i, m)),
        4 => (any::<Index>(), any::<Index>()).prop_map(|(i, t)| Mutation::Insert(i, t)),
        1 => (any::<Index>(), any::<u8>(), 1u8..16).prop_map(|(i, b, n)| Mutation::Bytes(i, b, n)),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Delete(a, b)),
        1 => (any::<Index>(), any::<Index>(), 2u8..8).prop_map(|(a, b, n)| Mutation::Repeat(a, b, n)),
        2 => (any::<Index>(), any::<Index>(), any::<Index>())
            .prop_map(|(s, a, b)| Mutation::Splice(s, a, b)),
    ]
}

/// `(start, end)` of a range of `len` bytes from two indices, at most 4 KiB long.
fn range(len: usize, a: &Index, b: &Index) -> (usize, usize) {
    if len == 0 {
        return (0, 0);
    }
    let start = a.index(len);
    let end = (start + 1 + b.index(4096)).min(len);
    (start, end)
}

/// Applies `muts` to a copy of `seed`, with `seeds` to splice from.
pub fn apply(seeds: &[Vec<u8>], seed: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let tokens = hostile_tokens();
    let mut out = seed.to_vec();
    for m in muts {
        let at = |i: &Index, len: usize| i.index(len + 1);
        match m {
            Mutation::Truncate(i) => out.truncate(at(i, out.len())),
            Mutation::Flip(i, mask) => {
                if !out.is_empty() {
                    let p = i.index(out.len());
                    out[p] ^= mask;
                }
            }
            Mutation::Insert(i, t) => {
                let p = at(i, out.len());
                let token = &tokens[t.index(tokens.len())];
                out.splice(p..p, token.iter().copied());
            }
            Mutation::Bytes(i, b, n) => {
                let p = at(i, out.len());
                out.splice(p..p, std::iter::repeat_n(*b, usize::from(*n)));
            }
            Mutation::Delete(a, b) => {
                let (s, e) = range(out.len(), a, b);
                out.drain(s..e);
            }
            Mutation::Repeat(a, b, n) => {
                let (s, e) = range(out.len(), a, b);
                let piece = out[s..e].to_vec();
                for _ in 1..*n {
                    out.splice(e..e, piece.iter().copied());
                }
            }
            Mutation::Splice(s, a, b) => {
                let other = &seeds[s.index(seeds.len())];
                let cut = at(a, out.len());
                let from = at(b, other.len());
                out.truncate(cut);
                out.extend_from_slice(&other[from..]);
            }
        }
    }
    out
}

/// Inputs for a byte parser: arbitrary bytes, arbitrary text, hostile tokens alone, the
/// seeds as they are, and (most often) seeds mutated one to six times.
///
/// # Panics
/// When `seeds` is empty.
pub fn bytes(seeds: Vec<Vec<u8>>) -> BoxedStrategy<Vec<u8>> {
    assert!(!seeds.is_empty(), "a target needs at least one seed");
    let seeds = Arc::new(seeds);
    let n = seeds.len();
    let pick = Arc::clone(&seeds);
    let mutate = Arc::clone(&seeds);
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..512),
        1 => any::<String>().prop_map(String::into_bytes),
        1 => proptest::sample::select(hostile_tokens()),
        1 => (0..n).prop_map(move |i| pick[i].clone()),
        8 => (0..n, proptest::collection::vec(mutation(), 1..6))
            .prop_map(move |(i, muts)| apply(&mutate, &mutate[i], &muts)),
    ]
    .boxed()
}

/// Inputs for a text parser: [`bytes`] read as UTF-8, invalid sequences replaced.
pub fn text(seeds: Vec<Vec<u8>>) -> BoxedStrategy<String> {
    bytes(seeds)
        .prop_map(|b| String::from_utf8_lossy(&b).into_owned())
        .boxed()
}

/// Inline text seeds.
pub fn seeds(texts: &[&str]) -> Vec<Vec<u8>> {
    texts.iter().map(|t| t.as_bytes().to_vec()).collect()
}

/// JSON values: every shape, nested a few levels, with hostile numbers and strings and the
/// keys the parsers under test look for (so that objects reach real code paths).
pub fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        proptest::sample::select(hostile_tokens())
            .prop_map(|t| Value::String(String::from_utf8_lossy(&t).into_owned())),
        proptest::sample::select(KEYS).prop_map(|s| Value::String(s.to_owned())),
        proptest::sample::select(ADDRESSES).prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec(
                (
                    prop_oneof![
                        4 => proptest::sample::select(KEYS).prop_map(str::to_owned),
                        1 => any::<String>(),
                    ],
                    inner
                ),
                0..8
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
    .boxed()
}

/// Keys the parsers and judges under test look for.
pub const KEYS: &[&str] = &[
    "cniVersion",
    "interfaces",
    "ips",
    "routes",
    "dns",
    "address",
    "gateway",
    "interface",
    "name",
    "mac",
    "sandbox",
    "dst",
    "gw",
    "code",
    "msg",
    "details",
    "version",
    "versions",
    "id",
    "status",
    "values",
    "links",
    "href",
    "token",
    "catalog",
    "endpoints",
    "type",
    "url",
    "region",
    "region_id",
    "services",
    "agents",
    "state",
    "zone",
    "host",
    "binary",
    "alive",
    "admin_state_up",
    "agent_type",
    "message",
    "major",
    "minor",
    "gitVersion",
    "kubeletVersion",
    "nodeInfo",
    "conditions",
    "addresses",
    "podCIDRs",
    "capacity",
    "allocatable",
    "labels",
    "metadata",
    "spec",
    "kubeletconfig",
    "cpuManagerPolicy",
    "topologyManagerPolicy",
    "reservedSystemCPUs",
    "ifname",
    "family",
    "addr_info",
    "local",
    "scope",
    "prefixlen",
    "State",
    "Status",
    "Running",
    "Pid",
    "Config",
    "Image",
    "NetworkSettings",
    "Networks",
    "IPAddress",
    "Mounts",
    "HostConfig",
    "Privileged",
    "CapAdd",
    "SecurityOpt",
    "kind",
    "items",
    "Controls",
    "tests",
    "results",
    "test_number",
    "test_desc",
    "total_pass",
    "total_fail",
    "total_warn",
    "total_info",
    "Totals",
    "schema_version",
    "checks",
    "outcome",
    "requirements",
    "waiver",
    "node",
    "event",
];

/// Addresses, prefixes and near misses.
pub const ADDRESSES: &[&str] = &[
    "10.1.2.3/24",
    "10.1.2.1",
    "fd00::5/64",
    "fd00::1",
    "0.0.0.0/0",
    "::/0",
    "10.1.2.3/33",
    "fd00::5/129",
    "10.1.2.3",
    "256.1.1.1/24",
    "10.1.2.3/-1",
    "",
    "/",
    "::",
    "1.2.3.4/024",
    "fe80::1%eth0/64",
];

/// Structure-aware mutations of JSON seeds: one to four nodes (any depth, the root too)
/// replaced by an arbitrary [`json_value`].
///
/// # Panics
/// When `seeds` is empty.
pub fn json(seeds: Vec<Value>) -> BoxedStrategy<Value> {
    assert!(!seeds.is_empty(), "a target needs at least one seed");
    let seeds = Arc::new(seeds);
    let n = seeds.len();
    prop_oneof![
        1 => json_value(),
        4 => (0..n, proptest::collection::vec((any::<Index>(), json_value()), 1..4)).prop_map(
            move |(i, edits)| {
                let mut v = seeds[i].clone();
                for (at, new) in edits {
                    let count = nodes(&v);
                    replace_nth(&mut v, at.index(count), new);
                }
                v
            }
        ),
    ]
    .boxed()
}

fn nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(nodes).sum(),
        Value::Object(o) => o.values().map(nodes).sum(),
        _ => 0,
    }
}

/// Replaces the `n`th node in pre-order; returns how many nodes were passed.
fn replace_nth(v: &mut Value, n: usize, new: Value) -> usize {
    if n == 0 {
        *v = new;
        return usize::MAX;
    }
    let mut seen = 1;
    let children: Vec<&mut Value> = match v {
        Value::Array(a) => a.iter_mut().collect(),
        Value::Object(o) => o.values_mut().collect(),
        _ => Vec::new(),
    };
    for c in children {
        let k = nodes(c);
        if n - seen < k {
            replace_nth(c, n - seen, new);
            return usize::MAX;
        }
        seen += k;
    }
    seen
}
