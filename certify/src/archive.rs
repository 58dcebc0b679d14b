//! tar.gz with limits: written deterministically (the bundle), read strictly (a bundle being
//! verified: regular files only, no traversal, no duplicates) or selectively (the members
//! of an evidence archive a run used, everything else streamed past and never kept).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

/// Bounds on what reading an archive may inflate.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// One member, inflated.
    pub member: u64,
    /// Every member kept, together.
    pub total: u64,
    /// Number of entries.
    pub entries: usize,
}

impl Limits {
    /// 64 MiB a member, 512 MiB in all, 100,000 entries.
    pub const DEFAULT: Limits = Limits {
        member: 64 << 20,
        total: 512 << 20,
        entries: 100_000,
    };
}

/// An archive that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Not gzip or tar, or cut short.
    #[error("corrupt archive")]
    Corrupt(#[source] std::io::Error),
    /// A member over the limit.
    #[error("member `{member}` inflates past {limit} bytes")]
    TooBig {
        /// The member.
        member: String,
        /// The limit.
        limit: u64,
    },
    /// Too many entries or bytes in all.
    #[error("the archive holds more than {0}")]
    TooMuch(String),
    /// A link, device, directory, absolute or `..` path (strict reading).
    #[error("member `{member}` is not allowed: {why}")]
    Unsafe {
        /// The member.
        member: String,
        /// What it is.
        why: &'static str,
    },
    /// The same path twice (strict reading).
    #[error("member `{0}` appears twice")]
    Duplicate(String),
    /// Bytes after the tar end blocks or after the gzip member (strict reading): what
    /// `tar xzf` might extract and verify never checked.
    #[error("trailing data after the archive: {0}")]
    Trailing(String),
}

/// Writes `members` (path, bytes) as a tar.gz with fixed headers: mode 0644, uid and gid 0,
/// no user or group names, `mtime` for every member, regular files only.
pub fn write_tar_gz(members: &[(String, Vec<u8>)], mtime: u64) -> std::io::Result<Vec<u8>> {
    // The gzip header's own mtime stays 0 (GzEncoder's default), so equal input gives equal bytes.
    let gz = GzEncoder::new(Vec::new(), Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    for (path, bytes) in members {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(mtime);
        tar.append_data(&mut h, path, bytes.as_slice())?;
    }
    tar.into_inner()?.finish()
}

fn entry_path(e: &tar::Entry<'_, impl Read>) -> String {
    String::from_utf8_lossy(&e.path_bytes()).into_owned()
}

fn read_limited(
    e: &mut impl Read,
    member: &str,
    limits: &Limits,
    declared: u64,
) -> Result<Vec<u8>, ArchiveError> {
    let too_big = || ArchiveError::TooBig {
        member: member.to_owned(),
        limit: limits.member,
    };
    if declared > limits.member {
        return Err(too_big());
    }
    let mut buf = Vec::with_capacity(declared as usize);
    e.take(limits.member + 1)
        .read_to_end(&mut buf)
        .map_err(ArchiveError::Corrupt)?;
    if buf.len() as u64 > limits.member {
        return Err(too_big());
    }
    Ok(buf)
}

fn check_path(p: &str) -> Result<(), &'static str> {
    if p.is_empty() {
        return Err("empty path");
    }
    if p.starts_with('/') {
        return Err("absolute path");
    }
    if p.split('/').any(|c| c == ".." || c == "." || c.is_empty()) {
        return Err("`..`, `.` or empty path component");
    }
    if p.contains('\\') || p.contains('\0') {
        return Err("backslash or NUL in the path");
    }
    Ok(())
}

