//! Which kubeconfig files a run reads, and how they merge.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use kube::Config;
use kube::config::KubeConfigOptions;

use super::KubeconfigFiles;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn env(paths: &[&Path]) -> std::ffi::OsString {
    std::env::join_paths(paths).unwrap()
}

/// The first file names the current context; the context, its cluster and its user are only
/// in the second, which also names another current context and redefines `shadowed`.
const FIRST: &str = "apiVersion: v1\nkind: Config\ncurrent-context: remote\ncontexts:\n- name: shadowed\n  context:\n    cluster: first-cluster\n    user: remote-user\nclusters:\n- name: first-cluster\n  cluster:\n    server: https://198.18.0.1:6443\n";
const SECOND: &str = "apiVersion: v1\nkind: Config\ncurrent-context: shadowed\ncontexts:\n- name: remote\n  context:\n    cluster: remote-cluster\n    user: remote-user\n- name: shadowed\n  context:\n    cluster: remote-cluster\n    user: remote-user\nclusters:\n- name: remote-cluster\n  cluster:\n    server: https://198.18.0.2:6443\nusers:\n- name: remote-user\n  user:\n    token: second-token\n";

async fn server(files: &KubeconfigFiles, context: Option<&str>) -> String {
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..Default::default()
    };
    let config = Config::from_custom_kubeconfig(files.load().unwrap(), &options)
        .await
        .unwrap();
    config.cluster_url.to_string()
}

#[tokio::test]
async fn kubeconfig_entries_merge_as_kubectl_merges_them() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a", FIRST);
    let b = write(dir.path(), "b", SECOND);
    let files = KubeconfigFiles::locate(None, Some(&env(&[&a, &b])), None, |p| p.exists()).unwrap();
    assert_eq!(files.paths(), [a.clone(), b.clone()]);
    assert_eq!(
        files.to_string(),
        format!("{}:{}", a.display(), b.display())
    );
    let merged = files.load().unwrap();
    // The first file's current-context, resolved through the second file's definitions.
    assert_eq!(merged.current_context.as_deref(), Some("remote"));
    assert_eq!(server(&files, None).await, "https://198.18.0.2:6443/");
    // A context defined in both files: the first file's definition counts.
    assert_eq!(
        server(&files, Some("shadowed")).await,
        "https://198.18.0.1:6443/"
    );
    // In the other order, the other file's current-context and definition win.
    let files = KubeconfigFiles::locate(None, Some(&env(&[&b, &a])), None, |p| p.exists()).unwrap();
    assert_eq!(
        files.load().unwrap().current_context.as_deref(),
        Some("shadowed")
    );
    assert_eq!(server(&files, None).await, "https://198.18.0.2:6443/");
    // The first file alone cannot be used: its context is not in it.
    let first = KubeconfigFiles::locate(Some(a.to_str().unwrap()), None, None, |_| true).unwrap();
    let options = KubeConfigOptions::default();
    assert!(
        Config::from_custom_kubeconfig(first.load().unwrap(), &options)
            .await
            .is_err()
    );
    // A file that cannot be parsed is named.
    let bad = write(dir.path(), "bad", "clusters: [unclosed\n");
    let err = KubeconfigFiles::locate(None, Some(&env(&[&a, &bad])), None, |p| p.exists())
        .unwrap()
        .load()
        .unwrap_err();
    assert!(
        err.starts_with(&format!("cannot use kubeconfig {}: ", bad.display())),
        "{err}"
    );
}

#[test]
fn kubeconfig_files_are_located_as_kubectl_locates_them() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a", FIRST);
    let b = dir.path().join("b");
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".kube")).unwrap();
    let home_config = write(&home, ".kube/config", SECOND);
    let home = Some(home.as_os_str());
    let exists = |p: &Path| p.exists();
    let locate = |explicit: Option<&str>, env: Option<&OsStr>| {
        KubeconfigFiles::locate(explicit, env, home, exists).map(|f| f.paths().to_vec())
    };
    let both = env(&[&b, Path::new(""), &a, &a]);
    // An explicit file alone, whatever KUBECONFIG says; when it is not there, it is named.
    assert_eq!(locate(a.to_str(), Some(&both)), Ok(vec![a.clone()]));
    assert_eq!(
        locate(Some("/nonexistent/kubeconfig"), Some(&both)),
        Err("no kubeconfig given: /nonexistent/kubeconfig does not exist (--kubeconfig or kubernetes.kubeconfig)".to_owned())
    );
    // KUBECONFIG's entries: empty ones and repeats ignored, absent ones skipped.
    assert_eq!(locate(None, Some(&both)), Ok(vec![a.clone()]));
    std::fs::write(&b, SECOND).unwrap();
    assert_eq!(locate(None, Some(&both)), Ok(vec![b.clone(), a.clone()]));
    // When none exists, no fallback to ~/.kube/config (kubectl has none either).
    let absent = env(&[Path::new("/nonexistent/x"), Path::new("/nonexistent/y")]);
    assert_eq!(
        locate(None, Some(&absent)),
        Err("no kubeconfig given: none of the files KUBECONFIG names exists (/nonexistent/x, /nonexistent/y)".to_owned())
    );
    // Unset or only empty entries: ~/.kube/config.
    assert_eq!(locate(None, None), Ok(vec![home_config.clone()]));
    assert_eq!(locate(None, Some(OsStr::new(":"))), Ok(vec![home_config]));
    let none = KubeconfigFiles::locate(None, None, None, exists).unwrap_err();
    assert!(
        none.starts_with("no kubeconfig given: pass --kubeconfig FILE"),
        "{none}"
    );
}
