//! `nfvi-verify bundle RUN_DIR --sign KEY`: one signed tar.gz holding everything a reviewer
//! needs, secrets removed.
//!
//! Members, in this order: `manifest.json` (first, so `tar tzf` shows it first), the run's
//! files (`results.json`, `junit.xml`, `report.html`, `badge.svg`, then `nfvi-verify.log`,
//! `target.toml`, `waivers.toml` and the upstream suites' per-test ledger `upstream.journal`
//! when present), `evidence/<n>-<basename>` for each
//! evidence file (an archive's members the run used under `evidence/<n>-<basename>/`), and
//! the reference model this binary embeds under `reference-model/`.

use std::collections::BTreeSet;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use nfvi_harness::results::{RunResults, write_atomic};

use crate::archive::{self, ArchiveError, Limits};
use crate::manifest::{
    BUNDLE_FORMAT, EvidenceFile, MANIFEST, MODEL_PREFIX, Manifest, Member, SuiteRef, Tool,
    embedded_model_files, embedded_model_sha256, hex, sha256_hex,
};
use crate::redact::{self, Redaction};
use crate::sshkey::PrivateKey;
use crate::sshsig;

/// Run files taken when present; the first four must be there.
const REQUIRED: &[&str] = &["results.json", "junit.xml", "report.html", "badge.svg"];
const OPTIONAL: &[&str] = &[
    "nfvi-verify.log",
    "target.toml",
    "waivers.toml",
    "upstream.journal",
];