/// Reads every member of a bundle, strictly: regular files with clean relative paths, each
/// once, within `limits`. Keeps the archive order.
pub fn read_strict(
    input: impl Read,
    limits: &Limits,
) -> Result<Vec<(String, Vec<u8>)>, ArchiveError> {
    // One gzip member only (never `MultiGzDecoder`), its input read through our own buffer
    // so what follows the member can be seen.
    let mut archive = tar::Archive::new(flate2::bufread::GzDecoder::new(BufReader::new(input)));
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut total = 0u64;
    for entry in archive.entries().map_err(ArchiveError::Corrupt)? {
        let mut e = entry.map_err(ArchiveError::Corrupt)?;
        let path = entry_path(&e);
        if out.len() >= limits.entries {
            return Err(ArchiveError::TooMuch(format!("{} entries", limits.entries)));
        }
        if e.header().entry_type() != tar::EntryType::Regular {
            return Err(ArchiveError::Unsafe {
                member: path,
                why: "not a regular file (link, directory or device)",
            });
        }
        check_path(&path).map_err(|why| ArchiveError::Unsafe {
            member: path.clone(),
            why,
        })?;
        if !seen.insert(path.clone()) {
            return Err(ArchiveError::Duplicate(path));
        }
        let declared = e.header().size().map_err(ArchiveError::Corrupt)?;
        let bytes = read_limited(&mut e, &path, limits, declared)?;
        total += bytes.len() as u64;
        if total > limits.total {
            return Err(ArchiveError::TooMuch(format!("{} bytes", limits.total)));
        }
        out.push((path, bytes));
    }
    expect_end(archive.into_inner())?;
    Ok(out)
}

/// After the last entry: the rest of the tar stream is zero blocks (at most 1 MiB of them)
/// and the gzip member is the end of the input.
fn expect_end<R: Read>(
    mut gz: flate2::bufread::GzDecoder<BufReader<R>>,
) -> Result<(), ArchiveError> {
    let mut buf = [0u8; 8192];
    let mut zeros = 0u64;
    loop {
        let n = gz.read(&mut buf).map_err(ArchiveError::Corrupt)?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|b| *b != 0) {
            return Err(ArchiveError::Trailing(
                "non-zero bytes after the tar end blocks".into(),
            ));
        }
        zeros += n as u64;
        if zeros > 1 << 20 {
            return Err(ArchiveError::Trailing(
                "more than 1 MiB of padding after the tar end blocks".into(),
            ));
        }
    }
    let mut rest = gz.into_inner();
    let left = rest.fill_buf().map_err(ArchiveError::Corrupt)?;
    if !left.is_empty() {
        let what = if left.starts_with(&[0x1f, 0x8b]) {
            "a second gzip member"
        } else {
            "bytes"
        };
        return Err(ArchiveError::Trailing(format!(
            "{what} after the gzip stream"
        )));
    }
    Ok(())
}

