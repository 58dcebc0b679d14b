//! kube-bench `--json` output, both shapes: `{"Controls":[...],"Totals":{...}}` and, with
//! `--nototals` or from older releases, a bare list of controls. serde_json bounds the depth
//! (128) and gives line:column; the totals each file declares are checked against its checks.

use std::path::Path;

use serde::Deserialize;

use super::{IngestError, ParseError, provenance};
use crate::model::{BenchControl, BenchRun, BenchStatus, Ingested, Recorded, Report};

#[derive(Deserialize)]
struct Top {
    #[serde(rename = "Controls")]
    controls: Vec<Controls>,
    #[serde(rename = "Totals")]
    totals: Option<Totals>,
}

#[derive(Deserialize)]
struct Totals {
    total_pass: usize,
    total_fail: usize,
    total_warn: usize,
    total_info: usize,
}

#[derive(Deserialize)]
struct Controls {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    detected_version: Option<String>,
    #[serde(default)]
    node_type: String,
    #[serde(default)]
    tests: Vec<Group>,
    total_pass: usize,
    total_fail: usize,
    total_warn: usize,
    total_info: usize,
}

#[derive(Deserialize)]
struct Group {
    #[serde(default)]
    desc: String,
    #[serde(default)]
    results: Vec<Check>,
}

#[derive(Deserialize)]
struct Check {
    test_number: String,
    test_desc: String,
    status: String,
    #[serde(default)]
    scored: bool,
}

fn json_error(e: &serde_json::Error, shape: &str) -> ParseError {
    let what = if e.to_string().contains("missing field `Controls`") {
        format!("JSON, but not kube-bench output: expected {shape}")
    } else {
        format!("expected kube-bench JSON ({shape}): {e}")
    };
    ParseError::at(format!("line {}:{}", e.line(), e.column()), what)
}

/// Parses kube-bench JSON.
pub fn parse(data: &[u8]) -> Result<BenchRun, ParseError> {
    let first = data.iter().find(|b| !b.is_ascii_whitespace());
    let shape = r#"{"Controls":[...],"Totals":{...}} or a list of controls"#;
    let (controls, totals) = if first == Some(&b'[') {
        let list: Vec<Controls> =
            serde_json::from_slice(data).map_err(|e| json_error(&e, shape))?;
        (list, None)
    } else {
        let top: Top = serde_json::from_slice(data).map_err(|e| json_error(&e, shape))?;
        (top.controls, top.totals)
    };
    if controls.is_empty() {
        return Err(ParseError::whole("kube-bench JSON with no controls"));
    }
    let mut run = BenchRun::default();
    for c in controls {
        run.benchmark = run.benchmark.or(c.version);
        run.detected_version = run.detected_version.or(c.detected_version);
        let before = run.controls.len();
        for g in c.tests {
            for r in g.results {
                let status = match r.status.as_str() {
                    "PASS" => BenchStatus::Pass,
                    "FAIL" => BenchStatus::Fail,
                    "WARN" => BenchStatus::Warn,
                    "INFO" => BenchStatus::Info,
                    other => {
                        return Err(ParseError::whole(format!(
                            "check {} has status {other:?}; expected PASS, FAIL, WARN or INFO",
                            r.test_number
                        )));
                    }
                };
                run.controls.push(BenchControl {
                    number: r.test_number,
                    desc: r.test_desc,
                    group: g.desc.clone(),
                    node_type: c.node_type.clone(),
                    status,
                    scored: r.scored,
                });
            }
        }
        let mine = BenchRun {
            controls: run.controls[before..].to_vec(),
            ..BenchRun::default()
        };
        let declared = [c.total_pass, c.total_fail, c.total_warn, c.total_info];
        if mine.totals() != declared {
            return Err(ParseError::whole(format!(
                "the {} controls declare pass/fail/warn/info {declared:?} but hold {:?}: edited or truncated?",
                c.node_type,
                mine.totals()
            )));
        }
    }
    if let Some(t) = totals {
        let declared = [t.total_pass, t.total_fail, t.total_warn, t.total_info];
        if run.totals() != declared {
            return Err(ParseError::whole(format!(
                "Totals declare pass/fail/warn/info {declared:?} but the checks hold {:?}",
                run.totals()
            )));
        }
    }
    Ok(run)
}

/// Ingests a kube-bench JSON file.
pub fn ingest(path: &Path, data: &[u8]) -> Result<Ingested, IngestError> {
    let run = parse(data).map_err(|e| e.in_file(path))?;
    let mut p = provenance("kube-bench", path, data);
    p.tool_version = None;
    Ok(Ingested {
        input: path.to_owned(),
        provenance: vec![p],
        run_at: None,
        run_at_source: "mtime",
        recorded: Recorded {
            k8s_version: run.detected_version.clone(),
            version_source: run
                .detected_version
                .as_ref()
                .map(|_| "kube-bench detected_version".to_owned()),
            cluster_uid: None,
        },
        report: Report::KubeBench(run),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_shapes() {
        let one = r#"{"id":"4","version":"cis-1.23","node_type":"node","tests":[{"desc":"Kubelet","results":[
            {"test_number":"4.2.1","test_desc":"Ensure that the --anonymous-auth argument is set to false","status":"PASS","scored":true}]}],
            "total_pass":1,"total_fail":0,"total_warn":0,"total_info":0}"#;
        let obj = format!(
            r#"{{"Controls":[{one}],"Totals":{{"total_pass":1,"total_fail":0,"total_warn":0,"total_info":0}}}}"#
        );
        let list = format!("[{one}]");
        for text in [obj, list] {
            let r = parse(text.as_bytes()).unwrap();
            assert_eq!(r.totals(), [1, 0, 0, 0]);
            assert_eq!(r.benchmark.as_deref(), Some("cis-1.23"));
        }
    }

    #[test]
    fn other_json_and_bad_totals_are_refused() {
        let e = parse(br#"{"foo": 1}"#).unwrap_err();
        assert!(e.message.contains("not kube-bench"), "{e:?}");
        let e = parse(br#"{"Controls":[{"node_type":"node","tests":[],"total_pass":3,"total_fail":0,"total_warn":0,"total_info":0}]}"#).unwrap_err();
        assert!(e.message.contains("declare"), "{e:?}");
        let deep = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
        let e = parse(deep.as_bytes()).unwrap_err();
        assert!(e.at.is_some(), "{e:?}");
    }
}
