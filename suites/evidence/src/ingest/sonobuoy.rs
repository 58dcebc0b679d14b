//! Sonobuoy results tarballs (`sonobuoy retrieve`), read as one stream with limits: the tar is
//! walked raw (extension headers handled here, bounded), a member larger than [`MAX_FILE`]
//! refuses the archive, the total inflated bytes are bounded, and only the members the checks
//! need are kept in memory: the e2e plugin's JUnit and e2e.log (modern
//! `plugins/e2e/results/global/` and pre-0.15.1 `plugins/e2e/results/`), `serverversion.json`,
//! `meta/config.json`, `meta/run.log` (its first line: when the run started) and the namespaces
//! (the kube-system UID). Everything else, the service-account tokens under `resources/` among
//! it, is skipped unread; macOS `._*` members are junk. `Provenance.members` lists exactly what
//! was read, so a bundle carries only those.

use std::io::Read;
use std::path::Path;

use super::{IngestError, MAX_FILE, ParseError, e2elog, junit, provenance};
use crate::model::{Ingested, Recorded, Report};

/// The most inflated bytes read from one archive, every member included.
pub const MAX_INFLATED: u64 = 1 << 30;
/// The most an extension header (a long name) may be.
const MAX_EXTENSION: u64 = 64 << 10;
/// The most members walked.
const MAX_MEMBERS: usize = 200_000;

/// Counts what passes through and fails past a limit.
struct Limited<R> {
    inner: R,
    read: u64,
    limit: u64,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(std::io::Error::other(format!(
                "the archive inflates past {} MiB, the most read from one archive",
                self.limit >> 20
            )));
        }
        Ok(n)
    }
}

/// A member kept: its name and bytes.
type Member = Option<(String, Vec<u8>)>;

/// What the walk kept.
#[derive(Default)]
struct Kept {
    junit: Member,
    log: Member,
    server_version: Member,
    config: Member,
    run_log: Member,
    namespaces: Member,
    plugins: Vec<String>,
}

fn wanted(name: &str) -> Option<fn(&mut Kept) -> &mut Member> {
    let base = name.rsplit('/').next().unwrap_or(name);
    if base.starts_with("._") {
        return None;
    }
    let e2e = name.starts_with("plugins/e2e/results/");
    match name {
        _ if e2e && base.starts_with("junit") && base.ends_with(".xml") => Some(|k| &mut k.junit),
        _ if e2e && base == "e2e.log" => Some(|k| &mut k.log),
        "serverversion.json" => Some(|k| &mut k.server_version),
        "meta/config.json" => Some(|k| &mut k.config),
        "meta/run.log" => Some(|k| &mut k.run_log),
        "resources/cluster/core_v1_namespaces.json" | "resources/cluster/Namespaces.json" => {
            Some(|k| &mut k.namespaces)
        }
        _ => None,
    }
}

/// A member's name: `./` dropped; absolute names and `..` refused.
fn member_name(raw: &[u8]) -> Result<String, String> {
    let name = String::from_utf8_lossy(raw).into_owned();
    let trimmed = name.trim_start_matches("./").to_owned();
    if trimmed.starts_with('/') || trimmed.split('/').any(|c| c == "..") {
        return Err(format!(
            "member `{name}` names a path outside the archive (absolute or with `..`): refused"
        ));
    }
    Ok(trimmed)
}

/// `path=` of a PAX extended header.
fn pax_path(data: &[u8]) -> Option<Vec<u8>> {
    let mut rest = data;
    while !rest.is_empty() {
        let sp = rest.iter().position(|b| *b == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..sp]).ok()?.parse().ok()?;
        if len <= sp + 1 || len > rest.len() {
            return None;
        }
        let record = &rest[sp + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(v) = record.strip_prefix(b"path=") {
            return Some(v.to_vec());
        }
        rest = &rest[len..];
    }
    None
}

