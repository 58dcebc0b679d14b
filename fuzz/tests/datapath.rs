//! The data path's inputs: the probe client's paired-blocks report (read past a login
//! script's chatter) and its judgement with SLAs; the prober's mode and protocol values.

use nfvi_fuzz::proptest::prelude::*;
use nfvi_fuzz::{DEFAULT_CASES, config, json, seeds, text};
use nfvi_suite_datapath::paired::{PairedPaths, judge_paired, parse_paired};
use serde_json::json as j;

fn report() -> serde_json::Value {
    j!({
        "first": "198.19.25.11:40000", "second": "[fd00::12]:40001", "block": 1000,
        "first_p50_us": [10.0, 10.5, 11.0], "second_p50_us": [20.0, 20.4, 19.8],
        "first_p99_us": [30.0, 31.5, 33.0], "second_p99_us": [60.0, 61.2, 59.4],
        "lost": [0, 2],
        "first_cdf_us": [1.0, 2.0, 3.0], "second_cdf_us": [2.0, 4.0, 6.0]
    })
}

const PATHS: PairedPaths<'static> = PairedPaths {
    what: "node-to-node",
    a: "n1",
    b: "n2",
    sla: ["node-same", "node-cross"],
    properties: &[],
};

proptest! {
    #![proptest_config(config(DEFAULT_CASES))]

    /// The report as text: what parses is judged with and without SLAs.
    #[test]
    fn fuzz_paired_report(t in text(vec![
        serde_json::to_vec_pretty(&report()).unwrap(),
        format!("Last login: today\nwelcome\n{}\n", report()).into_bytes(),
    ])) {
        if let Ok(p) = parse_paired(&t) {
            let _ = judge_paired(&p, &PATHS, [None, None]);
        }
    }

    /// Structure-aware: any field replaced (NaN-like, negative, huge, uneven series), then
    /// judged against SLAs of any value.
    #[test]
    fn fuzz_paired_judge(v in json(vec![report()]), p50 in any::<f64>(), p99 in any::<f64>()) {
        if let Ok(p) = serde_json::from_value(v) {
            let sla: nfvi_suite_datapath::LatencySla =
                serde_json::from_value(j!({"p50_us": p50, "p99_us": p99})).unwrap_or_else(|_| {
                    serde_json::from_value(j!({})).expect("an empty SLA")
                });
            let _ = judge_paired(&p, &PATHS, [Some(&sla), Some(&sla)]);
            let _ = judge_paired(&p, &PATHS, [None, Some(&sla)]);
        }
    }

    #[test]
    fn fuzz_prober_mode_and_proto(t in text(seeds(&["blocking", "spin", "paced", "udp", "tcp"]))) {
        let _ = t.parse::<nfvi_prober::probe::Mode>();
        let _ = t.parse::<nfvi_prober::probe::Proto>();
    }
}
