//! Scratch space a check or the lab writes as root: a directory with a random name, created
//! exclusively (never one that someone else created first) and readable, writable and
//! searchable by its owner only. Nothing another local user places in the temporary
//! directory beforehand can be taken for it, written through or executed from it.

use std::os::unix::fs::PermissionsExt;

/// A new private directory (mode 0700) in the temporary directory, named
/// `<prefix><pid>-<random>`; removed when the [`tempfile::TempDir`] is dropped or closed. The
/// process ID lets `nfvi-verify clean` tell the leftovers of a killed run (their process is
/// gone) from the directories of a running one; the random part keeps the name unguessable.
pub fn private_dir(prefix: &str) -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(&format!("{prefix}{}-", std::process::id()))
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_directories_are_new_and_owner_only() {
        let a = private_dir("nfvi-test-").unwrap();
        let b = private_dir("nfvi-test-").unwrap();
        assert_ne!(a.path(), b.path());
        let mode = a.path().metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{mode:o}");
        assert!(
            a.path()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("nfvi-test-{}-", std::process::id()))
        );
    }
}
