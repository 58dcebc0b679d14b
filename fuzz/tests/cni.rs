//! CNI plugin output: results (1.0.0 and 0.4.0), errors and VERSION answers, validated
//! against the spec's schemas and read as the assertions read them.

use nfvi_fuzz::proptest::prelude::*;
use nfvi_fuzz::{DEFAULT_CASES, config, json, seeds, text};
use nfvi_suite_cni::result::{
    validate_error, validate_ipam_result, validate_result, validate_version, well_known_code,
};
use serde_json::Value;

const OUTPUTS: &[&str] = &[
    r#"{"cniVersion":"1.0.0","interfaces":[{"name":"cni0","mac":"0a:58:0a:01:02:01"},{"name":"eth0","mac":"0a:58:0a:01:02:03","sandbox":"/var/run/netns/nfv1"}],"ips":[{"address":"10.1.2.3/24","gateway":"10.1.2.1","interface":1},{"address":"fd00::5/64","gateway":"fd00::1","interface":1}],"routes":[{"dst":"0.0.0.0/0","gw":"10.1.2.1"},{"dst":"::/0"}],"dns":{"nameservers":["10.1.2.1"],"domain":"lab","search":["a"],"options":["ndots:2"]}}"#,
    r#"{"cniVersion":"0.4.0","interfaces":[{"name":"eth0","sandbox":"/proc/1/ns/net"}],"ips":[{"version":"4","address":"10.1.2.3/24","gateway":"10.1.2.1","interface":0}],"routes":[],"dns":{}}"#,
    r#"{"cniVersion":"1.0.0","code":7,"msg":"invalid network config","details":"no subnet"}"#,
    r#"{"cniVersion":"1.0.0","supportedVersions":["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0"]}"#,
];

fn values() -> Vec<Value> {
    OUTPUTS
        .iter()
        .map(|t| serde_json::from_str(t).expect("seed is JSON"))
        .collect()
}

fn judge_all(v: &Value) {
    for version in ["1.0.0", "0.4.0", "0.3.1", "", "9.9.9"] {
        for sandbox in [None, Some("/var/run/netns/nfv1"), Some("")] {
            let _ = validate_result(v, version, sandbox);
        }
        let _ = validate_ipam_result(v, version);
    }
    let _ = validate_error(v);
    let _ = validate_version(v);
    if let Some(c) = v["code"].as_u64() {
        let _ = well_known_code(c);
    }
    let _ = nfvi_suite_cni::fuzzing::read_result(v);
}

proptest! {
    #![proptest_config(config(DEFAULT_CASES))]

    /// Plugin stdout as bytes: what parses as JSON goes through every reader.
    #[test]
    fn fuzz_cni_output_text(t in text(seeds(OUTPUTS))) {
        if let Ok(v) = serde_json::from_str::<Value>(&t) {
            judge_all(&v);
        }
    }

    /// Structure-aware: any node of a real result replaced by any JSON value (wrong
    /// types, hostile numbers, addresses of the other family or past the prefix length).
    #[test]
    fn fuzz_cni_result(v in json(values())) {
        judge_all(&v);
        let (r, names) = nfvi_suite_cni::fuzzing::read_result(&v);
        prop_assert!(names.len() <= r.interfaces.as_ref().map_or(0, Vec::len));
    }
}

#[test]
fn seeds_are_valid_results() {
    let v = values();
    let problems = validate_result(&v[0], "1.0.0", Some("/var/run/netns/nfv1"));
    assert!(problems.is_empty(), "{problems:?}");
    assert!(validate_error(&v[2]).is_empty());
}