/// Why no bundle was written.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The run directory lacks a file.
    #[error("`{}` has no {name}: not the output directory of a finished run", dir.display())]
    Missing {
        /// The run directory.
        dir: PathBuf,
        /// The file.
        name: &'static str,
    },
    /// results.json is not usable.
    #[error(transparent)]
    Results(#[from] nfvi_harness::results::ResultsError),
    /// An evidence file differs from what the run read.
    #[error(
        "evidence file `{file}` changed since the run ({why}); rerun with the file as it is now"
    )]
    EvidenceChanged {
        /// The file.
        file: String,
        /// Missing, or its hash.
        why: String,
    },
    /// An evidence archive cannot be read.
    #[error("evidence archive `{file}`")]
    EvidenceArchive {
        /// The archive.
        file: String,
        /// The cause.
        #[source]
        source: ArchiveError,
    },
    /// A member is too large.
    #[error("`{}` is larger than {limit} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// A binary member holds a secret, which cannot be cut out of it.
    #[error(
        "binary member `{member}` holds secrets ({kinds}) that cannot be redacted in a binary file; remove it or the secrets and run again"
    )]
    SecretInBinary {
        /// The member.
        member: String,
        /// Their kinds.
        kinds: String,
    },
    /// Redaction left a member that no longer parses: refused rather than bundled, since
    /// verify would call such a bundle tampered.
    #[error(
        "redaction would leave member `{member}` invalid {format} ({error}); no bundle written. Please report this with the kind of line that held the secret"
    )]
    RedactionBroke {
        /// The member.
        member: String,
        /// JSON or TOML.
        format: &'static str,
        /// The parser's message.
        error: String,
    },
    /// A file cannot be read or written.
    #[error("cannot {what} `{}`", path.display())]
    Io {
        /// read or write.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Signing failed.
    #[error("cannot sign the bundle")]
    Sign(#[source] sshsig::SigError),
}

/// What was written.
#[derive(Debug)]
pub struct Bundled {
    /// The bundle.
    pub path: PathBuf,
    /// Its signature.
    pub signature: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
}

fn read(path: &Path, limit: u64) -> Result<Vec<u8>, BundleError> {
    let io = |source| BundleError::Io {
        what: "read",
        path: path.to_owned(),
        source,
    };
    let mut f = open_regular(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    if len > limit {
        return Err(BundleError::TooLarge {
            path: path.to_owned(),
            limit,
        });
    }
    let mut data = Vec::new();
    std::io::Read::read_to_end(&mut (&mut f).take(limit + 1), &mut data).map_err(io)?;
    Ok(data)
}

/// Opens `path` only if it is a regular file, never through a symbolic link: the file
/// opened is the one `lstat` saw (same device and inode), so whoever can write in the run
/// directory or beside an evidence file cannot have the bundle pack another file (such as
/// /etc/shadow) in its place.
fn open_regular(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::MetadataExt as _;
    let refuse =
        |why: &str| std::io::Error::other(format!("{why}; only regular files are bundled"));
    let seen = std::fs::symlink_metadata(path)?;
    if seen.file_type().is_symlink() {
        return Err(refuse("it is a symbolic link"));
    }
    if !seen.is_file() {
        return Err(refuse("it is not a regular file"));
    }
    let f = std::fs::File::open(path)?;
    let opened = f.metadata()?;
    if (opened.dev(), opened.ino()) != (seen.dev(), seen.ino()) {
        return Err(refuse("it was replaced while being opened"));
    }
    Ok(f)
}

/// The default bundle name: `<run-id>.nfvi-bundle.tar.gz` in the current directory.
pub fn default_out(run_id: &str) -> PathBuf {
    PathBuf::from(format!("{run_id}.nfvi-bundle.tar.gz"))
}

/// One evidence file as results.json records it (`checks[].evidence.provenance[]`).
#[derive(Debug, Clone)]
struct Provenance {
    file: String,
    sha256: String,
    members: Vec<String>,
}

/// Every distinct evidence file of the run, in order of first mention, with the union of
/// the archive members its checks used.
fn provenance(raw: &serde_json::Value) -> Vec<Provenance> {
    let mut out: Vec<Provenance> = Vec::new();
    let checks = raw
        .get("checks")
        .and_then(|c| c.as_array())
        .into_iter()
        .flatten();
    for p in checks
        .filter_map(|c| c.pointer("/evidence/provenance")?.as_array())
        .flatten()
    {
        let s = |k: &str| {
            p.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let members: Vec<String> = p
            .get("members")
            .and_then(|m| m.as_array())
            .into_iter()
            .flatten()
            .filter_map(|m| m.as_str().map(str::to_owned))
            .collect();
        let file = s("file");
        if file.is_empty() {
            continue;
        }
        match out.iter_mut().find(|e| e.file == file) {
            Some(e) => {
                for m in members {
                    if !e.members.contains(&m) {
                        e.members.push(m);
                    }
                }
            }
            None => out.push(Provenance {
                file,
                sha256: s("sha256"),
                members,
            }),
        }
    }
    out
}

fn file_sha256(f: &mut std::fs::File) -> std::io::Result<String> {
    let mut cx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = std::io::Read::read(f, &mut buf)?;
        if n == 0 {
            return Ok(hex(cx.finish().as_ref()));
        }
        cx.update(&buf[..n]);
    }
}

fn is_archive(name: &str) -> bool {
    name.ends_with(".tar.gz") || name.ends_with(".tgz")
}

/// Builds, writes and signs the bundle of `run_dir` as `out` and `out.sig`.
pub fn bundle(run_dir: &Path, key: &PrivateKey, out: &Path) -> Result<Bundled, BundleError> {
    let limits = Limits::DEFAULT;
    for name in REQUIRED {
        if !run_dir.join(name).is_file() {
            return Err(BundleError::Missing {
                dir: run_dir.to_owned(),
                name,
            });
        }
    }
    let results = RunResults::load(&run_dir.join("results.json"))?;
    let raw: serde_json::Value =
        serde_json::from_slice(&read(&run_dir.join("results.json"), limits.member)?)
            .unwrap_or_default();
    // (path in the bundle, bytes before redaction)
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for name in REQUIRED.iter().chain(OPTIONAL) {
        let path = run_dir.join(name);
        if path.is_file() {
            files.push(((*name).to_owned(), read(&path, limits.member)?));
        }
    }
    let mut evidence = Vec::new();
    for (n, p) in provenance(&raw).into_iter().enumerate() {
        let path = Path::new(&p.file);
        let base = path
            .file_name()
            .map(|b| b.to_string_lossy().into_owned())
            .unwrap_or_else(|| "evidence".into());
        let changed = |why: String| BundleError::EvidenceChanged {
            file: p.file.clone(),
            why,
        };
        // Opened once: what is hashed is what goes in.
        let mut f = open_regular(path).map_err(|e| changed(format!("cannot read it: {e}")))?;
        let actual = file_sha256(&mut f).map_err(|e| changed(format!("cannot read it: {e}")))?;
        if !actual.eq_ignore_ascii_case(&p.sha256) {
            return Err(changed(format!(
                "SHA-256 {actual}, the run recorded {}",
                p.sha256
            )));
        }
        let prefix = format!("evidence/{}-{base}", n + 1);
        let mut bundle_members = Vec::new();
        if is_archive(&base) && !p.members.is_empty() {
            let wanted: BTreeSet<String> = p.members.iter().cloned().collect();
            std::io::Seek::rewind(&mut f).map_err(|e| changed(format!("cannot read it: {e}")))?;
            let got = archive::read_selected(&mut f, &wanted, &limits).map_err(|source| {
                BundleError::EvidenceArchive {
                    file: p.file.clone(),
                    source,
                }
            })?;
            for m in &p.members {
                let bytes = got
                    .get(m)
                    .ok_or_else(|| changed(format!("it no longer holds `{m}`")))?;
                let name = format!("{prefix}/{}", m.trim_start_matches("./"));
                bundle_members.push(name.clone());
                files.push((name, bytes.clone()));
            }
        } else {
            bundle_members.push(prefix.clone());
            std::io::Seek::rewind(&mut f).map_err(|e| changed(format!("cannot read it: {e}")))?;
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut (&mut f).take(limits.member + 1), &mut data)
                .map_err(|e| changed(format!("cannot read it: {e}")))?;
            if data.len() as u64 > limits.member {
                return Err(BundleError::TooLarge {
                    path: path.to_owned(),
                    limit: limits.member,
                });
            }
            files.push((prefix, data));
        }
        evidence.push(EvidenceFile {
            original_path: p.file,
            original_sha256: p.sha256,
            archive_members: p.members,
            bundle_members,
        });
    }
    for (path, text) in embedded_model_files() {
        files.push((format!("{MODEL_PREFIX}{path}"), text.as_bytes().to_vec()));
    }

    // Redaction first; the hashes are of what goes in.
    let mut redactions: Vec<Redaction> = Vec::new();
    let mut members = Vec::new();
    let mut entries: Vec<(String, Vec<u8>)> = Vec::with_capacity(files.len() + 1);
    for (name, bytes) in files {
        let (bytes, binary) = match redact::as_text(&bytes) {
            Some(text) if !name.starts_with(MODEL_PREFIX) => {
                let (clean, found) = redact::redact(&name, text);
                if !found.is_empty() {
                    check_syntax(&name, text, &clean)?;
                }
                redactions.extend(found);
                (clean.into_bytes(), false)
            }
            Some(_) => (bytes, false),
            None => {
                let found = redact::scan_binary(&name, &bytes);
                if !found.is_empty() {
                    let kinds: BTreeSet<&str> = found.iter().map(|r| r.kind.as_str()).collect();
                    return Err(BundleError::SecretInBinary {
                        member: name,
                        kinds: kinds.into_iter().collect::<Vec<_>>().join(", "),
                    });
                }
                (bytes, true)
            }
        };
        members.push(Member {
            path: name.clone(),
            sha256: sha256_hex(&bytes),
            size: bytes.len() as u64,
            binary,
        });
        entries.push((name, bytes));
    }
    let manifest = Manifest {
        bundle_format: BUNDLE_FORMAT,
        run_id: results.run_id.clone(),
        tool: Tool {
            name: results.tool.name.clone(),
            version: results.tool.version.clone(),
            git_sha: results.tool.git_sha.clone(),
            bundler_sha256: std::fs::File::open("/proc/self/exe")
                .and_then(|mut f| file_sha256(&mut f))
                .unwrap_or_else(|_| "unknown".into()),
            bundler_version: env!("CARGO_PKG_VERSION").to_owned(),
        },
        suite: SuiteRef {
            name: results.suite.name.clone(),
            version: results.suite.version.clone(),
        },
        verdict: results.verdict.as_str().to_owned(),
        reference_model_sha256: embedded_model_sha256(),
        members,
        evidence,
        redactions,
    };
    let mut manifest_json = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    manifest_json.push(b'\n');
    entries.insert(0, (MANIFEST.to_owned(), manifest_json));

    let mtime = u64::try_from(results.finished_at.timestamp()).unwrap_or(0);
    let io_out = |source| BundleError::Io {
        what: "write",
        path: out.to_owned(),
        source,
    };
    let bytes = archive::write_tar_gz(&entries, mtime).map_err(io_out)?;
    let sig =
        sshsig::sign(key, sshsig::NAMESPACE, &mut bytes.as_slice()).map_err(BundleError::Sign)?;
    let sig_path = signature_path(out);
    write_atomic(out, &bytes).map_err(io_out)?;
    if let Err(source) = write_atomic(&sig_path, sig.as_bytes()) {
        // A bundle without its signature is not left behind.
        let _ = std::fs::remove_file(out);
        return Err(BundleError::Io {
            what: "write",
            path: sig_path,
            source,
        });
    }
    Ok(Bundled {
        path: out.to_owned(),
        signature: sig_path,
        manifest,
    })
}

/// Refuses a redaction that broke the syntax of a `.json` member, `target.toml` or
/// `waivers.toml` that parsed before it.
fn check_syntax(member: &str, before: &str, after: &str) -> Result<(), BundleError> {
    let broke = |format, error: String| BundleError::RedactionBroke {
        member: member.to_owned(),
        format,
        error,
    };
    let base = member.rsplit('/').next().unwrap_or(member);
    if base.ends_with(".json") {
        let parse = |t| serde_json::from_str::<serde::de::IgnoredAny>(t);
        if parse(before).is_ok()
            && let Err(e) = parse(after)
        {
            return Err(broke("JSON", e.to_string()));
        }
    } else if member == "target.toml" || member == "waivers.toml" {
        let parse = |t| toml::from_str::<toml::Table>(t);
        if parse(before).is_ok()
            && let Err(e) = parse(after)
        {
            return Err(broke("TOML", e.message().to_owned()));
        }
    }
    Ok(())
}

/// `FILE.sig`.
pub fn signature_path(bundle: &Path) -> PathBuf {
    let mut s = bundle.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redaction_that_breaks_json_or_toml_is_refused() {
        for (member, before, after, format) in [
            ("results.json", "{\"a\": \"b\"}", "{\"a\": \"[R]}", "JSON"),
            ("evidence/1-x.tar.gz/k.json", "[1]", "[1", "JSON"),
            ("waivers.toml", "reason = 'a b'", "reason = '[R]", "TOML"),
            ("target.toml", "a = \"b\"", "a = \"[R]", "TOML"),
        ] {
            let e = check_syntax(member, before, after).unwrap_err().to_string();
            assert!(
                e.contains(&format!("member `{member}` invalid {format}")),
                "{e}"
            );
        }
        // Still valid, or not valid before (not redaction's doing), or another member.
        assert!(check_syntax("results.json", "{}", "{ }").is_ok());
        assert!(check_syntax("results.json", "{", "{[").is_ok());
        assert!(check_syntax("nfvi-verify.log", "{}", "{").is_ok());
    }

    #[test]
    fn provenance_is_gathered_per_file_with_the_union_of_members() {
        let raw = serde_json::json!({"checks": [
            {"evidence": {"provenance": [{"file": "/e/a.tar.gz", "sha256": "aa", "members": ["x"]}]}},
            {"evidence": {}},
            {"evidence": {"provenance": [
                {"file": "/e/a.tar.gz", "sha256": "aa", "members": ["y", "x"]},
                {"file": "/e/b.json", "sha256": "bb", "members": []}
            ]}}
        ]});
        let p = provenance(&raw);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].members, ["x", "y"]);
        assert_eq!(p[1].file, "/e/b.json");
        assert!(provenance(&serde_json::json!({"checks": 3})).is_empty());
    }
}
