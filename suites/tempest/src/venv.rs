//! Tempest's virtualenv: the operator's (`venv = "/path"`), or one nfvi-verify creates and
//! caches per version (`python3 -m venv`, `pip install tempest==VERSION` and the plugins).
//! A cached one is complete only with its marker file, written last: an install that was
//! interrupted is removed and made again, never used half-made.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nfvi_harness::cancel::CancelToken;

use crate::area::TempestConfig;
use crate::proc;

/// Written into a cached virtualenv once pip finished: the requirements it holds.
const MARKER: &str = ".nfvi-verify-complete";

/// How long pip may take (a clean machine downloads about 80 packages).
const PIP_DEADLINE: Duration = Duration::from_secs(20 * 60);

/// A virtualenv with Tempest.
#[derive(Clone, Debug)]
pub struct Venv {
    /// Its directory.
    pub dir: PathBuf,
    /// The Tempest version installed in it (its `tempest-X.dist-info`).
    pub version: String,
}

/// The version of `package` a virtualenv holds, from its `*.dist-info` directory name.
pub fn installed_version(venv: &Path, package: &str) -> Option<String> {
    let lib = std::fs::read_dir(venv.join("lib")).ok()?;
    for py in lib.flatten() {
        let site = py.path().join("site-packages");
        for e in std::fs::read_dir(&site).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(rest) = name
                .strip_prefix(package)
                .and_then(|r| r.strip_prefix('-'))
                .and_then(|r| r.strip_suffix(".dist-info"))
            {
                return Some(rest.to_owned());
            }
        }
    }
    None
}

/// What the marker of a cached virtualenv records: the requirements installed.
fn marker_text(cfg: &TempestConfig) -> String {
    let mut reqs = vec![format!("tempest=={}", cfg.version)];
    reqs.extend(cfg.plugins.iter().cloned());
    reqs.join("\n") + "\n"
}

/// How to give a virtualenv where nfvi-verify cannot make one.
fn how_to_provide(cfg: &TempestConfig) -> String {
    format!(
        "without access to PyPI, prepare a virtualenv elsewhere (python3 -m venv DIR && DIR/bin/pip install tempest=={}{}, or from a wheelhouse with --no-index --find-links) and set `venv = \"DIR\"` in [tempest]",
        cfg.version,
        cfg.plugins
            .iter()
            .map(|p| format!(" {p}"))
            .collect::<String>()
    )
}

