//! The universal contract, as a pure function of what one case did: every invocation that
//! fails exits non-zero with a valid error object on stdout (a Go panic, a stack trace or no
//! JSON is a violation), a successful ADD prints a result valid for the requested version, a
//! success prints no error object, stdout is never more than one JSON document, nothing is
//! left behind, and every call ends within its deadline.

use serde_json::Value;

use crate::lab::Stdout;
use crate::result::{validate_error, validate_ipam_result, validate_result, well_known_code};

/// One invocation as the judge sees it.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    /// `ADD`, `CHECK`, `DEL` (a lifecycle step) or whatever CNI_COMMAND was.
    pub(crate) command: String,
    /// The request's `cniVersion`, when it was a string.
    pub(crate) version: Option<String>,
    /// Whether the request carried no prevResult, or one valid for its own version: only
    /// then is an invalid result the plugin's fault rather than garbage passed through.
    pub(crate) prev_valid: bool,
    /// An IPAM plugin called directly (abbreviated result).
    pub(crate) ipam: bool,
    pub(crate) rc: Option<i32>,
    pub(crate) timed_out: bool,
    pub(crate) stdout: Stdout,
    pub(crate) stderr: String,
}

impl Call {
    fn ok(&self) -> bool {
        self.rc == Some(0) && !self.timed_out
    }
}

/// Which part of the contract a violation breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Clause {
    /// A Go panic, a runtime fatal error or death by a signal.
    Crash,
    /// A failure without a valid error object on stdout.
    ErrorObject,
    /// An error code in the reserved range 1-99 that has no meaning.
    ReservedCode,
    /// stdout is not empty and not exactly one JSON document.
    Stdout,
    /// A successful ADD whose result is not valid for the requested version.
    Result,
    /// A success that printed an error object.
    SuccessWithError,
    /// Links, addresses, routes or IPAM files left after the lifecycle.
    Residue,
    /// The plugin did not end within its deadline.
    Deadline,
}

impl Clause {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Clause::Crash => "crash",
            Clause::ErrorObject => "error-object",
            Clause::ReservedCode => "reserved-code",
            Clause::Stdout => "stdout",
            Clause::Result => "result",
            Clause::SuccessWithError => "success-with-error",
            Clause::Residue => "residue",
            Clause::Deadline => "deadline",
        }
    }
}

/// One broken clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    pub(crate) clause: Clause,
    /// Which invocation of the case (its command).
    pub(crate) step: String,
    /// What was seen.
    pub(crate) detail: String,
    /// What makes two violations the same bug: the clause, the step and the gist (the panic
    /// site, the kind of residue), never addresses or names that vary from case to case.
    pub(crate) signature: String,
}

/// The first line of a Go panic and the first frame in the plugin's own code.
fn crash_site(stderr: &str) -> Option<String> {
    let head = stderr
        .lines()
        .find(|l| l.starts_with("panic:") || l.starts_with("fatal error:"))?;
    let head = head.split(" [recovered]").next().unwrap_or(head);
    let frame = stderr
        .lines()
        .find(|l| l.starts_with("main.") || l.contains("/plugins/"))
        .map(|l| l.split('(').next().unwrap_or(l).trim().to_owned());
    Some(match frame {
        Some(f) => format!("{head} in {f}"),
        None => head.to_owned(),
    })
}

fn is_error_object(v: &Value) -> bool {
    v.get("code").is_some()
        && v.get("msg").is_some()
        && v.get("cniVersion").is_none_or(Value::is_string)
        && v.get("interfaces").is_none()
        && v.get("ips").is_none()
}

/// Legacy (0.1.0/0.2.0) results: `ip4`/`ip6`/`dns` only.
fn legacy_result_problems(v: &Value) -> Vec<String> {
    let Some(o) = v.as_object() else {
        return vec!["the result is not an object".to_owned()];
    };
    o.keys()
        .filter(|k| !matches!(k.as_str(), "cniVersion" | "ip4" | "ip6" | "dns"))
        .map(|k| format!("key {k} is not in a 0.2.0 result"))
        .collect()
}

