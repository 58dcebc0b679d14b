//! `nfvi-verify verify BUNDLE --allowed-signers FILE`: the signature, every member against
//! the manifest, the verdict recomputed from the raw results with the bundle's own
//! reference model, and whether the run is certifiable.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use nfvi_harness::results::RunResults;
use serde::Serialize;

use crate::allowed_signers::AllowedSigners;
use crate::archive::{self, ArchiveError, Limits};
use crate::manifest::{
    BUNDLE_FORMAT, MANIFEST, MODEL_PREFIX, Manifest, embedded_model_sha256, model_sha256,
    sha256_hex,
};
use crate::sshsig::{self, Signature};

/// Input that cannot be checked at all (exit 2): unreadable files, not a bundle, a bad
/// allowed_signers file.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// The largest bundle `verify` reads (2 GiB; it holds the bundle in memory); a larger file
/// is bad input (exit 2). A bundle's members are capped lower ([`Limits::DEFAULT`]).
pub const MAX_BUNDLE: u64 = 2 << 30;

/// What to verify.
#[derive(Debug, Clone)]
pub struct Request {
    /// The bundle.
    pub bundle: PathBuf,
    /// The allowed_signers file.
    pub allowed_signers: PathBuf,
    /// `-I`: the identity that must have signed; none: whoever the file allows.
    pub identity: Option<String>,
    /// The signature (default `BUNDLE.sig`).
    pub signature: Option<PathBuf>,
    /// The time the allowed_signers validity is judged at.
    pub now: DateTime<Utc>,
    /// The checks this binary declares (ID → declared severity and covered requirements),
    /// with its version: results of the same version must declare the same.
    pub declared: Option<Declared>,
}

/// The outcome, in order of precedence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Signature, hashes and verdict good, conformant and certifiable (exit 0).
    Certifiable,
    /// Valid, but not conformant or not certifiable (exit 1).
    NotCertifiable,
    /// The signature or a member does not match, or the recomputed verdict differs (exit 3).
    Tampered,
    /// The signature is good and nothing was changed, but no allowed signer has the key for
    /// this identity, namespace and time (exit 3).
    Unverifiable,
}

impl Outcome {
    /// The exit code.
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Certifiable => 0,
            Outcome::NotCertifiable => 1,
            Outcome::Tampered | Outcome::Unverifiable => 3,
        }
    }
}

/// One step's result.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// Whether it passed.
    pub ok: bool,
    /// What was found, one line each.
    pub detail: Vec<String>,
}

impl Step {
    fn new(ok: bool, detail: Vec<String>) -> Self {
        Self { ok, detail }
    }
}

/// The report `verify` prints.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The bundle.
    pub bundle: String,
    /// Run ID, suite and verdict as recorded, when the manifest could be read.
    pub run_id: Option<String>,
    /// (1) The signature and who may have made it.
    pub signature: Step,
    /// The principals allowed for the signing key (or the identity given).
    pub signers: Vec<String>,
    /// (2) Every member against the manifest.
    pub members: Step,
    /// (3) The verdict recomputed.
    pub verdict: Step,
    /// The verdict recomputed from the raw results.
    pub recomputed_verdict: Option<String>,
    /// (4) Whether the run is certifiable, and why not.
    pub certification: Step,
    /// What each waiver did, as recomputed (applied, expired, matched nothing, forbidden).
    pub waivers: Vec<String>,
    /// The bundle's reference model against this binary's (informational).
    pub reference_model: Step,
    /// Secrets redacted when bundling.
    pub redactions: usize,
    /// The outcome.
    pub outcome: Outcome,
    /// The exit code `verify` ends with.
    pub exit_code: i32,
}

