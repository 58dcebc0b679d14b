//! results.json versions 1 (distributions as `cdf:` samples, the Kolla stage as a property)
//! and 2 (no `node` or `fleet`) still load, as the current version with typed fields, for
//! `report --from`, `diff` and `--rerun-failed`.

use nfvi_harness::Percentiles;
use nfvi_harness::results::RunResults;

#[test]
fn a_version_1_results_file_is_read_as_the_current_version() {
    let mut results = nfvi_integration_tests::synthetic_results(7);
    let cdf: Vec<f64> = (0..=100).map(f64::from).collect();
    let evidence = &mut results.checks[0].evidence;
    evidence
        .distributions
        .insert("bridge".into(), Percentiles::new(cdf.clone()).unwrap());
    evidence.stage = Some("post-deploy".into());

    // The same run as version 1 wrote it.
    let mut v1: serde_json::Value = serde_json::from_str(&results.to_json()).unwrap();
    v1["schema_version"] = 1.into();
    let e = &mut v1["checks"][0]["evidence"];
    let moved = e.as_object_mut().unwrap().remove("distributions").unwrap();
    e["samples"]["cdf:bridge"] = moved["bridge"].clone();
    e["samples"]["cdf:short"] = serde_json::json!([1.0, 2.0]);
    e.as_object_mut().unwrap().remove("stage");
    e["properties"]["kolla stage"] = "post-deploy".into();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.json");
    std::fs::write(&path, v1.to_string()).unwrap();
    let loaded = RunResults::load(&path).unwrap();
    let e = &loaded.checks[0].evidence;
    assert_eq!(e.distributions["bridge"].values(), cdf.as_slice());
    assert_eq!(e.stage.as_deref(), Some("post-deploy"));
    assert!(!e.properties.contains_key("kolla stage"));
    // What is not a distribution stays a sample.
    assert_eq!(e.samples["cdf:short"], vec![1.0, 2.0]);
    assert_eq!(loaded.schema_version, 5);
    assert!(loaded.fleet.is_none() && loaded.checks.iter().all(|c| c.node.is_none()));

    // Version 2 is version 3 without a fleet: it loads as it is.
    let mut v2: serde_json::Value = serde_json::from_str(&results.to_json()).unwrap();
    v2["schema_version"] = 2.into();
    std::fs::write(&path, v2.to_string()).unwrap();
    let loaded = RunResults::load(&path).unwrap();
    assert_eq!(loaded.schema_version, 5);
    assert_eq!(loaded.checks, results.checks);

    // Version 3 is version 4 without `resumed_from`: it loads as it is.
    v2["schema_version"] = 3.into();
    std::fs::write(&path, v2.to_string()).unwrap();
    let loaded = RunResults::load(&path).unwrap();
    assert_eq!(loaded.schema_version, 5);
    assert!(loaded.resumed_from.is_none());
    assert_eq!(loaded.checks, results.checks);

    // Version 4 is version 5 without waivers, conditions, certification and provenance: it
    // loads as it is, and such a run reads as not certifiable (nothing says it was).
    let mut v4 = v2.clone();
    v4["schema_version"] = 4.into();
    for key in ["waivers", "conditions", "certification"] {
        v4.as_object_mut().unwrap().remove(key);
    }
    std::fs::write(&path, v4.to_string()).unwrap();
    let loaded = RunResults::load(&path).unwrap();
    assert_eq!(loaded.schema_version, 5);
    assert!(loaded.waivers.is_none());
    assert!(!loaded.certification.certifiable);
    assert_eq!(loaded.checks, results.checks);

    // A version it does not know is refused with both versions named.
    v1["schema_version"] = 9.into();
    std::fs::write(&path, v1.to_string()).unwrap();
    let err = RunResults::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("version 9") && err.contains("versions 1 to 5"),
        "{err}"
    );
}

#[test]
fn percentiles_are_checked_when_made_and_when_read() {
    assert!(Percentiles::new(vec![1.0; 100]).is_err());
    let mut falling: Vec<f64> = (0..=100).map(f64::from).collect();
    falling[50] = 0.0;
    assert!(Percentiles::new(falling).is_err());
    let mut nan: Vec<f64> = (0..=100).map(f64::from).collect();
    nan[3] = f64::NAN;
    assert!(Percentiles::new(nan).is_err());
    let bad: Result<Percentiles, _> = serde_json::from_str("[1, 2, 3]");
    assert!(bad.unwrap_err().to_string().contains("101 percentiles"));
}
