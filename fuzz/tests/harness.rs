//! The harness's own inputs: the target file, waivers, results.json, the node agent's event
//! lines, `--filter`/`--skip` globs, CIDRs in the target file, requirement IDs and the
//! reference model's TOML, and CLI durations, counts and sizes.

use std::path::Path;
use std::sync::LazyLock;

use nfvi_fuzz::proptest::prelude::*;
use nfvi_fuzz::{DEFAULT_CASES, config, json, seed_file, seeds, text};
use nfvi_harness::Target;
use nfvi_harness::results::RunResults;
use nfvi_harness::waiver::Waivers;

static AREAS: LazyLock<nfvi_harness::Areas> = LazyLock::new(nfvi_verify::areas);

const TARGETS: &[&str] = &[
    "[host]\nmin_kernel = \"5.10\"\n",
    "[cni]\nplugin_dirs = [\"/opt/cni/bin\"]\nplugins = [\"bridge\", \"macvlan\"]\nsubnet = \"198.18.5.0/24\"\n",
    "[kubernetes]\nkubeconfig = \"/root/.kube/config\"\n[openstack]\ncloud = \"kolla\"\n",
    "[datapath]\n[datapath.sla.veth]\np99_us = 250.5\n",
    "[fleet]\ninventory = \"multinode\"\nroles = [\"compute\"]\n",
];

const WAIVERS: &[&str] = &[
    "[[waiver]]\nid = \"W-1\"\nchecks = [\"host.*\"]\nreason = \"lab VM\"\nowner = \"lab@example.com\"\nticket = \"https://tracker.example.com/LAB-1\"\nexpires = 2099-12-31\n\n[[waiver]]\nid = \"W-old\"\nchecks = [\"cni.?\"]\nreason = \"r\"\nowner = \"o\"\nexpires = 2020-01-01\nnode = \"compute01\"\n",
    "[[waiver]]\nchecks = [\"\u{202e}*\"]\nreason = \"r\"\nowner = \"o\"\nexpires = 9999-12-31\nnode = \"\"\nsubject = \"é\"\n",
];

/// Ledger lines as a Tempest run writes them, one carried over, and a torn last line.
const LEDGER: &[&str] = &[
    "{\"ledger\":1,\"run_id\":\"20261130T000253Z-df2d23\",\"target\":\"5e1c0a\"}\n\
     {\"stream\":\"tempest\",\"test\":\"a[id-1]\",\"status\":\"failed\",\"detail\":\"Traceback\",\"secs\":1.5}\n",
    "{\"stream\":\"tempest\",\"test\":\"tempest.api.identity.admin.v3.test_regions.RegionsTestJSON.test_list_regions[id-d180bf99-544a-445c-ad0d-0c0d27663796]\",\"status\":\"passed\",\"secs\":0.028}\n{\"stream\":\"k8s-e2e:network\",\"test\":\"[sig-network] DNS should work\",\"status\":\"skipped\",\"detail\":\"no IPv6\",\"secs\":0,\"carried_from\":\"20261130T000253Z-df2d23\"}\n{\"stream\":\"tempest\",\"test\":\"x\",\"sta",
];

/// A real results.json, cut to a few checks and requirements so a case parses quickly.
static RESULTS: LazyLock<serde_json::Value> = LazyLock::new(|| {
    let full = seed_file("fuzz/seeds/results.json", usize::MAX);
    let mut v: serde_json::Value = serde_json::from_slice(&full).expect("results.json is JSON");
    if let Some(c) = v["checks"].as_array_mut() {
        c.truncate(4);
    }
    if let Some(r) = v["requirements"].as_array_mut() {
        r.truncate(4);
    }
    if let Some(r) = v["requirements"].as_object_mut() {
        let keep: Vec<String> = r.keys().take(4).cloned().collect();
        r.retain(|k, _| keep.contains(k));
    }
    v
});