/// The virtualenv to run Tempest from, made when nfvi-verify manages it and it is missing
/// or incomplete; `progress` hears what takes time.
pub async fn ensure(
    cfg: &TempestConfig,
    home: &Path,
    cancel: &CancelToken,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<Venv, String> {
    let (dir, managed) = cfg.venv_path();
    let tempest = proc::venv_bin(&dir, "tempest");
    if !managed {
        let version = installed_version(&dir, "tempest").filter(|_| tempest.is_file());
        return match version {
            Some(version) => Ok(Venv { dir, version }),
            None => Err(format!(
                "tempest.venv {} holds no Tempest (no bin/tempest and tempest-*.dist-info); {}",
                dir.display(),
                how_to_provide(cfg)
            )),
        };
    }
    let marker = dir.join(MARKER);
    let want = marker_text(cfg);
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == want) && tempest.is_file() {
        let version = installed_version(&dir, "tempest").unwrap_or_else(|| cfg.version.clone());
        return Ok(Venv { dir, version });
    }
    if dir.exists() {
        progress(format!(
            "removing the incomplete or outdated virtualenv {}",
            dir.display()
        ));
        std::fs::remove_dir_all(&dir)
            .map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let started = Instant::now();
    progress(format!(
        "installing Tempest {} into {} (python3 -m venv, pip install; a few minutes on a clean machine, cached afterwards)",
        cfg.version,
        dir.display()
    ));
    let mut venv = proc::command(Path::new(&cfg.python), Path::new("/usr/bin"), home);
    venv.args(["-m", "venv"]).arg(&dir);
    let f = proc::run(
        venv,
        &format!("{} -m venv", cfg.python),
        Duration::from_secs(120),
        cancel,
    )
    .await?;
    if f.code != Some(0) {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(format!(
            "`{} -m venv {}` failed ({}): {} (Debian: apt-get install python3-venv); {}",
            cfg.python,
            dir.display(),
            f.code.map_or("killed".to_owned(), |c| format!("exit {c}")),
            f.stderr_tail.trim(),
            how_to_provide(cfg)
        ));
    }
    let bin = dir.join("bin");
    let mut pip = proc::command(&proc::venv_bin(&dir, "pip"), &bin, home);
    pip.args([
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar",
        "off",
    ])
    .arg(format!("tempest=={}", cfg.version))
    .args(&cfg.plugins);
    let f = proc::run(pip, "pip install tempest", PIP_DEADLINE, cancel)
        .await
        .inspect_err(|_| {
            let _ = std::fs::remove_dir_all(&dir);
        })?;
    if f.code != Some(0) {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(format!(
            "cannot install tempest=={} into {}: pip failed ({}): {}; {}",
            cfg.version,
            dir.display(),
            f.code.map_or("killed".to_owned(), |c| format!("exit {c}")),
            proc::tail(f.stderr_tail.trim(), 600),
            how_to_provide(cfg)
        ));
    }
    std::fs::write(&marker, &want)
        .map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
    let version = installed_version(&dir, "tempest").unwrap_or_else(|| cfg.version.clone());
    progress(format!(
        "Tempest {version} installed in {:.0} s ({} packages)",
        started.elapsed().as_secs_f64(),
        f.stdout
            .lines()
            .find_map(|l| l.strip_prefix("Successfully installed "))
            .map_or(0, |l| l.split_whitespace().count())
    ));
    Ok(Venv { dir, version })
}

/// The pinned Tempest of the default `[tempest]` table, installed into its cached virtualenv
/// unless it is there already (what `cargo xtask ci` calls before the tests; the same
/// virtualenv and marker a run uses). Returns the virtualenv and the seconds it took.
pub fn install_pinned(progress: &(dyn Fn(String) + Send + Sync)) -> Result<(PathBuf, f64), String> {
    let cfg = crate::area::defaults()?;
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    let home = tempfile::tempdir().map_err(|e| format!("cannot create a directory: {e}"))?;
    let v = rt.block_on(ensure(&cfg, home.path(), &CancelToken::never(), progress))?;
    Ok((v.dir, started.elapsed().as_secs_f64()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_read_from_the_dist_info() {
        let d = tempfile::tempdir().unwrap();
        let site = d.path().join("lib/python3.11/site-packages");
        std::fs::create_dir_all(site.join("tempest-47.0.0.dist-info")).unwrap();
        std::fs::create_dir_all(site.join("tempest_lib-1.0.dist-info")).unwrap();
        assert_eq!(
            installed_version(d.path(), "tempest").as_deref(),
            Some("47.0.0")
        );
        assert_eq!(installed_version(d.path(), "stestr"), None);
    }

    #[tokio::test]
    async fn a_given_virtualenv_without_tempest_is_an_error_saying_how_to_provide_one() {
        let d = tempfile::tempdir().unwrap();
        let v: toml::Table = toml::from_str(include_str!("tempest.toml")).unwrap();
        let mut cfg: TempestConfig = v["tempest"].clone().try_into().unwrap();
        cfg.venv = Some(d.path().display().to_string());
        let e = ensure(&cfg, d.path(), &CancelToken::never(), &|_| {})
            .await
            .unwrap_err();
        assert!(e.contains("holds no Tempest"), "{e}");
        assert!(
            e.contains("venv = \\\"DIR\\\"") || e.contains("venv = \"DIR\""),
            "{e}"
        );
        assert!(e.contains("tempest==47.0.0"), "{e}");
    }
}
