//! Directories root writes its artifacts into (`run --out`, `report`, `bundle --out`) must not
//! be in the hands of another local user. Writing files there is safe against a planted link
//! (artifacts go through a random temporary file that is renamed), but a user who owns the
//! directory, or can write to a directory above it, can swap it for a link between two
//! writes and have root create files wherever it points. So, as OpenSSH's StrictModes does
//! for key files: every directory from `/` down must belong to root or to the user running
//! nfvi-verify, and none may be writable by others, except an ancestor with the sticky bit
//! (such as /tmp: others cannot rename or remove what is not theirs there).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const STICKY: u32 = 0o1000;

/// One directory on the way to the destination, as the judgement reads it.
#[derive(Debug, Clone)]
struct Dir {
    path: PathBuf,
    uid: u32,
    gid: u32,
    mode: u32,
}

/// Refuses `dir` if a user other than root and `me` could control it or any directory on the
/// way to it. The path is walked as given: every prefix that exists is judged by the chain of
/// directories it resolves to, and a prefix that is a symbolic link must be root's (or
/// `me`'s), so that nobody else can re-point it between this check and the writes. Prefixes
/// that do not exist yet end the walk: root creates them, inside a directory judged safe.
/// Called before creating the directory (nothing is created under another user's) and again
/// after. Only applies when running as root: an unprivileged run cannot be escalated through.
/// As root, whether results in `dir` (an earlier run's, to build on) can be trusted: the same
/// rule as for writing, since another user who can write there could have planted them.
pub fn check_source_dir(dir: &Path) -> Result<(), String> {
    let me = nix::unistd::geteuid().as_raw();
    if me != 0 {
        return Ok(());
    }
    walk(dir, me).map_err(|why| {
        format!(
            "not building on the results in `{}` as root: {why}; another user could have planted them",
            dir.display()
        )
    })
}

pub fn check_dir(dir: &Path) -> Result<(), String> {
    let me = nix::unistd::geteuid().as_raw();
    if me != 0 {
        return Ok(());
    }
    walk(dir, me).map_err(|why| {
        format!(
            "refusing to write into `{}` as root: {why}; another user could swap it for a link and have root write wherever it points. Choose a directory only root can write to (for example under /var/lib or a root-owned 0700 directory)",
            dir.display()
        )
    })
}

fn walk(dir: &Path, me: u32) -> Result<(), String> {
    let abs = std::path::absolute(dir).map_err(|e| format!("cannot resolve it: {e}"))?;
    let mut prefix = PathBuf::new();
    for part in abs.components() {
        prefix.push(part);
        let seen = match std::fs::symlink_metadata(&prefix) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(e) => return Err(format!("cannot read `{}`: {e}", prefix.display())),
        };
        if seen.file_type().is_symlink() && seen.uid() != 0 && seen.uid() != me {
            return Err(format!(
                "`{}` is a symbolic link that uid {} owns",
                prefix.display(),
                seen.uid()
            ));
        }
        // Only the destination itself may not be a sticky shared directory such as /tmp.
        judge(&resolved_chain(&prefix)?, me, prefix == abs)?;
    }
    Ok(())
}

/// The directories from `/` to what `path` resolves to.
fn resolved_chain(path: &Path) -> Result<Vec<Dir>, String> {
    let real = path
        .canonicalize()
        .map_err(|e| format!("cannot resolve `{}`: {e}", path.display()))?;
    let mut chain = Vec::new();
    for p in real.ancestors().collect::<Vec<_>>().into_iter().rev() {
        let m = std::fs::metadata(p).map_err(|e| format!("cannot read `{}`: {e}", p.display()))?;
        chain.push(Dir {
            path: p.to_owned(),
            uid: m.uid(),
            gid: m.gid(),
            mode: m.mode() & 0o7777,
        });
    }
    Ok(chain)
}

/// Refuses the parent directory of `file` (see [`check_dir`]).
pub fn check_parent(file: &Path) -> Result<(), String> {
    let parent = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    check_dir(parent)
}

/// The judgement over the chain of directories from `/` to the destination (last). A
/// non-directory at the end (a prefix that resolves to a file) is judged as its directory
/// would be; writing into it fails later on its own.
fn judge(chain: &[Dir], me: u32, destination: bool) -> Result<(), String> {
    let last = if destination {
        chain.len().saturating_sub(1)
    } else {
        usize::MAX
    };
    for (i, d) in chain.iter().enumerate() {
        if d.uid != 0 && d.uid != me {
            return Err(format!("`{}` belongs to uid {}", d.path.display(), d.uid));
        }
        let by_others = d.mode & 0o002 != 0;
        let by_group = d.mode & 0o020 != 0 && d.gid != 0;
        let sticky = d.mode & STICKY != 0;
        if (by_others || by_group) && (i == last || !sticky) {
            let who = if by_others { "every user" } else { "group" };
            return Err(format!(
                "`{}` is writable by {who} (mode {:o})",
                d.path.display(),
                d.mode
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(path: &str, uid: u32, gid: u32, mode: u32) -> Dir {
        Dir {
            path: path.into(),
            uid,
            gid,
            mode,
        }
    }

    #[test]
    fn who_may_control_the_directories_on_the_way() {
        let root = d("/", 0, 0, 0o755);
        let tmp = d("/tmp", 0, 0, 0o1777);
        #[rustfmt::skip]
        let cases: &[(&str, Vec<Dir>, Option<&str>)] = &[
            ("root's own directory", vec![root.clone(), d("/var/lib/x", 0, 0, 0o755)], None),
            ("a private directory in /tmp", vec![root.clone(), tmp.clone(), d("/tmp/r", 0, 0, 0o700)], None),
            ("another user's directory in /tmp", vec![root.clone(), tmp.clone(), d("/tmp/r", 1000, 1000, 0o755)], Some("`/tmp/r` belongs to uid 1000")),
            ("a world-writable destination", vec![root.clone(), d("/srv", 0, 0, 0o777)], Some("`/srv` is writable by every user (mode 777)")),
            ("/tmp itself", vec![root.clone(), tmp.clone()], Some("`/tmp` is writable by every user (mode 1777)")),
            ("a group-writable ancestor", vec![root.clone(), d("/srv", 0, 50, 0o775), d("/srv/out", 0, 0, 0o755)], Some("`/srv` is writable by group (mode 775)")),
            ("group root may write", vec![root.clone(), d("/srv", 0, 0, 0o775), d("/srv/out", 0, 0, 0o755)], None),
            ("an ancestor another user owns", vec![root.clone(), d("/home/u", 1000, 1000, 0o755), d("/home/u/out", 0, 0, 0o700)], Some("`/home/u` belongs to uid 1000")),
            ("the user running it (not root) owns it", vec![root.clone(), d("/home/me", 7, 7, 0o700)], None),
        ];
        for (what, chain, want) in cases {
            let got = judge(chain, 7, true).err();
            assert_eq!(got.as_deref(), *want, "{what}");
        }
        // On the way to the destination, a sticky shared directory is fine.
        assert_eq!(judge(&[root, tmp], 7, false), Ok(()));
    }
}
