//! A thin layer over the Docker Engine API (bollard) for probe containers: every container
//! and network gets a `nfv-` name and the `io.nfvi-verify.probe` label, is registered for
//! removal before it is created, and every call has a deadline.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, Ipam, IpamConfig, NetworkCreateRequest};
use bollard::query_parameters::{CreateContainerOptions, RemoveContainerOptions};
use nfvi_harness::CheckContext;

/// The label every probe object carries, so `lab down` can find leftovers of a crash.
pub const PROBE_LABEL: &str = "io.nfvi-verify.probe";

const CALL_TIMEOUT: Duration = Duration::from_secs(30);

async fn deadline<T>(
    what: &str,
    fut: impl Future<Output = Result<T, bollard::errors::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(CALL_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!(
            "{what}: no answer from the Docker daemon within {CALL_TIMEOUT:?}"
        )),
    }
}

/// Connects to the socket and negotiates the API version with the daemon.
pub async fn connect(socket: &std::path::Path) -> Result<Docker, String> {
    let path = socket.display().to_string();
    // A socket this user may not open: say whose it is instead of the client's
    // "connection error".
    if let Err(nix::errno::Errno::EACCES) = nix::unistd::access(
        socket,
        nix::unistd::AccessFlags::R_OK | nix::unistd::AccessFlags::W_OK,
    ) {
        use std::os::unix::fs::MetadataExt;
        let owner = std::fs::metadata(socket)
            .map(|m| {
                format!(
                    "owner {}:{}, mode {:o}",
                    m.uid(),
                    m.gid(),
                    m.mode() & 0o7777
                )
            })
            .unwrap_or_default();
        return Err(format!(
            "permission denied on the Docker socket {path} for uid {} ({owner}): run as root or as a member of the socket's group (usually `docker`)",
            nix::unistd::geteuid()
        ));
    }
    let docker = Docker::connect_with_unix(&path, 30, bollard::API_DEFAULT_VERSION)
        .map_err(|e| format!("cannot use the Docker socket {path}: {e}"))?;
    deadline("negotiating the API version", docker.negotiate_version()).await
}

/// Names and cleanup for one check's Docker objects.
pub struct Probe<'a> {
    cx: &'a CheckContext,
    docker: Docker,
    /// Name prefix, unique per check.
    pub tag: String,
    image: String,
}

impl<'a> Probe<'a> {
    /// A probe scope for one check.
    pub fn new(cx: &'a CheckContext, docker: Docker, tag: String) -> Self {
        let image = cx
            .target()
            .config::<crate::DockerConfig>()
            .probe_image
            .clone();
        Self {
            cx,
            docker,
            tag,
            image,
        }
    }

    fn on_cleanup_remove(&self, what: &'static str, name: String) {
        let docker = self.docker.clone();
        self.cx
            .on_cleanup_async(format!("remove {what} {name}"), async move {
                let result = if what == "container" {
                    docker
                        .remove_container(
                            &name,
                            Some(RemoveContainerOptions {
                                force: true,
                                ..Default::default()
                            }),
                        )
                        .await
                } else {
                    docker.remove_network(&name).await
                };
                match result {
                    Ok(()) => Ok(()),
                    Err(bollard::errors::Error::DockerResponseServerError {
                        status_code: 404,
                        ..
                    }) => Ok(()),
                    Err(e) => Err(e.to_string()),
                }
            });
    }

