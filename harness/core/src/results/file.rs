//! The results file: reading it with messages that name the file and line, migrating older
//! schema versions, the JSON text, the error type, and atomic writes (absent or complete,
//! never through a planted link); with the tests of the atomic writes.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{RunResults, SCHEMA_VERSION};

impl RunResults {
    /// Reads a results file, with a message naming the file, line and what was expected.
    pub fn load(path: &Path) -> Result<Self, ResultsError> {
        let text = std::fs::read_to_string(path).map_err(|source| ResultsError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses results from `text` (migrating older versions); `path` names it in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ResultsError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ResultsError::Invalid {
                path: path.to_owned(),
                line: e.line(),
                message: format!("not JSON: {e}"),
            })?;
        let mut value = value;
        let mut migrated = false;
        match value
            .get("schema_version")
            .and_then(serde_json::Value::as_u64)
        {
            Some(v) if v == u64::from(SCHEMA_VERSION) => {}
            // Versions 3 to 5 only added optional fields (`node`, `fleet`; `resumed_from`;
            // waivers, conditions, certification, provenance).
            Some(2..=4) => {
                value["schema_version"] = SCHEMA_VERSION.into();
                migrated = true;
            }
            Some(1) => {
                migrate_v1(&mut value);
                migrated = true;
            }
            Some(v) => {
                return Err(ResultsError::Invalid {
                    path: path.to_owned(),
                    line: 1,
                    message: format!(
                        "results schema version {v}, this nfvi-verify reads versions 1 to {SCHEMA_VERSION}"
                    ),
                });
            }
            None => {
                return Err(ResultsError::Invalid {
                    path: path.to_owned(),
                    line: 1,
                    message: "not an nfvi-verify results.json (no schema_version)".to_owned(),
                });
            }
        }
        let schema_error = |line: usize, e: serde_json::Error| ResultsError::Invalid {
            path: path.to_owned(),
            line,
            message: format!("does not match the results schema: {e}"),
        };
        if migrated {
            // A migrated value has no lines left (serde names the field), and its
            // properties come back in name order.
            serde_json::from_value(value).map_err(|e| schema_error(1, e))
        } else {
            serde_json::from_str(text).map_err(|e| schema_error(e.line(), e))
        }
    }

    /// The JSON text, pretty-printed with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("results serialise");
        s.push('\n');
        s
    }
}

/// A results file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// Unreadable.
    #[error("cannot read results file `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Not a results file of this version.
    #[error("{}:{line}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong and what was expected.
        message: String,
    },
}

/// Version 1 kept distributions as samples named `cdf:<name>` and the Kolla stage as the
/// property `kolla stage`; version 2 has fields for both.
fn migrate_v1(value: &mut serde_json::Value) {
    value["schema_version"] = SCHEMA_VERSION.into();
    let Some(checks) = value.get_mut("checks").and_then(|c| c.as_array_mut()) else {
        return;
    };
    for check in checks {
        let Some(evidence) = check.get_mut("evidence").and_then(|e| e.as_object_mut()) else {
            continue;
        };
        let mut distributions = serde_json::Map::new();
        if let Some(samples) = evidence.get_mut("samples").and_then(|s| s.as_object_mut()) {
            let names: Vec<String> = samples
                .keys()
                .filter(|k| k.starts_with("cdf:"))
                .cloned()
                .collect();
            for name in names {
                let Some(values) = samples.remove(&name) else {
                    continue;
                };
                // Every element a number, or it is not a distribution.
                let numbers: Option<Vec<f64>> = values.as_array().and_then(|v| {
                    v.iter()
                        .map(serde_json::Value::as_f64)
                        .collect::<Option<Vec<f64>>>()
                });
                // Only what version 2 would accept moves; anything else stays a sample.
                if numbers.is_some_and(|n| crate::outcome::Percentiles::new(n).is_ok()) {
                    distributions.insert(name["cdf:".len()..].to_owned(), values);
                } else {
                    samples.insert(name, values);
                }
            }
        }
        if !distributions.is_empty() {
            evidence.insert("distributions".into(), distributions.into());
        }
        let stage = evidence
            .get_mut("properties")
            .and_then(|p| p.as_object_mut())
            .and_then(|p| p.remove("kolla stage"));
        if let Some(stage) = stage {
            evidence.insert("stage".into(), stage);
        }
    }
}

/// Writes a file so that it is either absent or complete: the bytes go to a temporary file
/// in the same directory, which is synced and renamed over the destination.
///
/// The temporary file has a random name and is created exclusively (never through a file or
/// link someone placed there), and the rename replaces a symbolic link at the destination
/// instead of writing through it. Its mode is 0666 less the umask, as for any file the user
/// writes.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // 0666 through open(2), so the user's umask applies as it does to any file they write.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.tmp-"))
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    // On error the temporary file is removed when it is dropped.
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_leave_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.json");
        write_atomic(&path, b"{}").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let err = write_atomic(&dir.path().join("missing/x.json"), b"{}");
        assert!(err.is_err());
    }

    #[test]
    fn atomic_writes_never_write_through_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        // A link at the destination and at the temporary name the old code used.
        let path = dir.path().join("results.json");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let old_tmp = dir
            .path()
            .join(format!(".results.json.tmp-{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &old_tmp).unwrap();
        write_atomic(&path, b"{}").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(!path.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
        use std::os::unix::fs::PermissionsExt;
        let mode = path.metadata().unwrap().permissions().mode() & 0o777;
        // 0666 less the umask: readable and writable by its owner, executable by nobody.
        assert_eq!(mode & 0o711, 0o600, "{mode:o}");
    }
}
