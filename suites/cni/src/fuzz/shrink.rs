//! Shrinking a failing case to the smallest input that still fails the same way: greedy delta
//! debugging on the JSON tree (drop a field or an array element, empty or shorten a value,
//! simplify a number), on raw bytes (drop chunks, halving), and on the environment (each
//! variable back to its canonical value, or unset). Candidates are tried a batch at a time
//! (the workers run them side by side); the first one, in order, that still fails becomes the
//! new case, until none does or the budget is spent. Every candidate is strictly smaller in a
//! well-founded order, so shrinking ends.

use std::future::Future;
use std::time::Instant;

use serde_json::{Value, json};

use super::case::{CNI_PATH, Case, Flow, NETNS, Stdin, VARS};
use super::generate::{Seg, get_mut, paths, remove};

/// The canonical value of a variable for case `index`.
fn canonical(var: &str, index: u64, command: &str) -> Option<String> {
    Some(match var {
        "CNI_COMMAND" => command.to_owned(),
        "CNI_CONTAINERID" => format!("nfvfz{index:x}"),
        "CNI_NETNS" => NETNS.to_owned(),
        "CNI_IFNAME" => "eth0".to_owned(),
        "CNI_PATH" => CNI_PATH.to_owned(),
        _ => return None,
    })
}

/// How far the values of a document are from zero: numbers by magnitude, `true` as 1, so
/// that `7` shrinks to `0` though both are one byte.
fn weight(v: &Value) -> u64 {
    match v {
        Value::Number(n) => n.as_f64().map_or(0, |f| f.abs().min(1e12) as u64),
        Value::Bool(b) => u64::from(*b),
        Value::Array(a) => a.iter().map(weight).fold(0, u64::saturating_add),
        Value::Object(m) => m.values().map(weight).fold(0, u64::saturating_add),
        _ => 0,
    }
}

/// The well-founded order candidates must descend: raw stdin before JSON, then stdin bytes,
/// then how far the environment is from canonical, then the extra CHECK step, then the
/// values' weight.
pub(crate) fn key(case: &Case) -> (bool, usize, usize, bool, u64) {
    let command = case.var("CNI_COMMAND").unwrap_or("ADD").to_owned();
    let env_distance: usize = VARS
        .iter()
        .map(|var| {
            let want = canonical(var, case.index, &command);
            match (case.var(var), want.as_deref()) {
                (Some(v), Some(w)) if v == w => 0,
                (None, None) => 0,
                (Some(v), _) => 1000 + v.len(),
                (None, Some(_)) => 1000,
            }
        })
        .sum();
    (
        matches!(case.stdin, Stdin::Raw(_)),
        case.stdin.len(),
        env_distance,
        matches!(case.flow, Flow::Lifecycle { check: true }),
        match &case.stdin {
            Stdin::Json(v) => weight(v),
            Stdin::Raw(_) => 0,
        },
    )
}

fn simpler_values(v: &Value) -> Vec<Value> {
    match v {
        Value::String(s) if !s.is_empty() => {
            let chars: Vec<char> = s.chars().collect();
            let mut out = vec![json!("")];
            if chars.len() > 1 {
                out.push(json!(chars[..chars.len() / 2].iter().collect::<String>()));
                out.push(json!(chars[chars.len() / 2..].iter().collect::<String>()));
            }
            out
        }
        Value::Number(n) if n.as_i64() != Some(0) => vec![json!(0), json!(1)],
        Value::Array(a) if !a.is_empty() => {
            let mut out = vec![json!([])];
            if a.len() > 1 {
                out.push(Value::Array(a[..a.len() / 2].to_vec()));
                out.push(Value::Array(a[a.len() / 2..].to_vec()));
                out.push(Value::Array(vec![a[0].clone()]));
            }
            if a.len() == 1 {
                out.push(a[0].clone());
            }
            out
        }
        Value::Object(m) if !m.is_empty() => {
            let mut out = vec![json!({})];
            if m.len() > 1 {
                let half = m.len() / 2;
                out.push(Value::Object(
                    m.iter()
                        .take(half)
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                ));
                out.push(Value::Object(
                    m.iter()
                        .skip(half)
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                ));
            }
            out
        }
        Value::Bool(true) => vec![json!(false)],
        _ => Vec::new(),
    }
}

/// Chunks to drop from raw bytes, as (start, length): everything, then chunks of len/2,
/// len/4 ... 1 (at most 64).
fn raw_chunks(len: usize) -> Vec<(usize, usize)> {
    let mut out = vec![(0, len)];
    let mut chunk = len / 2;
    while chunk >= 1 && out.len() < 64 {
        let mut at = 0;
        while at < len && out.len() < 64 {
            out.push((at, chunk));
            at += chunk;
        }
        chunk /= 2;
    }
    out
}

