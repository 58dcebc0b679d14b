//! `bundle` and `verify`: argument handling, printing, and the mapping of their failures to
//! [`CliError`]s. The work is in `nfvi-certify`.

use nfvi_certify::bundle::{self, BundleError};
use nfvi_certify::sshkey::PrivateKey;
use nfvi_certify::verify::{self, Outcome, Report, Step};

use crate::chain;
use crate::cli::{BundleArgs, Format, VerifyArgs};
use crate::error::CliError;

type CmdResult = Result<i32, CliError>;

pub fn bundle(args: &BundleArgs) -> CmdResult {
    let dir = &args.run_dir;
    if !dir.join("results.json").is_file() {
        return Err(CliError::bad_input(format!(
            "`{}` has no results.json: not the output directory of a finished run",
            dir.display()
        )));
    }
    let journal = dir.join(crate::journal::FILE);
    if journal.exists() && crate::journal::in_use(&journal) {
        return Err(CliError::bad_input(format!(
            "the run in `{}` is still going (its journal is in use); bundle it when it has finished",
            dir.display()
        )));
    }
    let key_text = std::fs::read_to_string(&args.sign).map_err(|e| {
        CliError::bad_input(format!(
            "cannot read the key `{}`: {e}",
            args.sign.display()
        ))
    })?;
    let key = PrivateKey::from_openssh(&key_text)
        .map_err(|e| CliError::bad_input(format!("{}: {}", args.sign.display(), chain(&e))))?;
    let out = match &args.out {
        Some(p) => p.clone(),
        None => {
            let results = nfvi_harness::results::RunResults::load(&dir.join("results.json"))?;
            bundle::default_out(&results.run_id)
        }
    };
    crate::trusted::check_parent(&out).map_err(CliError::bad_input)?;
    let done = bundle::bundle(dir, &key, &out).map_err(|e| match e {
        BundleError::Results(r) => CliError::from(r),
        e => CliError::bad_input(chain(&e)),
    })?;
    let m = &done.manifest;
    println!("bundle     {}", done.path.display());
    println!("signature  {}", done.signature.display());
    println!(
        "run        {} ({} {}, {})",
        m.run_id, m.suite.name, m.suite.version, m.verdict
    );
    println!(
        "members    {} (+ {}), {} evidence file(s), {} secret(s) redacted",
        m.members.len(),
        nfvi_certify::manifest::MANIFEST,
        m.evidence.len(),
        m.redactions.len()
    );
    for r in &m.redactions {
        println!("  redacted {}:{} ({})", r.member, r.line, r.kind);
    }
    println!(
        "check it   ssh-keygen -Y verify -f ALLOWED_SIGNERS -I IDENTITY -n nfvi-verify -s {} < {}",
        done.signature.display(),
        done.path.display()
    );
    Ok(0)
}

fn print_step(name: &str, step: &Step) {
    let mark = if step.ok { "ok" } else { "FAILED" };
    let mut lines = step.detail.iter();
    println!(
        "{name:<13}{mark}: {}",
        lines.next().map_or("", String::as_str)
    );
    for l in lines {
        println!("{:<13}  {l}", "");
    }
}

fn print_report(r: &Report) {
    println!("bundle       {}", r.bundle);
    if let Some(id) = &r.run_id {
        println!("run          {id}");
    }
    print_step("signature", &r.signature);
    print_step("members", &r.members);
    print_step("verdict", &r.verdict);
    print_step("model", &r.reference_model);
    let mut waivers = r.waivers.iter();
    if let Some(first) = waivers.next() {
        println!("{:<13}{first}", "waivers");
        for w in waivers {
            println!("{:<13}{w}", "");
        }
    }
    let cert = &r.certification;
    if cert.ok {
        println!("{:<13}yes", "certifiable");
    } else {
        println!("{:<13}no", "certifiable");
        for why in &cert.detail {
            println!("{:<13}  - {why}", "");
        }
    }
    if r.redactions > 0 {
        println!(
            "{:<13}{} secret(s) were redacted when bundling (see manifest.json)",
            "redactions", r.redactions
        );
    }
    let result = match r.outcome {
        Outcome::Certifiable => "CERTIFIABLE: signature, hashes and verdict verified",
        Outcome::NotCertifiable => "VALID BUT NOT CERTIFIABLE (see above)",
        Outcome::Tampered => "TAMPERED (see above)",
        Outcome::Unverifiable => "UNVERIFIABLE: no allowed signer for the signing key (see above)",
    };
    println!("{:<13}{result}", "result");
}

/// What this build declares of each check, for comparing with the results of a run of the
/// same version.
fn declared() -> Result<verify::Declared, CliError> {
    let model =
        nfvi_reference_model::load_embedded().map_err(|e| CliError::Build(e.to_string()))?;
    let checks = nfvi_verify::areas()
        .checks()
        .iter()
        .map(|c| {
            let m = c.meta();
            let covers = m
                .covers
                .iter()
                .map(|id| {
                    model
                        .resolve(id)
                        .map_or_else(|_| id.clone(), |r| r.id.to_string())
                })
                .collect();
            (m.id.clone(), (m.severity, covers))
        })
        .collect();
    Ok(verify::Declared {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        checks,
    })
}

pub fn verify(args: &VerifyArgs) -> CmdResult {
    let req = verify::Request {
        bundle: args.bundle.clone(),
        allowed_signers: args.allowed_signers.clone(),
        identity: args.identity.clone(),
        signature: args.signature.clone(),
        now: chrono::Utc::now(),
        declared: Some(declared()?),
    };
    let report = verify::verify(&req).map_err(|e| CliError::bad_input(e.0))?;
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("the report serialises")
        ),
        Format::Text => print_report(&report),
    }
    Ok(report.outcome.exit_code())
}