/// Reads the members named in `wanted` (a leading `./` is ignored on both sides) from an
/// evidence archive; every other entry is skipped without being kept, and macOS `._*`
/// files are ignored. Returns what was found, by wanted name.
pub fn read_selected(
    input: impl Read,
    wanted: &BTreeSet<String>,
    limits: &Limits,
) -> Result<BTreeMap<String, Vec<u8>>, ArchiveError> {
    let norm = |s: &str| s.trim_start_matches("./").to_owned();
    let by_norm: BTreeMap<String, &String> = wanted.iter().map(|w| (norm(w), w)).collect();
    let mut archive = tar::Archive::new(GzDecoder::new(input));
    let mut out = BTreeMap::new();
    let mut total = 0u64;
    for (n, entry) in archive
        .entries()
        .map_err(ArchiveError::Corrupt)?
        .enumerate()
    {
        if n >= limits.entries {
            return Err(ArchiveError::TooMuch(format!("{} entries", limits.entries)));
        }
        let mut e = entry.map_err(ArchiveError::Corrupt)?;
        let path = entry_path(&e);
        let base = path.rsplit('/').next().unwrap_or_default();
        if base.starts_with("._") || e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let Some(name) = by_norm.get(&norm(&path)) else {
            continue;
        };
        let declared = e.header().size().map_err(ArchiveError::Corrupt)?;
        let bytes = read_limited(&mut e, &path, limits, declared)?;
        total += bytes.len() as u64;
        if total > limits.total {
            return Err(ArchiveError::TooMuch(format!("{} bytes", limits.total)));
        }
        out.insert((*name).clone(), bytes);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writing_is_deterministic_and_reads_back() {
        let m = vec![
            ("a.json".to_owned(), b"{}".to_vec()),
            (
                "evidence/1-x/".to_owned() + &"d/".repeat(80) + "y",
                vec![7; 3],
            ),
        ];
        let one = write_tar_gz(&m, 1_700_000_000).unwrap();
        assert_eq!(one, write_tar_gz(&m, 1_700_000_000).unwrap());
        let back = read_strict(&one[..], &Limits::DEFAULT).unwrap();
        assert_eq!(back, m);
    }

    fn raw_tar(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        for (p, t, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*t);
            h.set_size(data.len() as u64);
            // set_path refuses `..`; write the name bytes directly, as a hostile archive would.
            h.as_gnu_mut().unwrap().name[..p.len()].copy_from_slice(p.as_bytes());
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn hostile_bundles_are_refused() {
        let reg = tar::EntryType::Regular;
        for (entries, want) in [
            (vec![("../x", reg, &b"1"[..])], "not allowed"),
            (vec![("/etc/x", reg, &b"1"[..])], "not allowed"),
            (vec![("a/./b", reg, &b"1"[..])], "not allowed"),
            (
                vec![("l", tar::EntryType::Symlink, &b""[..])],
                "not a regular file",
            ),
            (vec![("a", reg, &b"1"[..]), ("a", reg, &b"2"[..])], "twice"),
        ] {
            let e = read_strict(&raw_tar(&entries)[..], &Limits::DEFAULT).unwrap_err();
            assert!(e.to_string().contains(want), "{e}");
        }
        let small = Limits {
            member: 4,
            total: 6,
            entries: 2,
        };
        let e = read_strict(&raw_tar(&[("a", reg, b"12345")])[..], &small).unwrap_err();
        assert!(matches!(e, ArchiveError::TooBig { .. }));
        let e = read_strict(
            &raw_tar(&[("a", reg, b"1234"), ("b", reg, b"1234")])[..],
            &small,
        )
        .unwrap_err();
        assert!(matches!(e, ArchiveError::TooMuch(_)));
        assert!(matches!(
            read_strict(&b"not gzip"[..], &small),
            Err(ArchiveError::Corrupt(_))
        ));
    }

    #[test]
    fn data_after_the_archive_is_refused() {
        let m = vec![("a.json".to_owned(), b"{}".to_vec())];
        let good = write_tar_gz(&m, 0).unwrap();
        assert!(read_strict(&good[..], &Limits::DEFAULT).is_ok());
        // A second gzip member (`tar xzf` reads it: it could hold anything).
        let mut two = good.clone();
        two.extend(write_tar_gz(&[("evil".to_owned(), b"x".to_vec())], 0).unwrap());
        // Plain bytes after the gzip stream.
        let mut junk = good.clone();
        junk.extend_from_slice(b"junk");
        // A second tar inside the gzip member, after the end blocks.
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_cksum();
        tar.append_data(&mut h, "a.json", &b"1"[..]).unwrap();
        let mut inner = tar.into_inner().unwrap();
        inner.extend_from_slice(&inner.clone());
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        std::io::Write::write_all(&mut gz, &inner).unwrap();
        let hidden = gz.finish().unwrap();
        for (bytes, want) in [
            (two, "a second gzip member"),
            (junk, "bytes after the gzip stream"),
            (hidden, "non-zero bytes after the tar end blocks"),
        ] {
            let e = read_strict(&bytes[..], &Limits::DEFAULT).unwrap_err();
            assert!(matches!(e, ArchiveError::Trailing(_)), "{e}");
            assert!(e.to_string().contains(want), "{e}");
            assert!(
                e.to_string().contains("trailing data after the archive"),
                "{e}"
            );
        }
    }

    #[test]
    fn selected_members_only_and_junk_ignored() {
        let reg = tar::EntryType::Regular;
        let t = raw_tar(&[
            ("./plugins/e2e/results/global/._junit_01.xml", reg, b"junk"),
            (
                "./plugins/e2e/results/global/junit_01.xml",
                reg,
                b"<testsuites/>",
            ),
            ("./resources/ns/secrets.json", reg, b"token"),
        ]);
        let wanted: BTreeSet<String> =
            ["plugins/e2e/results/global/junit_01.xml".to_owned()].into();
        let got = read_selected(&t[..], &wanted, &Limits::DEFAULT).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            got["plugins/e2e/results/global/junit_01.xml"],
            b"<testsuites/>"
        );
    }
}
