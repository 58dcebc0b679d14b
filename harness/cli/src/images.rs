//! `nfvi-verify images --suite S`: every container image the suite's checks may pull, with
//! the target's registries, one per line (or JSON), so that an operator can mirror them for an
//! air-gapped NFVI. Each area of the suite says which ([`nfvi_harness::Area::images`]); an
//! image whose tag depends on the NFVI and cannot be resolved (no kubeconfig) shows a
//! placeholder such as `<cluster version>`.

use std::path::Path;

use nfvi_harness::{Target, exit_code};

use crate::cli::{Format, ListArgs};
use crate::error::CliError;

pub fn images(args: &ListArgs) -> Result<i32, CliError> {
    let areas = nfvi_verify::areas();
    let model =
        nfvi_reference_model::load_embedded().map_err(|e| CliError::Build(crate::chain(&e)))?;
    let name = args.suite.as_deref().unwrap_or("all");
    let suite = model.suite(name).ok_or_else(|| {
        let known: Vec<&str> = model.suites().map(|s| s.name.as_str()).collect();
        CliError::BadInput(format!(
            "unknown suite `{name}`; known: {}",
            known.join(", ")
        ))
    })?;
    let overrides = args.selection.overrides();
    let target = match args.selection.target.as_deref() {
        Some(p) => Target::load(p, &areas, &overrides)?,
        None => Target::parse(Path::new("<command line>"), "", &areas, &overrides)?,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Incomplete(format!("cannot start a runtime: {e}")))?;
    let mut all: Vec<(String, String)> = Vec::new();
    for area in areas.iter() {
        let included = suite.all_areas || suite.areas.iter().any(|a| a.as_str() == area.id());
        if !included {
            continue;
        }
        for image in runtime.block_on(area.images(&target)) {
            if !all.iter().any(|(_, i)| *i == image) {
                all.push((area.id().to_owned(), image));
            }
        }
    }
    if args.format == Format::Json {
        let list: Vec<serde_json::Value> = all
            .iter()
            .map(|(area, image)| serde_json::json!({"area": area, "image": image}))
            .collect();
        return crate::commands::print_json(&list);
    }
    for (_, image) in &all {
        println!("{image}");
    }
    Ok(exit_code::CONFORMANT)
}