/// One simplification, described cheaply; [`apply`] makes the candidate.
#[derive(Debug, Clone)]
enum Edit {
    Var(&'static str, Option<String>),
    NoCheck,
    RawAsJson,
    Raw((usize, usize)),
    Root(usize),
    Remove(Vec<Seg>),
    Simplify(Vec<Seg>, usize),
}

fn get<'v>(v: &'v Value, path: &[Seg]) -> Option<&'v Value> {
    path.iter().try_fold(v, |v, seg| match seg {
        Seg::Key(k) => v.get(k.as_str()),
        Seg::Idx(i) => v.get(*i),
    })
}

/// Every simplification of `case`, most powerful first.
fn edits(case: &Case) -> Vec<Edit> {
    let mut out = Vec::new();
    let command = case.var("CNI_COMMAND").unwrap_or("ADD").to_owned();
    for var in VARS {
        let want = canonical(var, case.index, &command);
        if case.var(var) != want.as_deref() {
            out.push(Edit::Var(var, want.clone()));
        }
        if let Some(v) = case.var(var)
            && want.is_none()
        {
            out.push(Edit::Var(var, None));
            let n = v.chars().count();
            out.push(Edit::Var(var, Some(v.chars().take(n / 2).collect())));
            out.push(Edit::Var(var, Some(v.chars().skip(n / 2).collect())));
        }
    }
    if let Flow::Lifecycle { check: true } = case.flow {
        out.push(Edit::NoCheck);
    }
    match &case.stdin {
        Stdin::Raw(bytes) => {
            out.push(Edit::RawAsJson);
            out.extend(raw_chunks(bytes.len()).into_iter().map(Edit::Raw));
        }
        Stdin::Json(doc) => {
            // Halving the document first removes most of a huge input in a few runs.
            out.extend((1..simpler_values(doc).len()).map(Edit::Root));
            let all = paths(doc);
            out.extend(
                all.iter()
                    .filter(|p| !p.is_empty())
                    .cloned()
                    .map(Edit::Remove),
            );
            for path in all {
                let n = get(doc, &path).map_or(0, |node| simpler_values(node).len());
                out.extend((0..n).map(|k| Edit::Simplify(path.clone(), k)));
            }
        }
    }
    out
}

/// The candidate an edit makes, if it is one (strictly smaller by [`key`]).
fn apply(case: &Case, edit: &Edit, pin: &(dyn Fn(&mut Value) + Sync)) -> Option<Case> {
    let mut c = case.clone();
    let json = |v: Value| {
        let mut v = v;
        pin(&mut v);
        Stdin::Json(v)
    };
    match (edit, &case.stdin) {
        (Edit::Var(var, value), _) => c.set_var(var, value.clone()),
        (Edit::NoCheck, _) => c.flow = Flow::Lifecycle { check: false },
        (Edit::RawAsJson, Stdin::Raw(b)) => c.stdin = json(serde_json::from_slice(b).ok()?),
        (Edit::Raw((at, n)), Stdin::Raw(b)) => {
            let mut b = b.clone();
            b.drain((*at).min(b.len())..(at + n).min(b.len()));
            c.stdin = Stdin::Raw(b);
        }
        (Edit::Root(i), Stdin::Json(doc)) => c.stdin = json(simpler_values(doc).swap_remove(*i)),
        (Edit::Remove(path), Stdin::Json(doc)) => {
            let mut d = doc.clone();
            if !remove(&mut d, path) {
                return None;
            }
            c.stdin = json(d);
        }
        (Edit::Simplify(path, k), Stdin::Json(doc)) => {
            let mut d = doc.clone();
            let node = get_mut(&mut d, path)?;
            *node = simpler_values(node).into_iter().nth(*k)?;
            c.stdin = json(d);
        }
        _ => return None,
    }
    (key(&c) < key(case)).then_some(c)
}

/// Every simplification of `case` that is a candidate, in order (for the tests).
#[cfg(test)]
pub(crate) fn candidates(case: &Case, pin: &(dyn Fn(&mut Value) + Sync)) -> Vec<Case> {
    edits(case)
        .iter()
        .filter_map(|e| apply(case, e, pin))
        .collect()
}

/// How a shrink ended.
#[derive(Debug, Clone)]
pub(crate) struct Shrunk {
    pub(crate) case: Case,
    /// Candidates run.
    pub(crate) attempts: usize,
    /// Every candidate of the final case was tried and none failed: a local minimum.
    pub(crate) minimal: bool,
}

