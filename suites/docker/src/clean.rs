//! What the Docker area's checks leave when their run is killed, and how `nfvi-verify clean`
//! finds it: probe containers and networks carry the owner labels
//! ([`nfvi_harness::leftover::OWNER_LABEL`], with the owner's host), and the macvlan checks'
//! veth pairs in the host namespace carry the owner's PID in their names
//! (`nfvdk<pid>-<c>`, peer `…p`, see [`link_name`]). The gateway namespaces
//! (`nfv-<pid>-<k>-gw`) are the CLI's to clean, like every namespace named with a PID.

use std::collections::HashMap;
use std::time::Duration;

use bollard::query_parameters::{
    ListContainersOptions, ListNetworksOptions, RemoveContainerOptions,
};
use nfvi_harness::Target;
use nfvi_harness::check::BoxFuture;
use nfvi_harness::leftover::{self, Gone, Leftover};

use crate::engine::PROBE_LABEL;

/// The labels of every probe container and network: the probe label and the owner's.
pub fn labels() -> HashMap<String, String> {
    let mut labels = HashMap::from([(PROBE_LABEL.to_owned(), "1".to_owned())]);
    labels.extend(
        leftover::owner_labels()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v)),
    );
    labels
}

/// The host-side name of the `k`th probe's veth pair: `nfvdk<pid>-<c>`, `c` the probe
/// number's last base-36 digit (at most 14 bytes with a 7-digit PID, so the peer's
/// `<name>p` fits the 15 bytes of an interface name).
pub fn link_name(k: u32) -> String {
    let c = char::from_digit(k % 36, 36).unwrap_or('0');
    format!("nfvdk{}-{c}", std::process::id())
}

/// The owner's PID in a link name [`link_name`] gave (or its peer's): `nfvdk`, digits, `-`,
/// one base-36 digit, and an optional `p`.
pub fn link_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("nfvdk")?;
    let (pid, tail) = rest.split_once('-')?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let tail = tail.strip_suffix('p').unwrap_or(tail);
    let mut chars = tail.chars();
    let c = chars.next()?;
    if chars.next().is_some() || !(c.is_ascii_digit() || c.is_ascii_lowercase()) {
        return None;
    }
    pid.parse().ok().filter(|&p| p != 0)
}

const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The Docker area's leftovers: containers first, then networks, then host links.
pub fn leftovers<'a>(
    target: &'a Target,
    gone: Gone<'a>,
) -> BoxFuture<'a, Result<Vec<Leftover>, String>> {
    Box::pin(async move {
        let mut found = Vec::new();
        let socket = &target.config::<crate::DockerConfig>().socket;
        let engine = if socket.exists() {
            Some(engine_leftovers(socket, gone).await)
        } else {
            None
        };
        let links = host_links(gone);
        match engine {
            Some(Ok(mut l)) => found.append(&mut l),
            // The links are still found; the engine's error is the area's answer.
            Some(Err(e)) => {
                if links.is_empty() {
                    return Err(e);
                }
                tracing::warn!(error = %e, "cannot list the engine's leftovers");
            }
            None => {}
        }
        found.extend(links);
        Ok(found)
    })
}

fn owner_filter() -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_owned(), vec![leftover::OWNER_LABEL.to_owned()])])
}

fn owner(labels: Option<&HashMap<String, String>>) -> Option<u32> {
    let labels = labels?;
    // Only what the probes made (both labels), never a container someone labelled alike.
    labels.get(PROBE_LABEL)?;
    leftover::owner_of(|k| labels.get(k).map(String::as_str))
}