fn walk(path: &Path, data: &[u8]) -> Result<(Kept, Vec<String>), IngestError> {
    let gz = flate2::read::MultiGzDecoder::new(data);
    let limited = Limited {
        inner: gz,
        read: 0,
        limit: MAX_INFLATED,
    };
    let mut archive = tar::Archive::new(limited);
    let fail = |at: Option<String>, m: String| IngestError::new(path, at, m);
    let entries = archive
        .entries()
        .map_err(|e| fail(None, format!("not a tar inside the gzip: {e}")))?
        .raw(true);
    let mut kept = Kept::default();
    let mut members = Vec::new();
    let mut long_name: Option<Vec<u8>> = None;
    let mut last = String::from("(start of the archive)");
    for (n, entry) in entries.enumerate() {
        if n >= MAX_MEMBERS {
            return Err(fail(None, format!("more than {MAX_MEMBERS} members")));
        }
        let mut entry = entry.map_err(|e| {
            fail(
                Some(format!("the member after {last}")),
                format!("malformed or truncated archive: {e}"),
            )
        })?;
        let kind = entry.header().entry_type();
        let size = entry.header().size().unwrap_or(u64::MAX);
        if kind.is_gnu_longname() || kind.is_pax_local_extensions() {
            if size > MAX_EXTENSION {
                return Err(fail(
                    Some(format!("the member after {last}")),
                    format!("an extension header of {size} bytes; at most {MAX_EXTENSION}"),
                ));
            }
            let mut ext = Vec::new();
            entry
                .read_to_end(&mut ext)
                .map_err(|e| fail(Some(format!("the member after {last}")), format!("{e}")))?;
            long_name = if kind.is_gnu_longname() {
                Some(ext.split(|b| *b == 0).next().unwrap_or_default().to_vec())
            } else {
                pax_path(&ext).or(long_name)
            };
            continue;
        }
        if kind.is_pax_global_extensions() || kind.is_gnu_longlink() {
            if size > MAX_EXTENSION {
                return Err(fail(None, format!("an extension header of {size} bytes")));
            }
            continue;
        }
        let raw = long_name
            .take()
            .unwrap_or_else(|| entry.path_bytes().into_owned());
        let name = member_name(&raw).map_err(|m| fail(Some(format!("member {last}+1")), m))?;
        last.clone_from(&name);
        if size > MAX_FILE {
            return Err(fail(
                Some(format!("member {name}")),
                format!(
                    "declares {size} bytes inflated; at most {} MiB per member",
                    MAX_FILE >> 20
                ),
            ));
        }
        if let Some(plugin) = name
            .strip_prefix("plugins/")
            .and_then(|p| p.split('/').next())
            && !plugin.is_empty()
            && !kept.plugins.iter().any(|p| p == plugin)
        {
            kept.plugins.push(plugin.to_owned());
        }
        if !kind.is_file() {
            continue;
        }
        let Some(slot) = wanted(&name) else { continue };
        if slot(&mut kept).is_some() {
            // One e2e JUnit is judged; a second one would be a different run.
            if name.ends_with(".xml") {
                return Err(fail(
                    Some(format!("member {name}")),
                    "a second e2e JUnit in one archive; expected one".to_owned(),
                ));
            }
            continue;
        }
        let mut buf = Vec::new();
        (&mut entry)
            .take(MAX_FILE + 1)
            .read_to_end(&mut buf)
            .map_err(|e| {
                fail(
                    Some(format!("member {name}")),
                    format!("cannot inflate: {e}"),
                )
            })?;
        if buf.len() as u64 > MAX_FILE {
            return Err(fail(
                Some(format!("member {name}")),
                format!("inflates past {} MiB", MAX_FILE >> 20),
            ));
        }
        members.push(name.clone());
        *slot(&mut kept) = Some((name, buf));
    }
    // tar stops at its end-of-archive blocks; read the gzip stream to its end so that its
    // CRC and length trailer are checked too (a truncated or corrupted archive is refused).
    std::io::copy(&mut archive.into_inner(), &mut std::io::sink()).map_err(|e| {
        fail(
            Some("the end of the gzip stream".to_owned()),
            format!("truncated or corrupted: {e}"),
        )
    })?;
    Ok((kept, members))
}

