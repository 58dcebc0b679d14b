//! JSON Schemas generated from the types, checked in under `schemas/` at the repository root
//! (`cargo xtask schemas` regenerates them; a test fails when they are stale).

use nfvi_reference_model::{RequirementsFile, SuiteFile};
use schemars::schema_for;

use crate::area::Areas;
use crate::results::RunResults;

/// Every schema as (file name, pretty JSON with a trailing newline); the target file's is
/// assembled from the areas' tables.
pub fn all(areas: &Areas) -> Vec<(&'static str, String)> {
    let pretty = |v: schemars::Schema| {
        let mut s = serde_json::to_string_pretty(&v).expect("schemas serialise");
        s.push('\n');
        s
    };
    vec![
        ("results.schema.json", pretty(schema_for!(RunResults))),
        ("target.schema.json", pretty(areas.target_schema())),
        (
            "requirements.schema.json",
            pretty(schema_for!(RequirementsFile)),
        ),
        ("suite.schema.json", pretty(schema_for!(SuiteFile))),
    ]
}