/// Verifies a bundle.
pub fn verify(req: &Request) -> Result<Report, BadInput> {
    let read = |p: &Path, what: &str| {
        std::fs::read(p)
            .map_err(|e| BadInput(format!("cannot read the {what} `{}`: {e}", p.display())))
    };
    let signers_text = read(&req.allowed_signers, "allowed signers file")?;
    let signers = AllowedSigners::parse(&String::from_utf8_lossy(&signers_text))
        .map_err(|e| BadInput(format!("{}: {e}", req.allowed_signers.display())))?;
    let sig_path = req
        .signature
        .clone()
        .unwrap_or_else(|| crate::bundle::signature_path(&req.bundle));
    let sig_text = read(&sig_path, "signature")?;
    // Checked before reading: verify holds the whole bundle in memory.
    let len = std::fs::metadata(&req.bundle)
        .map_err(|e| {
            BadInput(format!(
                "cannot read the bundle `{}`: {e}",
                req.bundle.display()
            ))
        })?
        .len();
    if len > MAX_BUNDLE {
        return Err(BadInput(format!(
            "`{}` is {len} bytes, over the {MAX_BUNDLE}-byte (2 GiB) limit for a bundle",
            req.bundle.display()
        )));
    }
    let bundle = read(&req.bundle, "bundle")?;
    if !bundle.starts_with(&[0x1f, 0x8b]) {
        return Err(BadInput(format!(
            "`{}` is not a bundle (not gzip)",
            req.bundle.display()
        )));
    }

    // (1) Signature.
    let mut signer_names = Vec::new();
    let mut unauthorized = false;
    let signature = match Signature::from_armored(&String::from_utf8_lossy(&sig_text)) {
        Err(e) => Step::new(false, vec![format!("{}: {e}", sig_path.display())]),
        Ok(sig) => {
            let key = format!(
                "{} key {}",
                sig.public_key.key_type(),
                sig.public_key.fingerprint()
            );
            match sig.verify(sshsig::NAMESPACE, &mut bundle.as_slice()) {
                // Made for another purpose (`ssh-keygen -Y sign -n file`): say so, not
                // "changed", when it is good for its own namespace.
                Err(e @ sshsig::SigError::Namespace { .. })
                    if sig.verify(&sig.namespace, &mut bundle.as_slice()).is_ok() =>
                {
                    unauthorized = true;
                    Step::new(
                        false,
                        vec![format!(
                            "{e} ({key}): a good signature of this bundle, but made for another purpose; sign with `-n {}`",
                            sshsig::NAMESPACE
                        )],
                    )
                }
                Err(e) => Step::new(
                    false,
                    vec![format!(
                        "{e} ({key}): the bundle or its signature was changed"
                    )],
                ),
                Ok(()) => match signers.authorize(
                    &sig.public_key.blob(),
                    req.identity.as_deref(),
                    sshsig::NAMESPACE,
                    req.now,
                ) {
                    Err(refusal) => {
                        unauthorized = true;
                        Step::new(
                            false,
                            vec![format!(
                                "good signature by {key}, but unverifiable: {refusal}"
                            )],
                        )
                    }
                    Ok(entries) => {
                        signer_names = entries.iter().map(|e| e.principals.clone()).collect();
                        let who = req
                            .identity
                            .clone()
                            .unwrap_or_else(|| signer_names.join(", "));
                        let lines: Vec<String> =
                            entries.iter().map(|e| e.line.to_string()).collect();
                        Step::new(
                            true,
                            vec![format!(
                                "good \"{}\" signature for {who} with {key} (allowed signers line {})",
                                sshsig::NAMESPACE,
                                lines.join(", ")
                            )],
                        )
                    }
                },
            }
        }
    };

    // (2) Members.
    let members = match archive::read_strict(bundle.as_slice(), &Limits::DEFAULT) {
        Ok(m) => m,
        Err(ArchiveError::Corrupt(e)) => {
            return Ok(tampered(
                req,
                signature,
                signer_names,
                format!("the archive is corrupt: {e}"),
            ));
        }
        Err(e) => return Ok(tampered(req, signature, signer_names, e.to_string())),
    };
    let Some(manifest_bytes) = members.iter().find(|(p, _)| p == MANIFEST).map(|(_, b)| b) else {
        if signature.ok {
            return Err(BadInput(format!(
                "`{}` is not an nfvi-verify bundle (no {MANIFEST})",
                req.bundle.display()
            )));
        }
        return Ok(tampered(
            req,
            signature,
            signer_names,
            format!("no {MANIFEST} in the archive"),
        ));
    };
    let manifest: Manifest = match serde_json::from_slice(manifest_bytes) {
        Ok(m) => m,
        Err(e) => {
            return Ok(tampered(
                req,
                signature,
                signer_names,
                format!("{MANIFEST} is corrupt: {e}"),
            ));
        }
    };
    if manifest.bundle_format != BUNDLE_FORMAT {
        return Err(BadInput(format!(
            "bundle format {}; this nfvi-verify reads format {BUNDLE_FORMAT}",
            manifest.bundle_format
        )));
    }
    let by_path: BTreeMap<&str, &[u8]> = members
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_slice()))
        .collect();
    let mut problems = Vec::new();
    let mut listed = BTreeSet::new();
    for m in &manifest.members {
        if !listed.insert(m.path.as_str()) {
            problems.push(format!("{MANIFEST} lists `{}` twice", m.path));
        }
        match by_path.get(m.path.as_str()) {
            None => problems.push(format!("member `{}` is missing", m.path)),
            Some(b) if b.len() as u64 != m.size || sha256_hex(b) != m.sha256 => {
                problems.push(format!(
                    "member `{}` was changed (its SHA-256 or size differs from the manifest)",
                    m.path
                ))
            }
            Some(_) => {}
        }
    }
    for (p, _) in &members {
        if p != MANIFEST && !listed.contains(p.as_str()) {
            problems.push(format!("member `{p}` is not in the manifest"));
        }
    }
    let results_bytes = by_path.get("results.json").copied().unwrap_or_default();
    let results = parse_results(results_bytes);
    match &results {
        Err(e) => problems.push(format!("results.json cannot be read: {e}")),
        Ok(r) => {
            let mut differs = Vec::new();
            if r.run_id != manifest.run_id {
                differs.push("run_id");
            }
            if r.verdict.as_str() != manifest.verdict {
                differs.push("verdict");
            }
            if r.suite.name != manifest.suite.name || r.suite.version != manifest.suite.version {
                differs.push("suite");
            }
            if !differs.is_empty() {
                problems.push(format!(
                    "member `{MANIFEST}` disagrees with results.json ({})",
                    differs.join(", ")
                ));
            }
        }
    }
    if problems.is_empty() && !signature.ok && !unauthorized {
        problems.push(format!(
            "every member matches {MANIFEST}, so {MANIFEST} itself, the archive's framing or the signature was changed"
        ));
    }
    let members_step = if problems.is_empty() {
        Step::new(
            true,
            vec![format!(
                "{} members match {MANIFEST} (SHA-256 and size)",
                manifest.members.len()
            )],
        )
    } else {
        Step::new(false, problems)
    };

    // Reference model: the bundle's own, compared with this binary's.
    let model_files: Vec<(&str, &[u8])> = members
        .iter()
        .filter_map(|(p, b)| Some((p.strip_prefix(MODEL_PREFIX)?, b.as_slice())))
        .collect();
    let bundle_model = model_sha256(model_files.iter().copied());
    let here = embedded_model_sha256();
    let mut model_detail = vec![if bundle_model == here {
        format!(
            "the bundle's reference model is this binary's ({})",
            &here[..12]
        )
    } else {
        format!(
            "the bundle's reference model ({}) differs from this binary's ({}); the bundle's own is used",
            &bundle_model[..12],
            &here[..12]
        )
    }];
    let mut model_ok = true;
    if bundle_model != manifest.reference_model_sha256 {
        model_ok = false;
        model_detail.push(format!(
            "reference_model_sha256 in {MANIFEST} does not match its model members"
        ));
    }

    // (3) and (4): recompute from the raw results with the bundle's model.
    let (verdict_step, recomputed, certification, waiver_lines) = match &results {
        Err(e) => (
            Step::new(false, vec![format!("cannot recompute: {e}")]),
            None,
            Step::new(false, vec!["unknown".into()]),
            Vec::new(),
        ),
        Ok(r) => {
            let model = load_model(&model_files);
            let waivers = members
                .iter()
                .find(|(p, _)| p == "waivers.toml")
                .map(|(_, b)| b.as_slice());
            let re = rejudge(
                r,
                model.as_ref().map_err(String::as_str),
                waivers,
                req.declared.as_ref(),
            );
            let ok = re.verdict == r.verdict.as_str() && re.problems.is_empty();
            let mut detail = vec![format!(
                "recorded {}, recomputed {}",
                r.verdict.as_str(),
                re.verdict
            )];
            detail.extend(re.problems.iter().cloned());
            if let Err(e) = &model {
                model_ok = false;
                model_detail.push(format!("the bundle's reference model does not load: {e}"));
            }
            // A bundle's own model is what it is judged by, but a signer could have loosened
            // it (a MUST made optional, `unwaivable` dropped): only the model a released
            // binary embeds certifies.
            let mut reasons = re.reasons.clone();
            if bundle_model != here {
                reasons.push(format!(
                    "the bundle's reference model is not the one this nfvi-verify embeds: verify with the release that made it (nfvi-verify {})",
                    r.tool.version
                ));
            }
            let cert = Step::new(re.certifiable && bundle_model == here, reasons);
            (Step::new(ok, detail), Some(re.verdict), cert, re.waivers)
        }
    };

    let changed = !members_step.ok || !verdict_step.ok || !model_ok;
    let outcome = if changed || (!signature.ok && !unauthorized) {
        Outcome::Tampered
    } else if !signature.ok {
        Outcome::Unverifiable
    } else if certification.ok {
        Outcome::Certifiable
    } else {
        Outcome::NotCertifiable
    };
    Ok(Report {
        bundle: req.bundle.display().to_string(),
        run_id: Some(manifest.run_id.clone()),
        signature,
        signers: signer_names,
        members: members_step,
        verdict: verdict_step,
        recomputed_verdict: recomputed,
        certification,
        waivers: waiver_lines,
        reference_model: Step::new(model_ok, model_detail),
        redactions: manifest.redactions.len(),
        outcome,
        exit_code: outcome.exit_code(),
    })
}