async fn engine_leftovers(
    socket: &std::path::Path,
    gone: Gone<'_>,
) -> Result<Vec<Leftover>, String> {
    let docker = crate::engine::connect(socket).await?;
    let call = |what: &'static str| move |e: String| format!("{what}: {e}");
    let containers = tokio::time::timeout(
        CALL_TIMEOUT,
        docker.list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(owner_filter()),
            ..Default::default()
        })),
    )
    .await
    .map_err(|_| "listing containers: no answer".to_owned())?
    .map_err(|e| call("listing containers")(e.to_string()))?;
    let networks = tokio::time::timeout(
        CALL_TIMEOUT,
        docker.list_networks(Some(ListNetworksOptions {
            filters: Some(owner_filter()),
        })),
    )
    .await
    .map_err(|_| "listing networks: no answer".to_owned())?
    .map_err(|e| call("listing networks")(e.to_string()))?;
    let mut found = Vec::new();
    for c in containers {
        let Some(pid) = owner(c.labels.as_ref()).filter(|&p| gone(p)) else {
            continue;
        };
        let Some(id) = c.id else { continue };
        let name = c
            .names
            .and_then(|n| n.into_iter().next())
            .map_or_else(|| id.clone(), |n| n.trim_start_matches('/').to_owned());
        let docker = docker.clone();
        found.push(Leftover::new("container", name, pid, move || {
            Box::pin(async move {
                let options = RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                };
                gone_is_fine(docker.remove_container(&id, Some(options)).await)
            })
        }));
    }
    for n in networks {
        let Some(pid) = owner(n.labels.as_ref()).filter(|&p| gone(p)) else {
            continue;
        };
        let Some(id) = n.id else { continue };
        let name = n.name.unwrap_or_else(|| id.clone());
        let docker = docker.clone();
        found.push(Leftover::new("network", name, pid, move || {
            Box::pin(async move { gone_is_fine(docker.remove_network(&id).await) })
        }));
    }
    Ok(found)
}

fn gone_is_fine(r: Result<(), bollard::errors::Error>) -> Result<(), String> {
    match r {
        Ok(())
        | Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// The probe veths in this (the host) namespace whose owner is gone. A veth pair goes as a
/// whole: deleting one end removes its peer.
fn host_links(gone: Gone<'_>) -> Vec<Leftover> {
    let mut names: Vec<(String, u32)> = std::fs::read_dir("/sys/class/net")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = link_owner(&name)?;
            gone(pid).then_some((name, pid))
        })
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|(name, pid)| {
            let n = name.clone();
            Leftover::new("link", name, pid, move || {
                Box::pin(async move {
                    let out = tokio::process::Command::new("ip")
                        .args(["link", "del", &n])
                        .output()
                        .await
                        .map_err(|e| format!("ip link del {n}: {e}"))?;
                    // Its peer went first (one pair): nothing left to do.
                    if out.status.success()
                        || !std::path::Path::new("/sys/class/net").join(&n).exists()
                    {
                        Ok(())
                    } else {
                        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
                    }
                })
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_names_carry_the_pid_and_fit() {
        for k in [0, 7, 35, 36, 1_000_001] {
            let name = link_name(k);
            assert!(format!("{name}p").len() <= 15, "{name}");
            assert_eq!(link_owner(&name), Some(std::process::id()));
            assert_eq!(link_owner(&format!("{name}p")), Some(std::process::id()));
        }
        assert!(format!("nfvdk{}-z", 4_194_304).len() < 15);
        // Names of other versions and of everything else are not ours to judge.
        for other in [
            "nfvdk12",
            "nfvdk12p",
            "nfvdk-1",
            "nfvdk12-",
            "nfvdk12-ab",
            "nfvdk12-Ap",
            "nfvdk0-1",
            "eth0",
            "veth12-1",
            "nfvdkx-1",
        ] {
            assert_eq!(link_owner(other), None, "{other}");
        }
    }

    #[test]
    fn owners_come_from_probe_objects_of_this_host_only() {
        let mut l = labels();
        assert_eq!(owner(Some(&l)), Some(std::process::id()));
        l.remove(PROBE_LABEL);
        assert_eq!(owner(Some(&l)), None, "not a probe object");
        let mut l = labels();
        l.insert(leftover::OWNER_HOST_LABEL.into(), "elsewhere".into());
        assert_eq!(owner(Some(&l)), None, "another host's");
        assert_eq!(owner(None), None);
    }
}