    /// Creates a user-defined network with an explicit lab subnet.
    pub async fn network(
        &self,
        suffix: &str,
        driver: &str,
        subnet: &str,
        gateway: &str,
        options: HashMap<String, String>,
    ) -> Result<String, String> {
        let name = format!("{}-{suffix}", self.tag);
        self.on_cleanup_remove("network", name.clone());
        let request = NetworkCreateRequest {
            name: name.clone(),
            driver: Some(driver.to_owned()),
            ipam: Some(Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some(subnet.to_owned()),
                    gateway: Some(gateway.to_owned()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            options: Some(options),
            labels: Some(crate::clean::labels()),
            ..Default::default()
        };
        deadline(
            &format!("creating network {name}"),
            self.docker.create_network(request),
        )
        .await?;
        Ok(name)
    }

    async fn create(&self, name: &str, network: &str, cmd: &[&str]) -> Result<(), String> {
        self.on_cleanup_remove("container", name.to_owned());
        let body = ContainerCreateBody {
            image: Some(self.image.clone()),
            cmd: Some(cmd.iter().map(|s| (*s).to_owned()).collect()),
            labels: Some(crate::clean::labels()),
            host_config: Some(HostConfig {
                network_mode: Some(network.to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptions {
            name: Some(name.to_owned()),
            ..Default::default()
        };
        deadline(
            &format!("creating container {name} from {}", self.image),
            self.docker.create_container(Some(options), body),
        )
        .await?;
        deadline(
            &format!("starting container {name}"),
            self.docker.start_container(name, None),
        )
        .await
    }

    /// Starts a long-running container on `network` (a network's name, or a mode: `host`,
    /// `none`) and reads what the probes need from its inspection.
    pub async fn sleeper(&self, suffix: &str, network: &str) -> Result<Sleeper, String> {
        let name = format!("{}-{suffix}", self.tag);
        self.create(&name, network, &["/bin/sleep", "120"]).await?;
        let info = deadline(
            &format!("inspecting {name}"),
            self.docker.inspect_container(&name, None),
        )
        .await?;
        let state = info.state.unwrap_or_default();
        let pid = state.pid.filter(|p| *p > 0).ok_or_else(|| {
            format!(
                "container {name} has no process (state {:?}): its namespace cannot be entered",
                state.status
            )
        })?;
        let endpoint = info
            .network_settings
            .and_then(|s| s.networks)
            .map(|n| {
                n.into_iter()
                    .map(|(k, e)| (k, e.ip_address.unwrap_or_default()))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        Ok(Sleeper {
            name,
            pid,
            mode: info
                .host_config
                .and_then(|h| h.network_mode)
                .unwrap_or_default(),
            endpoint: endpoint_address(&endpoint, network),
        })
    }

    /// Removes a container and then a network of this probe before the check ends (its
    /// cleanup, registered at creation, then finds them gone).
    pub async fn remove(&self, container: &str, network: &str) -> Result<(), String> {
        deadline(
            &format!("removing container {container}"),
            self.docker.remove_container(
                container,
                Some(RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            ),
        )
        .await?;
        deadline(
            &format!("removing network {network}"),
            self.docker.remove_network(network),
        )
        .await
    }

    /// The Docker client.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }
}

/// A running probe container.
#[derive(Debug, Clone)]
pub struct Sleeper {
    /// Its name.
    pub name: String,
    /// Its process in the host's PID namespace (`State.Pid`): `/proc/PID/ns/net` is its
    /// network namespace.
    pub pid: i64,
    /// `HostConfig.NetworkMode` as the engine recorded it.
    pub mode: String,
    /// The endpoint on the requested network: the key the engine filed it under and its
    /// IPv4 address.
    pub endpoint: Option<(String, Ipv4Addr)>,
}

impl Sleeper {
    /// Its network namespace.
    pub fn netns(&self) -> std::path::PathBuf {
        crate::probe::netns_of(self.pid)
    }

    /// Its address on the requested network, or why there is none.
    pub fn address(&self, network: &str) -> Result<Ipv4Addr, String> {
        self.endpoint
            .as_ref()
            .map(|(_, ip)| *ip)
            .ok_or_else(|| format!("container {} has no IPv4 address on {network}", self.name))
    }
}

/// The endpoint of a container attached to one network (`NetworkSettings.Networks`, as
/// (key, address)): the entry filed under the network's name, else the only entry with an
/// address (Podman files the default bridge, `bridge` in the API, under `podman`).
pub fn endpoint_address(
    networks: &[(String, String)],
    requested: &str,
) -> Option<(String, Ipv4Addr)> {
    let parsed: Vec<(String, Ipv4Addr)> = networks
        .iter()
        .filter_map(|(k, ip)| ip.parse().ok().map(|ip| (k.clone(), ip)))
        .collect();
    parsed
        .iter()
        .find(|(k, _)| k == requested)
        .cloned()
        .or_else(|| match parsed.as_slice() {
            [only] => Some(only.clone()),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_found_under_either_engines_key() {
        let s = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(k, ip)| ((*k).to_owned(), (*ip).to_owned()))
                .collect::<Vec<_>>()
        };
        let ip = |a: &str| a.parse::<Ipv4Addr>().unwrap();
        type Row = (
            &'static str,
            Vec<(String, String)>,
            &'static str,
            Option<(&'static str, Ipv4Addr)>,
        );
        let table: Vec<Row> = vec![
            (
                "docker default bridge",
                s(&[("bridge", "198.18.128.2")]),
                "bridge",
                Some(("bridge", ip("198.18.128.2"))),
            ),
            (
                "podman default bridge",
                s(&[("podman", "198.18.160.3")]),
                "bridge",
                Some(("podman", ip("198.18.160.3"))),
            ),
            (
                "user network",
                s(&[("nfv-1-a", "198.18.200.2")]),
                "nfv-1-a",
                Some(("nfv-1-a", ip("198.18.200.2"))),
            ),
            (
                "two networks, the requested one",
                s(&[("x", "198.18.1.2"), ("nfv-1-a", "198.18.200.2")]),
                "nfv-1-a",
                Some(("nfv-1-a", ip("198.18.200.2"))),
            ),
            (
                "two networks, neither requested",
                s(&[("x", "198.18.1.2"), ("y", "198.18.2.2")]),
                "bridge",
                None,
            ),
            ("no address (docker none)", s(&[("none", "")]), "none", None),
            ("no networks (podman none, host)", vec![], "none", None),
            (
                "hostile address",
                s(&[("bridge", "not-an-ip")]),
                "bridge",
                None,
            ),
        ];
        for (what, networks, requested, want) in table {
            let got = endpoint_address(&networks, requested);
            assert_eq!(got.as_ref().map(|(k, a)| (k.as_str(), *a)), want, "{what}");
        }
    }
}