proptest! {
    #![proptest_config(config(DEFAULT_CASES))]

    #[test]
    fn fuzz_target_file(t in text(seeds(TARGETS))) {
        if let Err(e) = Target::parse(Path::new("t.toml"), &t, &AREAS, &[]) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn fuzz_upstream_ledger(t in text(seeds(LEDGER))) {
        // A resumed run reads what a killed one left: any bytes, never a panic, and every
        // record read back writes back the same.
        let parsed = nfvi_harness::ledger::parse(t.as_bytes());
        for r in parsed.records {
            let line = serde_json::to_string(&r).unwrap();
            let again = nfvi_harness::ledger::parse(format!("\n{line}").as_bytes());
            prop_assert_eq!(again.records, vec![r]);
        }
    }

    #[test]
    fn fuzz_waivers(t in text(seeds(WAIVERS))) {
        match Waivers::parse(Path::new("w.toml"), &t) {
            Ok(_) => {}
            Err(e) => prop_assert!(e.line >= 1 && e.line <= t.lines().count().max(1) + 1, "line {} of {}", e.line, t.lines().count()),
        }
    }

    #[test]
    fn fuzz_results_json(t in text(vec![serde_json::to_vec(&*RESULTS).unwrap()])) {
        let _ = RunResults::parse(Path::new("results.json"), &t);
    }

    /// A results.json that parses prints to one that parses to the same results.
    #[test]
    fn fuzz_results_json_round_trip(v in json(vec![RESULTS.clone()])) {
        let text = v.to_string();
        if let Ok(r) = RunResults::parse(Path::new("results.json"), &text) {
            let again = RunResults::parse(Path::new("results.json"), &r.to_json());
            match again {
                Ok(again) => prop_assert_eq!(again, r),
                Err(e) => prop_assert!(false, "printed results do not parse: {e}"),
            }
        }
    }

    /// The node agent's lines; one that parses prints to itself.
    #[test]
    fn fuzz_agent_event_line(t in text(seeds(&[
        r#"{"event":"hello","version":"0.1.0"}"#,
        r#"{"event":"started","id":"host.kernel"}"#,
        r#"{"event":"done","cancelled":false,"warnings":["w"]}"#,
        r#"{"event":"fatal","message":"bad target"}"#,
    ]))) {
        use nfvi_harness::fleet::AgentEvent;
        if let Ok(e) = AgentEvent::parse(&t) {
            prop_assert_eq!(AgentEvent::parse(&e.to_line()), Ok(e));
        }
    }

    /// The iterative matcher agrees with the textbook recursive one.
    #[test]
    fn fuzz_glob(p in "[a*?.é]{0,8}", t in "[a*?.é]{0,10}", any_p in ".{0,40}", any_t in ".{0,40}") {
        prop_assert_eq!(nfvi_harness::glob::matches(&p, &t), naive_glob(&p, &t), "{:?} {:?}", p, t);
        let _ = nfvi_harness::glob::matches(&any_p, &any_t);
        prop_assert!(nfvi_harness::glob::matches(&any_t, &any_t));
    }

    #[test]
    fn fuzz_cidr(t in text(seeds(nfvi_fuzz::ADDRESSES))) {
        use nfvi_harness::target::{parse_cidr, parse_ipv4_cidr, parse_ipv4_network, parse_network};
        if let Ok(n) = parse_cidr(&t) {
            prop_assert_eq!(parse_cidr(&n.to_string()).ok(), Some(n));
        }
        let _ = parse_network(&t);
        let _ = parse_ipv4_network(&t);
        if let Some((_, len)) = parse_ipv4_cidr(&t) {
            prop_assert!(len <= 32);
        }
    }

    #[test]
    fn fuzz_requirement_id(t in text(seeds(&["ra2.k8s.001", "sec.gen.002", "rm.inf.3"]))) {
        if let Ok(id) = nfvi_reference_model::RequirementId::parse(&t) {
            prop_assert_eq!(nfvi_reference_model::RequirementId::parse(id.as_str()).ok(), Some(id));
        }
    }

    /// CLI counts and sizes: an error naming the range, or a value within it; never a panic.
    #[test]
    fn fuzz_cli_counts(t in text(seeds(&[
        "0", "1", "6", "2000", "65507", "1000000000", "18446744073709551615",
        "18446744073709551616", "-1", "+5", "1e3", " 7",
    ]))) {
        use nfvi_verify::values::*;
        let in_range = |r: Result<u64, String>, lo: u64, hi: u64| match r {
            Ok(n) => (lo..=hi).contains(&n),
            Err(e) => e.contains(&format!("{lo} to {hi}")),
        };
        let wide = |r: Result<usize, String>| r.map(|n| n as u64);
        prop_assert!(in_range(parse_probes(&t), 1, MAX_PROBES));
        prop_assert!(in_range(parse_warmup(&t), 0, MAX_PROBES));
        prop_assert!(in_range(wide(parse_rounds(&t)), 1, MAX_ROUNDS as u64));
        prop_assert!(in_range(
            wide(parse_payload(&t)),
            PAYLOAD_RANGE.0 as u64,
            PAYLOAD_RANGE.1 as u64
        ));
        prop_assert!(in_range(wide(parse_jobs(&t)), 1, MAX_JOBS as u64));
        prop_assert!(in_range(parse_timeout_secs(&t), 1, MAX_TIMEOUT_SECS));
        if let Ok(n) = t.parse::<u64>() {
            prop_assert_eq!(parse_count(&t, 0, u64::MAX), Ok(n));
        }
    }

    /// CLI durations: an error or a positive duration, never a panic.
    #[test]
    fn fuzz_cli_duration(t in text(seeds(&["5s", "500ms", "100us", "2m", "0.001us", "1.5"]))) {
        if let Ok(d) = nfvi_verify::values::parse_duration(&t) {
            prop_assert!(!d.is_zero());
        }
        if let Ok(d) = nfvi_verify::values::parse_interval(&t) {
            prop_assert!(!d.is_zero() && d <= nfvi_verify::values::MAX_INTERVAL);
        }
    }
}

proptest! {
    // The whole model is a few hundred kilobytes of TOML: fewer cases.
    #![proptest_config(config(48))]

    #[test]
    fn fuzz_reference_model(t in text(vec![
        nfvi_reference_model::EMBEDDED_REQUIREMENT_FILES[0].1.as_bytes()[..8192].to_vec(),
        nfvi_reference_model::EMBEDDED_SUITE_FILES[0].1.as_bytes().to_vec(),
    ])) {
        use nfvi_reference_model::{Source, load_sources};
        let _ = load_sources(&[Source::new("r.toml", t.clone())], &[]);
        let reqs: Vec<Source> = nfvi_reference_model::EMBEDDED_REQUIREMENT_FILES
            .iter()
            .map(|(f, t)| Source::new(*f, *t))
            .collect();
        let _ = load_sources(&reqs, &[Source::new("s.toml", t)]);
    }
}

fn naive_glob(p: &str, t: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some(('?', rest)) => !t.is_empty() && go(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    go(
        &p.chars().collect::<Vec<_>>(),
        &t.chars().collect::<Vec<_>>(),
    )
}
