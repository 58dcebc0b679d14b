//! The checked-in schemas match the types, and the data files and the default target
//! validate against them.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn checked_in_schemas_are_fresh() {
    for (name, text) in nfvi_harness::schemas::all(&nfvi_verify::areas()) {
        let path = repo().join("schemas").join(name);
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == text,
            "{} is stale or missing: run `cargo xtask schemas` and commit the result",
            path.display()
        );
    }
}

fn validator(name: &str) -> jsonschema::Validator {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("schemas").join(name)).unwrap())
            .unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

fn toml_to_json(text: &str) -> serde_json::Value {
    let table: toml::Table = toml::from_str(text).unwrap();
    serde_json::to_value(table).unwrap()
}

#[test]
fn data_files_validate_against_their_schemas() {
    let dir = repo().join("reference-model/data");
    for (sub, schema) in [
        ("requirements", "requirements.schema.json"),
        ("suites", "suite.schema.json"),
    ] {
        let v = validator(schema);
        let mut seen = 0;
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            let json = toml_to_json(&std::fs::read_to_string(&path).unwrap());
            let errors: Vec<String> = v.iter_errors(&json).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{}: {errors:?}", path.display());
            seen += 1;
        }
        assert!(seen > 0);
    }
}

#[test]
fn every_data_file_is_embedded() {
    let dir = repo().join("reference-model/data");
    let embedded: Vec<&str> = nfvi_reference_model::EMBEDDED_REQUIREMENT_FILES
        .iter()
        .chain(nfvi_reference_model::EMBEDDED_SUITE_FILES)
        .map(|(p, _)| *p)
        .collect();
    for sub in ["requirements", "suites"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            let name = format!(
                "data/{sub}/{}",
                entry.unwrap().file_name().to_string_lossy()
            );
            assert!(
                embedded.contains(&name.as_str()),
                "{name} is not in embedded.rs"
            );
        }
    }
}

#[test]
fn the_default_target_validates() {
    let json = toml_to_json(&nfvi_verify::areas().default_target());
    let v = validator("target.schema.json");
    let errors: Vec<String> = v.iter_errors(&json).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn a_schema_violation_is_caught() {
    // The validator is not vacuous: a results document missing its verdict fails.
    let v = validator("results.schema.json");
    assert!(!v.is_valid(&serde_json::json!({ "schema_version": 1 })));
}
