//! A thin layer over the Docker Engine API (bollard) for probe containers: every container
//! and network gets a `nfv-` name and the `io.nfvi-verify.probe` label, is registered for
//! removal before it is created, and every call has a deadline.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, Ipam, IpamConfig, NetworkCreateRequest};
use bollard::query_parameters::{CreateContainerOptions, LogsOptions, RemoveContainerOptions};
use futures_util::StreamExt;
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

/// What a one-shot probe container printed and how it exited.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// The command, for evidence.
    pub command: String,
    /// Exit code.
    pub exit_code: i64,
    /// Standard output and error, interleaved as the daemon returns them.
    pub output: String,
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
            labels: Some(HashMap::from([(PROBE_LABEL.to_owned(), "1".to_owned())])),
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
            labels: Some(HashMap::from([(PROBE_LABEL.to_owned(), "1".to_owned())])),
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

    /// Starts a long-running container on `network` and returns its address there.
    pub async fn sleeper(&self, suffix: &str, network: &str) -> Result<String, String> {
        let name = format!("{}-{suffix}", self.tag);
        self.create(&name, network, &["/bin/sleep", "120"]).await?;
        let info = deadline(
            &format!("inspecting {name}"),
            self.docker.inspect_container(&name, None),
        )
        .await?;
        info.network_settings
            .and_then(|s| s.networks)
            .and_then(|n| n.get(network).and_then(|e| e.ip_address.clone()))
            .filter(|ip| !ip.is_empty())
            .ok_or_else(|| format!("container {name} has no address on {network}"))
    }

    /// Runs `cmd` in a new container on `network`, waits for it, returns exit code and output.
    pub async fn run(
        &self,
        suffix: &str,
        network: &str,
        cmd: &[&str],
    ) -> Result<RunOutput, String> {
        let name = format!("{}-{suffix}", self.tag);
        self.create(&name, network, cmd).await?;
        let mut wait = self.docker.wait_container(&name, None);
        let exit_code = match tokio::time::timeout(CALL_TIMEOUT, wait.next()).await {
            Ok(Some(Ok(r))) => r.status_code,
            Ok(Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. }))) => code,
            Ok(Some(Err(e))) => return Err(format!("waiting for {name}: {e}")),
            Ok(None) => return Err(format!("waiting for {name}: no status")),
            Err(_) => return Err(format!("{name} did not exit within {CALL_TIMEOUT:?}")),
        };
        let mut logs = self.docker.logs(
            &name,
            Some(LogsOptions {
                stdout: true,
                stderr: true,
                ..Default::default()
            }),
        );
        let mut output = String::new();
        while let Ok(Some(Ok(chunk))) = tokio::time::timeout(CALL_TIMEOUT, logs.next()).await {
            output.push_str(&nfvi_harness::bytes_to_evidence(chunk.as_ref()));
        }
        Ok(RunOutput {
            command: format!(
                "docker run --network {network} {} {}",
                self.image,
                cmd.join(" ")
            ),
            exit_code,
            output,
        })
    }

    /// The Docker client.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }
}