/// The violations of one invocation.
pub(crate) fn judge_call(call: &Call, supported: &[String]) -> Vec<Violation> {
    let mut out = Vec::new();
    let step = call.command.clone();
    let mut push = |clause: Clause, detail: String, gist: String| {
        out.push(Violation {
            clause,
            step: step.clone(),
            detail,
            signature: format!("{} {} {gist}", clause.as_str(), step),
        });
    };
    if call.timed_out {
        push(
            Clause::Deadline,
            "still running at the deadline; killed".into(),
            String::new(),
        );
        return out;
    }
    if let Some(site) = crash_site(&call.stderr) {
        // One bug whichever command reached it: the signature is the site alone.
        out.push(Violation {
            clause: Clause::Crash,
            step: step.clone(),
            detail: format!("exit {:?}; {site}", call.rc),
            signature: format!("crash {site}"),
        });
        return out;
    }
    if call.rc.is_none() {
        push(Clause::Crash, "killed by a signal".into(), "signal".into());
        return out;
    }
    if let Stdout::Garbage(what) = &call.stdout {
        push(
            Clause::Stdout,
            format!("stdout is not one JSON document ({what})"),
            String::new(),
        );
        return out;
    }
    let json = match &call.stdout {
        Stdout::Json(v) => Some(v),
        _ => None,
    };
    if !call.ok() {
        match json {
            None => push(
                Clause::ErrorObject,
                format!("exit {:?} with empty stdout", call.rc),
                "empty".into(),
            ),
            Some(v) => {
                let problems = validate_error(v);
                if !problems.is_empty() {
                    push(
                        Clause::ErrorObject,
                        format!(
                            "exit {:?}, stdout {} is not an error object: {}",
                            call.rc,
                            short(v),
                            problems.join("; ")
                        ),
                        "invalid".into(),
                    );
                } else if let Some(code) = v.get("code").and_then(Value::as_u64)
                    && (1..100).contains(&code)
                    && well_known_code(code).is_none()
                {
                    push(
                        Clause::ReservedCode,
                        format!("code {code} is reserved and has no meaning"),
                        code.to_string(),
                    );
                }
            }
        }
        return out;
    }
    // Success.
    if let Some(v) = json
        && is_error_object(v)
    {
        push(
            Clause::SuccessWithError,
            format!("exit 0 with the error object {}", short(v)),
            String::new(),
        );
        return out;
    }
    if call.command != "ADD" || !call.prev_valid {
        return out;
    }
    let Some(result) = json else {
        push(
            Clause::Result,
            "ADD exited 0 with empty stdout".into(),
            "empty".into(),
        );
        return out;
    };
    let problems = match call.version.as_deref() {
        // libcni reads an absent or empty cniVersion as 0.1.0.
        None | Some("") => legacy_result_problems(result),
        Some(v) if !supported.iter().any(|s| s == v) => {
            vec![format!(
                "ADD succeeded at cniVersion {v:?}, which the plugin's VERSION does not list"
            )]
        }
        Some("0.1.0" | "0.2.0") => legacy_result_problems(result),
        Some(v) if call.ipam => validate_ipam_result(result, v),
        Some(v) => validate_result(result, v, None),
    };
    // Whether a gateway lies in its subnet is the configuration's business (the fuzzer
    // writes both); the contract is the result's shape.
    let problems: Vec<String> = problems
        .into_iter()
        .filter(|p| !p.contains("is outside the subnet"))
        .collect();
    if let Some(first) = problems.first() {
        let gist = first.split(':').next().unwrap_or(first).to_owned();
        push(
            Clause::Result,
            format!("result {} invalid: {}", short(result), problems.join("; ")),
            gist,
        );
    }
    out
}

/// A residue list as one violation.
pub(crate) fn judge_residue(after: &str, residue: &[String]) -> Option<Violation> {
    if residue.is_empty() {
        return None;
    }
    let kinds: std::collections::BTreeSet<&str> = residue
        .iter()
        .map(|r| r.split(' ').next().unwrap_or(""))
        .collect();
    Some(Violation {
        clause: Clause::Residue,
        step: after.to_owned(),
        detail: format!("left behind {after}: {}", residue.join(", ")),
        signature: format!(
            "residue {after} {}",
            kinds.into_iter().collect::<Vec<_>>().join(",")
        ),
    })
}