/// Shrinks `case` while `fails` (which runs a batch of candidates and says which still fail
/// the same way) finds a smaller one, within `max_attempts` candidates and until `until`.
pub(crate) async fn minimize<F, Fut>(
    case: Case,
    pin: &(dyn Fn(&mut Value) + Sync),
    batch: usize,
    max_attempts: usize,
    until: Instant,
    mut fails: F,
) -> Shrunk
where
    F: FnMut(Vec<Case>) -> Fut,
    Fut: Future<Output = Vec<bool>>,
{
    let mut current = case;
    let mut attempts = 0;
    'outer: loop {
        let mut pending = edits(&current).into_iter();
        loop {
            let chunk: Vec<Case> = pending
                .by_ref()
                .filter_map(|e| apply(&current, &e, pin))
                .take(batch.max(1))
                .collect();
            if chunk.is_empty() {
                break;
            }
            if attempts >= max_attempts || Instant::now() >= until {
                return Shrunk {
                    case: current,
                    attempts,
                    minimal: false,
                };
            }
            attempts += chunk.len();
            let verdicts = fails(chunk.clone()).await;
            if let Some(i) = verdicts.iter().position(|f| *f) {
                current = chunk[i].clone();
                continue 'outer;
            }
        }
        return Shrunk {
            case: current,
            attempts,
            minimal: true,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn run<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn case(stdin: Stdin) -> Case {
        Case {
            index: 7,
            flow: Flow::Lifecycle { check: true },
            env: vec![
                ("CNI_COMMAND".into(), "ADD".into()),
                ("CNI_CONTAINERID".into(), "ü".repeat(300)),
                ("CNI_NETNS".into(), NETNS.into()),
                ("CNI_IFNAME".into(), "eth0".into()),
                ("CNI_ARGS".into(), "IgnoreUnknown=1;K=V;K=V".into()),
                ("CNI_PATH".into(), CNI_PATH.into()),
            ],
            stdin,
        }
    }

    fn shrink(c: Case, fails: impl Fn(&Case) -> bool) -> Shrunk {
        let pin = |v: &mut Value| {
            if let Some(o) = v.as_object_mut() {
                o.insert("dataDir".into(), "@DIR@".into());
            }
        };
        run(minimize(
            c,
            &pin,
            4,
            100_000,
            Instant::now() + Duration::from_secs(60),
            |batch| {
                let v: Vec<bool> = batch.iter().map(&fails).collect();
                async move { v }
            },
        ))
    }

    /// A fake plugin bug: panics when `prevResult.ips[].interface` indexes past `interfaces`.
    fn out_of_range(c: &Case) -> bool {
        let Stdin::Json(v) = &c.stdin else {
            return false;
        };
        let n = v["prevResult"]["interfaces"].as_array().map_or(0, Vec::len) as u64;
        v["prevResult"]["ips"].as_array().is_some_and(|ips| {
            ips.iter()
                .any(|ip| ip["interface"].as_u64().is_some_and(|i| i >= n))
        })
    }

    #[test]
    fn a_json_case_shrinks_to_the_trigger_alone() {
        let doc = json!({"cniVersion": "1.0.0", "name": "nfvfuzz", "type": "tuning", "mtu": 1400,
            "sysctl": {"net.ipv4.conf.eth0.arp_notify": "1"}, "x-vendor": "A".repeat(5000),
            "prevResult": {"cniVersion": "1.0.0", "interfaces": [{"name": "nfvfzh0"}, {"name": "eth0"}],
                "ips": [{"interface": 1, "address": "198.18.41.2/24"}, {"interface": 7, "address": "198.18.41.3/24"}],
                "routes": [{"dst": "0.0.0.0/0"}]}});
        let s = shrink(case(Stdin::Json(doc)), out_of_range);
        assert!(s.minimal);
        assert_eq!(
            s.case.stdin,
            Stdin::Json(json!({"dataDir": "@DIR@", "prevResult": {"ips": [{"interface": 0}]}}))
        );
        assert_eq!(
            s.case.var("CNI_CONTAINERID"),
            Some("nfvfz7"),
            "canonical environment"
        );
        assert_eq!(s.case.var("CNI_ARGS"), None, "unneeded variables dropped");
        assert_eq!(s.case.flow, Flow::Lifecycle { check: false });
    }

    #[test]
    fn raw_bytes_shrink_by_chunks_and_the_environment_keeps_what_matters() {
        let mut bytes = b"{\"cniVersion\":\"1.0.0\",\"name\":\"x\"".to_vec();
        bytes.push(0xff);
        bytes.extend_from_slice(&[b'x'; 300]);
        let fails = |c: &Case| match &c.stdin {
            Stdin::Raw(b) => {
                b.contains(&0xff) && c.var("CNI_ARGS").is_some_and(|a| a.contains('K'))
            }
            Stdin::Json(_) => false,
        };
        let s = shrink(case(Stdin::Raw(bytes)), fails);
        assert_eq!(s.case.stdin, Stdin::Raw(vec![0xff]));
        assert_eq!(s.case.var("CNI_ARGS"), Some("K"));
    }

    #[test]
    fn a_case_that_never_fails_stays_and_budgets_are_kept() {
        let c = case(Stdin::Json(json!({"a": [1, 2, 3]})));
        let pin = |_: &mut Value| {};
        let all = candidates(&c, &pin);
        assert!(
            !all.is_empty() && all.iter().all(|x| key(x) < key(&c)),
            "every candidate is smaller"
        );
        let s = shrink(c.clone(), |_| false);
        assert_eq!(s.case, c);
        assert!(s.minimal);
        let pin = |_: &mut Value| {};
        let s = run(minimize(
            c,
            &pin,
            2,
            3,
            Instant::now() + Duration::from_secs(9),
            |b| {
                let v = vec![true; b.len()];
                async move { v }
            },
        ));
        assert!(s.attempts <= 4 && !s.minimal, "{}", s.attempts);
    }
}
