//! The subcommands: the helpers they share (the embedded model and registry, the target,
//! the plan, JSON output) and `target`; `list`/`requirements`, `run` (with its output
//! directory and what it saves after a panic) and `report`/`diff` live in the submodules.

use std::path::Path;

use nfvi_harness::plan::{self, Plan, PlanOptions};
use nfvi_harness::results::ToolInfo;
use nfvi_harness::{Areas, Capabilities, Registry, Target, exit_code};
use nfvi_reference_model::ReferenceModel;

use crate::chain;
use crate::cli::{Selection, TargetArgs};
use crate::error::CliError;

mod list;
mod outdir;
mod panicked;
mod report;
mod run;

pub use list::{list, requirements};
pub use report::{diff, report};
pub use run::run;

type CmdResult = Result<i32, CliError>;

fn tool() -> ToolInfo {
    ToolInfo {
        name: "nfvi-verify".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        git_sha: env!("NFVI_VERIFY_GIT_SHA").to_owned(),
    }
}

fn load_model_and_registry(areas: &Areas) -> Result<(ReferenceModel, Registry), CliError> {
    // Both come with the binary; an error here is a defect in this build's data.
    let model = nfvi_reference_model::load_embedded().map_err(|e| CliError::Build(chain(&e)))?;
    let registry = Registry::new(areas.checks(), &model).map_err(|e| CliError::Build(chain(&e)))?;
    Ok((model, registry))
}

fn load_target(selection: &Selection, areas: &Areas) -> Result<Target, CliError> {
    let overrides = selection.overrides();
    let mut target = match selection.target.as_deref() {
        Some(p) => Target::load(p, areas, &overrides)?,
        None => Target::parse(Path::new("<command line>"), "", areas, &overrides)?,
    };
    if let Some(level) = selection.upstream.as_deref() {
        use nfvi_harness::target::UpstreamLevel;
        target.set_upstream(match level {
            "none" => UpstreamLevel::None,
            "smoke" => UpstreamLevel::Smoke,
            _ => UpstreamLevel::Full,
        });
    }
    Ok(target)
}

struct Prepared {
    areas: Areas,
    model: ReferenceModel,
    registry: Registry,
    target: Target,
    caps: Capabilities,
}

fn prepare(selection: &Selection) -> Result<Prepared, CliError> {
    let areas = nfvi_verify::areas();
    let (model, registry) = load_model_and_registry(&areas)?;
    let target = load_target(selection, &areas)?;
    let caps = Capabilities::detect(&target, &areas);
    Ok(Prepared {
        areas,
        model,
        registry,
        target,
        caps,
    })
}

fn build_plan(p: &Prepared, options: &PlanOptions) -> Result<Plan, CliError> {
    plan::build(&p.model, &p.registry, &p.target, &p.caps, options).map_err(CliError::from)
}

pub(crate) fn print_json(value: &impl serde::Serialize) -> CmdResult {
    let text = serde_json::to_string_pretty(value).expect("serialisable");
    println!("{text}");
    Ok(exit_code::CONFORMANT)
}

pub fn target(args: &TargetArgs) -> CmdResult {
    let areas = nfvi_verify::areas();
    if args.example {
        print!("{}", areas.default_target());
        return Ok(exit_code::CONFORMANT);
    }
    let path = args
        .check
        .as_deref()
        .expect("clap requires --example or --check");
    let t = Target::load(path, &areas, &[])?;
    print!("{}", t.resolved_toml());
    eprintln!("{}: valid", path.display());
    Ok(exit_code::CONFORMANT)
}