fn short(v: &Value) -> String {
    nfvi_harness::truncate_chars(&v.to_string(), 240)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(command: &str, rc: i32, stdout: Stdout, stderr: &str) -> Call {
        Call {
            command: command.into(),
            version: Some("1.0.0".into()),
            prev_valid: true,
            ipam: false,
            rc: Some(rc),
            timed_out: false,
            stdout,
            stderr: stderr.into(),
        }
    }

    const PANIC: &str = "panic: runtime error: invalid memory address or nil pointer dereference\n[signal SIGSEGV]\n\ngoroutine 1 [running]:\ngithub.com/containernetworking/cni/pkg/types.PrintResult({0x0?, 0x0?})\n\tgithub.com/containernetworking/cni/pkg/types/types.go:104 +0x23\nmain.cmdAdd(0xc0000bc770)\n";

    #[test]
    fn the_contract_table() {
        let all = vec!["0.4.0".to_owned(), "1.0.0".to_owned()];
        let good = json!({"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": "/x"}], "ips": [{"interface": 0, "address": "198.18.0.2/24"}]});
        #[rustfmt::skip]
        let rows: Vec<(&str, Call, Option<Clause>)> = vec![
            ("error object", call("ADD", 1, Stdout::Json(json!({"code": 7, "msg": "bad"})), ""), None),
            ("plugin code", call("DEL", 1, Stdout::Json(json!({"code": 999, "msg": "x"})), ""), None),
            ("valid result", call("ADD", 0, Stdout::Json(good.clone()), ""), None),
            ("DEL prints nothing", call("DEL", 0, Stdout::Empty, ""), None),
            ("VERSION", call("VERSION", 0, Stdout::Json(json!({"cniVersion": "1.0.0", "supportedVersions": ["1.0.0"]})), ""), None),
            ("go panic", call("ADD", 2, Stdout::Empty, PANIC), Some(Clause::Crash)),
            ("no json", call("ADD", 1, Stdout::Empty, "oops"), Some(Clause::ErrorObject)),
            ("text", call("ADD", 1, Stdout::Garbage("not JSON".into()), ""), Some(Clause::Stdout)),
            ("code as text", call("ADD", 1, Stdout::Json(json!({"code": "7", "msg": "x"})), ""), Some(Clause::ErrorObject)),
            ("reserved code", call("ADD", 1, Stdout::Json(json!({"code": 42, "msg": "x"})), ""), Some(Clause::ReservedCode)),
            ("error on success", call("CHECK", 0, Stdout::Json(json!({"code": 4, "msg": "x"})), ""), Some(Clause::SuccessWithError)),
            ("bad result", call("ADD", 0, Stdout::Json(json!({"cniVersion": "1.0.0", "ips": [{"version": "4", "address": "198.18.0.2/24"}]})), ""), Some(Clause::Result)),
            ("empty ADD", call("ADD", 0, Stdout::Empty, ""), Some(Clause::Result)),
        ];
        for (name, c, want) in rows {
            let got = judge_call(&c, &all);
            assert_eq!(got.first().map(|v| v.clause), want, "{name}: {got:?}");
        }
        let mut timed = call("ADD", 0, Stdout::Empty, "");
        timed.timed_out = true;
        assert_eq!(judge_call(&timed, &all)[0].clause, Clause::Deadline);
        let mut killed = call("ADD", 0, Stdout::Empty, "");
        killed.rc = None;
        assert_eq!(judge_call(&killed, &all)[0].clause, Clause::Crash);
    }

    #[test]
    fn garbage_in_is_not_the_plugins_fault_but_unknown_versions_are() {
        let all = vec!["1.0.0".to_owned()];
        let mut c = call(
            "ADD",
            0,
            Stdout::Json(
                json!({"cniVersion": "1.0.0", "ips": [{"interface": -1, "address": "x"}]}),
            ),
            "",
        );
        c.prev_valid = false;
        assert!(judge_call(&c, &all).is_empty());
        let mut v = call("ADD", 0, Stdout::Json(json!({"cniVersion": "9.9.9"})), "");
        v.version = Some("9.9.9".into());
        assert_eq!(judge_call(&v, &all)[0].clause, Clause::Result);
        let mut legacy = call(
            "ADD",
            0,
            Stdout::Json(json!({"cniVersion": "0.2.0", "ip4": {}})),
            "",
        );
        legacy.version = None;
        assert!(judge_call(&legacy, &all).is_empty());
    }

    #[test]
    fn panic_signatures_name_the_site_not_the_addresses() {
        let a = judge_call(&call("ADD", 2, Stdout::Empty, PANIC), &[]);
        let b = judge_call(
            &call(
                "ADD",
                2,
                Stdout::Empty,
                &PANIC.replace("0xc0000bc770", "0xc000012345"),
            ),
            &[],
        );
        assert_eq!(a[0].signature, b[0].signature);
        assert!(a[0].signature.contains("main.cmdAdd"), "{}", a[0].signature);
    }

    #[test]
    fn residue_is_one_violation_by_kind() {
        assert!(judge_residue("after DEL", &[]).is_none());
        let v = judge_residue(
            "after DEL",
            &[
                "container-link eth0".into(),
                "file ipam/nfvfuzz/198.18.42.10".into(),
            ],
        )
        .unwrap();
        assert_eq!(v.signature, "residue after DEL container-link,file");
    }
}
