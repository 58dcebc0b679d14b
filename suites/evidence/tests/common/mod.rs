//! Where the tests find the real tool outputs.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The real tool outputs: `$NFVI_EVIDENCE_DIR`, else the shared reference directory next to
/// the workspace, else the copies vendored in tests/fixtures/evidence (every file but
/// Sonobuoy's results-0.9.tar.gz, which carries a 2017 test cluster's service-account
/// tokens; the tests that read it say they skipped it when it is absent).
pub fn evidence_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = std::env::var_os("NFVI_EVIDENCE_DIR")
        .map(PathBuf::from)
        .or_else(|| Some(root.join("../shared/reference/evidence")).filter(|d| d.is_dir()))
        .unwrap_or_else(|| root.join("tests/fixtures/evidence"));
    // As the run records it: `..` and links resolved.
    dir.canonicalize().unwrap_or(dir)
}

/// Whether `rel` is in `d`; says so when it is not (only the unvendored Sonobuoy fixture).
pub fn present(d: &Path, rel: &str) -> bool {
    let there = d.join(rel).exists();
    if !there {
        eprintln!(
            "skipped {rel}: not in {} (see tests/fixtures/evidence/README.md)",
            d.display()
        );
    }
    there
}
