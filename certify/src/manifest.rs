//! `manifest.json`, the first member of a bundle: what every other member is (SHA-256 and
//! size), who made the run and the bundle, the reference model's hash, the evidence's
//! origin and what was redacted. Versioned by `bundle_format`.

use serde::{Deserialize, Serialize};

use crate::redact::Redaction;

/// The manifest's version.
pub const BUNDLE_FORMAT: u32 = 1;
/// Its member name.
pub const MANIFEST: &str = "manifest.json";
/// The prefix of the reference model's members.
pub const MODEL_PREFIX: &str = "reference-model/";

/// The manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`BUNDLE_FORMAT`].
    pub bundle_format: u32,
    /// The run's ID.
    pub run_id: String,
    /// The tool that made the run (from results.json) and the binary that made the bundle.
    pub tool: Tool,
    /// The suite.
    pub suite: SuiteRef,
    /// The verdict results.json records.
    pub verdict: String,
    /// SHA-256 over the reference-model members (sorted by path, each `path\0len\0bytes`,
    /// path relative to `reference-model/`).
    pub reference_model_sha256: String,
    /// Every member but the manifest, in archive order.
    pub members: Vec<Member>,
    /// The evidence files the run ingested.
    pub evidence: Vec<EvidenceFile>,
    /// The secrets removed before hashing.
    pub redactions: Vec<Redaction>,
}

/// The tool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    /// `nfvi-verify`.
    pub name: String,
    /// Its version, as results.json records it.
    pub version: String,
    /// Its commit, as results.json records it.
    pub git_sha: String,
    /// SHA-256 of the binary that made the bundle (`/proc/self/exe`).
    pub bundler_sha256: String,
    /// Version of the binary that made the bundle.
    pub bundler_version: String,
}

/// The suite.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteRef {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
}

/// One member.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// Path in the archive.
    pub path: String,
    /// SHA-256 of its bytes (after redaction), hex.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// A binary member: scanned for secrets (none found, or it would have been refused) but
    /// not rewritten.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub binary: bool,
}

/// An evidence file of the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceFile {
    /// The path the run read.
    pub original_path: String,
    /// Its SHA-256 as results.json records it (checked when bundling).
    pub original_sha256: String,
    /// For an archive: the members the run used (and the bundle took); empty for a plain file.
    pub archive_members: Vec<String>,
    /// Where it is in the bundle.
    pub bundle_members: Vec<String>,
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The reference model hash over (path relative to `reference-model/`, bytes) pairs.
pub fn model_sha256<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut files: Vec<(&str, &[u8])> = files.into_iter().collect();
    files.sort();
    let mut cx = ring::digest::Context::new(&ring::digest::SHA256);
    for (path, bytes) in files {
        cx.update(path.as_bytes());
        cx.update(b"\0");
        cx.update(bytes.len().to_string().as_bytes());
        cx.update(b"\0");
        cx.update(bytes);
    }
    hex(cx.finish().as_ref())
}

/// The hash of the model this binary embeds.
pub fn embedded_model_sha256() -> String {
    model_sha256(embedded_model_files().map(|(p, t)| (p, t.as_bytes())))
}

/// The model files this binary embeds, (path relative to the reference-model crate, text).
pub fn embedded_model_files() -> impl Iterator<Item = (&'static str, &'static str)> {
    nfvi_reference_model::EMBEDDED_REQUIREMENT_FILES
        .iter()
        .chain(nfvi_reference_model::EMBEDDED_SUITE_FILES)
        .copied()
}
