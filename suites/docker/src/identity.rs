//! Which engine serves the Docker Engine API, read from `GET /version` once per run: Docker
//! (libnetwork) or Podman's compatible service, its version and its OCI runtime. Pure
//! functions over the version's fields, so every engine's wording is table-tested.

use nfvi_harness::Outcome;

/// One entry of `/version`'s `Components`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Component {
    /// `Engine`, `containerd`, `runc` (Docker); `Podman Engine`, `Conmon`,
    /// `OCI Runtime (runc)` (Podman).
    pub name: String,
    /// As the engine reports it; Podman's runtime version is `runc version 1.1.5...` over
    /// several lines.
    pub version: String,
}

/// The fields of `/version` the area reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionInfo {
    /// `Version`.
    pub version: String,
    /// `ApiVersion`.
    pub api_version: String,
    /// `MinAPIVersion`.
    pub min_api_version: String,
    /// `Platform.Name` (`Docker Engine - Community`; Podman puts the OS there).
    pub platform: String,
    /// `Components`.
    pub components: Vec<Component>,
}

impl VersionInfo {
    /// From bollard's answer.
    pub fn from_api(v: &bollard::models::SystemVersion) -> Self {
        Self {
            version: v.version.clone().unwrap_or_default(),
            api_version: v.api_version.clone().unwrap_or_default(),
            min_api_version: v.min_api_version.clone().unwrap_or_default(),
            platform: v
                .platform
                .as_ref()
                .map(|p| p.name.clone())
                .unwrap_or_default(),
            components: v
                .components
                .iter()
                .flatten()
                .map(|c| Component {
                    name: c.name.clone(),
                    version: c.version.clone(),
                })
                .collect(),
        }
    }
}

/// The engine family behind the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    /// Docker (dockerd, libnetwork).
    Docker,
    /// Podman's Docker-compatible service (`podman system service`).
    Podman,
    /// Something else that answers the Engine API.
    Other,
}

/// An OCI runtime the engine reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OciRuntime {
    /// `runc`, `crun`...
    pub name: String,
    /// Its version, the first line of what the engine reports, without `<name> version`.
    pub version: String,
}

/// The engine, detected once per run and named in the inventory and in every result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineIdentity {
    /// Its family.
    pub kind: EngineKind,
    /// Its version.
    pub version: String,
    /// The Engine API version it speaks.
    pub api_version: String,
    /// Its OCI runtime, when it names one.
    pub runtime: Option<OciRuntime>,
    /// Every component as `name version` (first line of the version), for evidence.
    pub components: Vec<String>,
}

impl EngineIdentity {
    /// `Docker 20.10.24`, `Podman 4.3.1`.
    pub fn label(&self) -> String {
        let name = match self.kind {
            EngineKind::Docker => "Docker",
            EngineKind::Podman => "Podman",
            EngineKind::Other => "an Engine API server",
        };
        format!("{name} {}", self.version).trim().to_owned()
    }

    /// Whether the engine lists `host` and `none` as networks (libnetwork creates them at
    /// start); Podman has them as network modes only.
    pub fn lists_host_and_none(&self) -> bool {
        self.kind != EngineKind::Podman
    }

    /// The inventory line: `Podman 4.3.1 (API 1.41, OCI runtime runc 1.1.5+ds1)`.
    pub fn inventory_line(&self) -> String {
        let runtime = self.runtime.as_ref().map_or_else(
            || "no OCI runtime named".to_owned(),
            |r| format!("OCI runtime {} {}", r.name, r.version),
        );
        format!("{} (API {}, {runtime})", self.label(), self.api_version)
    }
}

/// Runtimes known by name, for engines that list them as components of their own.
const RUNTIMES: &[&str] = &["runc", "crun", "youki", "runsc", "kata-runtime", "kata"];

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("").trim()
}

/// `runc version 1.1.5` → `1.1.5` for runtime `runc`; anything else as it is.
fn runtime_version(name: &str, version: &str) -> String {
    let line = first_line(version);
    line.strip_prefix(&format!("{name} version"))
        .map(str::trim)
        .unwrap_or(line)
        .to_owned()
}

/// The OCI runtime among the components: Docker lists it by name (`runc`), Podman as
/// `OCI Runtime (runc)`; either may only say so in the version (`crun version 1.8`).
/// `containerd` is not one: it runs a runtime through a shim without naming it here.
pub fn oci_runtime(components: &[Component]) -> Option<OciRuntime> {
    components.iter().find_map(|c| {
        let name = c.name.trim();
        let named = name
            .strip_prefix("OCI Runtime (")
            .and_then(|r| r.strip_suffix(')'))
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .or_else(|| {
                RUNTIMES
                    .iter()
                    .find(|r| name.eq_ignore_ascii_case(r))
                    .copied()
            })
            .or_else(|| {
                let line = first_line(&c.version);
                RUNTIMES
                    .iter()
                    .find(|r| line.starts_with(&format!("{r} version")))
                    .copied()
            })?;
        let name = named.to_ascii_lowercase();
        Some(OciRuntime {
            version: runtime_version(&name, &c.version),
            name,
        })
    })
}

/// Which engine answered `/version`.
pub fn identify(v: &VersionInfo) -> EngineIdentity {
    let has = |needle: &str| {
        v.components
            .iter()
            .any(|c| c.name.to_ascii_lowercase().contains(needle))
    };
    let kind = if has("podman") || v.platform.to_ascii_lowercase().contains("podman") {
        EngineKind::Podman
    } else if v.components.iter().any(|c| c.name == "Engine")
        || v.platform.to_ascii_lowercase().contains("docker")
    {
        EngineKind::Docker
    } else {
        EngineKind::Other
    };
    EngineIdentity {
        kind,
        version: v.version.clone(),
        api_version: v.api_version.clone(),
        runtime: oci_runtime(&v.components),
        components: v
            .components
            .iter()
            .map(|c| format!("{} {}", c.name, first_line(&c.version)))
            .collect(),
    }
}