fn tampered(req: &Request, signature: Step, signers: Vec<String>, problem: String) -> Report {
    let unknown = || Step::new(false, vec!["not checked".into()]);
    Report {
        bundle: req.bundle.display().to_string(),
        run_id: None,
        signature,
        signers,
        members: Step::new(false, vec![problem]),
        verdict: unknown(),
        recomputed_verdict: None,
        certification: unknown(),
        waivers: Vec::new(),
        reference_model: unknown(),
        redactions: 0,
        outcome: Outcome::Tampered,
        exit_code: Outcome::Tampered.exit_code(),
    }
}

fn parse_results(bytes: &[u8]) -> Result<RunResults, String> {
    // Through the harness's parser (schema migration, messages with lines).
    let text = std::str::from_utf8(bytes).map_err(|e| format!("results.json is not UTF-8: {e}"))?;
    RunResults::parse(Path::new("results.json"), text)
        .map_err(|e| nfvi_harness::error_with_causes(&e).to_string())
}

fn load_model(files: &[(&str, &[u8])]) -> Result<nfvi_reference_model::ReferenceModel, String> {
    use nfvi_reference_model::Source;
    let (mut reqs, mut suites) = (Vec::new(), Vec::new());
    for (path, bytes) in files {
        let text = std::str::from_utf8(bytes).map_err(|_| format!("{path} is not UTF-8"))?;
        let source = Source::new(format!("{MODEL_PREFIX}{path}"), text);
        if path.contains("/suites/") {
            suites.push(source);
        } else {
            reqs.push(source);
        }
    }
    nfvi_reference_model::load_sources(&reqs, &suites).map_err(|e| e.to_string())
}

pub use crate::rejudge::{Declared, Rejudged, rejudge};