/// Ingests a Sonobuoy results tarball.
pub fn ingest(path: &Path, data: &[u8]) -> Result<Ingested, IngestError> {
    let (kept, members) = walk(path, data)?;
    if members.is_empty() && kept.plugins.is_empty() {
        return Err(IngestError::new(
            path,
            None,
            "a gzip'd tar, but not a Sonobuoy results tarball: no plugins/, serverversion.json or meta/",
        ));
    }
    let mut p = provenance("sonobuoy", path, data);
    p.members = members;
    let mut recorded = Recorded::default();
    if let Some((name, bytes)) = &kept.server_version {
        let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
            ParseError::at(
                format!("line {}:{}", e.line(), e.column()),
                format!("expected the server's version JSON: {e}"),
            )
            .in_member(path, name)
        })?;
        if let Some(g) = v.get("gitVersion").and_then(|g| g.as_str()) {
            recorded.k8s_version = Some(g.chars().take(64).collect());
            recorded.version_source = Some("serverversion.json".to_owned());
        }
    }
    if let Some((name, bytes)) = &kept.config {
        let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
            ParseError::at(
                format!("line {}:{}", e.line(), e.column()),
                format!("expected Sonobuoy's config JSON: {e}"),
            )
            .in_member(path, name)
        })?;
        p.tool_version = v.get("Version").and_then(|g| g.as_str()).map(str::to_owned);
    }
    if let Some((name, bytes)) = &kept.namespaces {
        recorded.cluster_uid = kube_system_uid(bytes).map_err(|e| e.in_member(path, name))?;
    }
    let run_at = kept.run_log.as_ref().and_then(|(_, b)| first_time(b));
    let report = match &kept.junit {
        Some((name, bytes)) => {
            let parsed = junit::parse(bytes).map_err(|e| e.in_member(path, name))?;
            let junit::Junit::E2e(mut run) = parsed else {
                return Err(IngestError::new(
                    path,
                    Some(format!("member {name}")),
                    "the e2e plugin's JUnit is not ginkgo's Kubernetes e2e suite",
                ));
            };
            if let Some((_, log)) = &kept.log {
                let parsed = e2elog::parse(log);
                if recorded.k8s_version.is_none() {
                    let from_log = super::log_identity(&parsed);
                    recorded.k8s_version = from_log.k8s_version;
                    recorded.version_source = from_log.version_source;
                }
                run.log = Some(parsed);
            }
            Report::E2e(run)
        }
        None => Report::Nothing(format!(
            "{} is a Sonobuoy results tarball without the e2e plugin (plugins: {}): accepted as evidence of nothing for the e2e conformance checks",
            path.display(),
            if kept.plugins.is_empty() {
                "none".to_owned()
            } else {
                kept.plugins.join(", ")
            }
        )),
    };
    let run_at_source = if run_at.is_some() { "file" } else { "mtime" };
    Ok(Ingested {
        input: path.to_owned(),
        provenance: vec![p],
        run_at,
        run_at_source,
        recorded,
        report,
    })
}

/// The `time` of the first JSON line of meta/run.log.
fn first_time(run_log: &[u8]) -> Option<chrono::DateTime<chrono::Utc>> {
    let line = run_log.split(|b| *b == b'\n').next()?;
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    super::naive_utc(v.get("time")?.as_str()?)
}

/// The kube-system namespace's UID in a namespace list.
fn kube_system_uid(bytes: &[u8]) -> Result<Option<String>, ParseError> {
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        ParseError::at(
            format!("line {}:{}", e.line(), e.column()),
            format!("expected a list of namespaces: {e}"),
        )
    })?;
    let items = v.get("items").or(Some(&v)).and_then(|i| i.as_array());
    Ok(items.into_iter().flatten().find_map(|ns| {
        let meta = ns.get("metadata")?;
        (meta.get("name")?.as_str()? == "kube-system")
            .then(|| meta.get("uid")?.as_str().map(str::to_owned))?
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names() {
        assert_eq!(member_name(b"./meta/run.log").unwrap(), "meta/run.log");
        assert!(member_name(b"../etc/passwd").is_err());
        assert!(member_name(b"plugins/../../x").is_err());
        assert!(member_name(b"/etc/passwd").is_err());
    }

    #[test]
    fn wanted_members() {
        assert!(wanted("plugins/e2e/results/global/junit_01.xml").is_some());
        assert!(wanted("plugins/e2e/results/junit_01.xml").is_some());
        assert!(wanted("plugins/e2e/results/global/._junit_01.xml").is_none());
        assert!(wanted("resources/ns/kube-system/Secrets.json").is_none());
        assert!(wanted("plugins/systemd_logs/results/node1").is_none());
    }

    #[test]
    fn pax_paths() {
        assert_eq!(
            pax_path(b"20 path=a/b/c/d/e/f\n"),
            Some(b"a/b/c/d/e/f".to_vec())
        );
        assert_eq!(pax_path(b"99 path=x\n"), None);
        assert_eq!(pax_path(b"x"), None);
    }
}