/// `docker.daemon.version`: the engine answers and names an OCI runtime.
pub fn judge_version(id: &EngineIdentity, min_api_version: &str) -> Outcome {
    let o = match &id.runtime {
        Some(r) => Outcome::pass(format!(
            "{} (API {}) with the OCI runtime {} {}",
            id.label(),
            id.api_version,
            r.name,
            r.version
        )),
        None => Outcome::fail(format!(
            "{} names no OCI runtime among its components (runc, crun, `OCI Runtime (...)`): {:?}",
            id.label(),
            id.components
        )),
    };
    let o = o
        .with_property("server version", &id.version)
        .with_property("API version", &id.api_version)
        .with_property("minimum API version", min_api_version)
        .with_property("components", id.components.join(", "));
    match &id.runtime {
        Some(r) => o.with_property("OCI runtime", format!("{} {}", r.name, r.version)),
        None => o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nfvi_harness::Status;

    fn comp(name: &str, version: &str) -> Component {
        Component {
            name: name.to_owned(),
            version: version.to_owned(),
        }
    }

    fn docker() -> VersionInfo {
        VersionInfo {
            version: "20.10.24+dfsg1".into(),
            api_version: "1.41".into(),
            min_api_version: "1.12".into(),
            platform: String::new(),
            components: vec![
                comp("Engine", "20.10.24+dfsg1"),
                comp("containerd", "1.6.20~ds1"),
                comp("runc", "1.1.5+ds1"),
                comp("docker-init", "0.19.0"),
            ],
        }
    }

    fn podman(runtime: &str, version: &str) -> VersionInfo {
        VersionInfo {
            version: "4.3.1".into(),
            api_version: "1.41".into(),
            min_api_version: "1.24".into(),
            platform: "linux/amd64/debian-12".into(),
            components: vec![
                comp("Podman Engine", "4.3.1"),
                comp("Conmon", "conmon version 2.1.6, commit: unknown"),
                comp(runtime, version),
            ],
        }
    }

    /// (what, components, expected runtime name and version).
    #[test]
    fn the_oci_runtime_is_found_in_every_engines_wording() {
        type Row = (
            &'static str,
            Vec<Component>,
            Option<(&'static str, &'static str)>,
        );
        let table: &[Row] = &[
            (
                "docker 20.10",
                docker().components,
                Some(("runc", "1.1.5+ds1")),
            ),
            (
                "podman 4.3 with runc",
                podman(
                    "OCI Runtime (runc)",
                    "runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev",
                )
                .components,
                Some(("runc", "1.1.5+ds1")),
            ),
            (
                "podman with crun",
                podman("OCI Runtime (crun)", "crun version 1.8.1\ncommit: f8a0").components,
                Some(("crun", "1.8.1")),
            ),
            (
                "a runtime named only in its version",
                vec![comp("runtime", "crun version 1.14")],
                Some(("crun", "1.14")),
            ),
            (
                "docker with crun",
                vec![comp("Engine", "24.0.7"), comp("crun", "1.12")],
                Some(("crun", "1.12")),
            ),
            (
                "containerd alone names no runtime",
                vec![comp("Engine", "24.0.7"), comp("containerd", "1.7.0")],
                None,
            ),
            ("no components", vec![], None),
            (
                "hostile: empty parentheses",
                vec![comp("OCI Runtime ()", "")],
                None,
            ),
            (
                "hostile: a runtime-like word inside another name",
                vec![comp("runc-shim-helper", "2")],
                None,
            ),
        ];
        for (what, components, want) in table {
            let got = oci_runtime(components);
            let got = got.as_ref().map(|r| (r.name.as_str(), r.version.as_str()));
            assert_eq!(got, *want, "{what}");
        }
    }

    #[test]
    fn the_engine_is_told_apart_by_its_components() {
        assert_eq!(identify(&docker()).kind, EngineKind::Docker);
        assert_eq!(identify(&docker()).label(), "Docker 20.10.24+dfsg1");
        let p = identify(&podman("OCI Runtime (runc)", "runc version 1.1.5"));
        assert_eq!(p.kind, EngineKind::Podman);
        assert_eq!(p.label(), "Podman 4.3.1");
        assert!(!p.lists_host_and_none());
        assert_eq!(
            p.inventory_line(),
            "Podman 4.3.1 (API 1.41, OCI runtime runc 1.1.5)"
        );
        assert_eq!(identify(&VersionInfo::default()).kind, EngineKind::Other);
        assert!(identify(&VersionInfo::default()).lists_host_and_none());
    }

    #[test]
    fn the_version_check_passes_only_with_a_runtime() {
        let o = judge_version(
            &identify(&podman("OCI Runtime (runc)", "runc version 1.1.5+ds1\nx")),
            "1.24",
        );
        assert_eq!(o.status, Status::Passed, "{}", o.message);
        assert_eq!(o.evidence.properties["OCI runtime"], "runc 1.1.5+ds1");
        let o = judge_version(&identify(&docker()), "1.12");
        assert_eq!(o.status, Status::Passed, "{}", o.message);
        let mut bare = docker();
        bare.components.retain(|c| c.name != "runc");
        let o = judge_version(&identify(&bare), "1.12");
        assert_eq!(o.status, Status::Failed);
        assert!(o.message.contains("containerd 1.6.20~ds1"), "{}", o.message);
    }
}
