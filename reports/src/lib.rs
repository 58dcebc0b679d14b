//! Reports rendered from [`RunResults`]: `results.json` (the source of truth), `junit.xml`
//! for CI test reporters, `report.html` (one self-contained file for a certification
//! reviewer) and `badge.svg`.
//!
//! Everything here is a pure function of the results, so `nfvi-verify report` can re-render
//! any past run, and every artifact is written atomically (complete or absent).

#![warn(missing_docs)]

mod badge;
mod html;
mod junit;
pub mod triage;

use std::path::{Path, PathBuf};

use nfvi_harness::results::{RunResults, write_atomic};

pub use badge::badge_svg;
pub use html::render_html;
pub use junit::render_junit;

/// An artifact that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Writing a file failed.
    #[error("cannot write `{}`", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Rendering failed (a bug in a template or the JUnit writer).
    #[error("cannot render {what}: {message}")]
    Render {
        /// Which artifact.
        what: &'static str,
        /// What went wrong.
        message: String,
    },
}

/// Paths of the artifacts of a run.
#[derive(Clone, Debug)]
pub struct Artifacts {
    /// `results.json`.
    pub results: PathBuf,
    /// `junit.xml`.
    pub junit: PathBuf,
    /// `report.html`.
    pub html: PathBuf,
    /// `badge.svg`.
    pub badge: PathBuf,
}

impl Artifacts {
    /// The standard file names inside `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            results: dir.join("results.json"),
            junit: dir.join("junit.xml"),
            html: dir.join("report.html"),
            badge: dir.join("badge.svg"),
        }
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    write_atomic(path, bytes).map_err(|source| ReportError::Write {
        path: path.to_owned(),
        source,
    })
}

/// Writes every artifact atomically, `results.json` first: a reader never sees a
/// half-written file. One artifact that cannot be rendered or written does not stop the
/// others; every failure is returned.
pub fn write_artifacts(results: &RunResults, to: &Artifacts) -> Result<(), Vec<ReportError>> {
    let mut failed = Vec::new();
    let json = results.to_json();
    if let Err(e) = write(&to.results, json.as_bytes()) {
        failed.push(e);
    }
    let rendered = [
        (render_junit(results), &to.junit),
        (render_html(results), &to.html),
        (Ok(badge_svg(results)), &to.badge),
    ];
    for (text, path) in rendered {
        if let Err(e) = text.and_then(|t| write(path, t.as_bytes())) {
            failed.push(e);
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed)
    }
}
