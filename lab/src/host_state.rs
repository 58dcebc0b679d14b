//! What the lab's engine (dockerd, or Podman's netavark) changes on the host outside the lab's own directories, and
//! putting it back: `dockerd` adds iptables chains and rules (DOCKER, DOCKER-USER,
//! DOCKER-ISOLATION-*, jumps from FORWARD, PREROUTING and OUTPUT, a MASQUERADE rule per
//! bridge), may set the FORWARD policy to DROP, loads br_netfilter (which turns on
//! `net.bridge.bridge-nf-call-iptables`, so every Linux bridge on the host starts passing
//! through the firewall) and turns on IP forwarding.
//!
//! `lab up` saves the firewall tables and those sysctls before it starts the daemon;
//! `lab down`, once the daemon is stopped, removes the chains and rules that appeared and
//! that are Docker's (they name a DOCKER chain, docker0, a `br-` bridge or the lab's
//! 198.18.0.0/15 addresses: a rule someone else added meanwhile stays), and puts back the
//! policies and sysctls it found. A module cannot be unloaded without `modprobe -r` (not on
//! every machine): when br_netfilter was not loaded before, its sysctls are set back to 0,
//! which is how bridges behaved without it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

/// The firewall tables dockerd writes to.
const TABLES: [&str; 2] = ["filter", "nat"];

/// The sysctls dockerd changes (directly or by loading br_netfilter).
const SYSCTLS: [&str; 4] = [
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.forwarding",
];

/// The host as the lab found it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostState {
    /// `iptables -t TABLE -S`, per table.
    pub tables: BTreeMap<String, Vec<String>>,
    /// Each sysctl's value; `None` when it did not exist (its module was not loaded).
    pub sysctls: BTreeMap<String, Option<String>>,
}

fn file(dir: &Path) -> PathBuf {
    dir.join("host-state.json")
}

fn sysctl_path(name: &str) -> PathBuf {
    Path::new("/proc/sys").join(name.replace('.', "/"))
}

fn rules(table: &str) -> Result<Vec<String>, String> {
    let out = Command::new("iptables")
        .args(["-w", "-t", table, "-S"])
        .output()
        .map_err(|e| format!("cannot run iptables: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "iptables -t {table} -S failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect())
}

/// Reads the host's firewall tables and sysctls now.
pub fn observe() -> Result<HostState, String> {
    let mut state = HostState::default();
    for table in TABLES {
        state.tables.insert(table.to_owned(), rules(table)?);
    }
    for name in SYSCTLS {
        let value = std::fs::read_to_string(sysctl_path(name))
            .ok()
            .map(|v| v.trim().to_owned());
        state.sysctls.insert(name.to_owned(), value);
    }
    Ok(state)
}

/// Saves the host's state in `dir`, unless a saved state is already there (an earlier
/// `lab up` whose `down` never ran: its state is the one the host had before the lab).
pub fn save(dir: &Path) -> Result<(), String> {
    let path = file(dir);
    if path.exists() {
        return Ok(());
    }
    let state = observe()?;
    let text = serde_json::to_string_pretty(&state).expect("serialisable");
    nfvi_harness::results::write_atomic(&path, text.as_bytes())
        .map_err(|e| format!("cannot save the host's state to {}: {e}", path.display()))
}

/// Whether a rule or chain line is Docker's or the lab's to remove.
fn ours(line: &str) -> bool {
    line.contains("DOCKER")
        || line.contains("NETAVARK")
        || line.contains("podman0")
        || line.contains("docker0")
        || line.contains(" br-")
        || line.contains("198.18.")
        || line.contains("198.19.")
}

/// The iptables commands that take the host from `now` back to `before`, for one table.
pub fn undo(table: &str, before: &[String], now: &[String]) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let cmd = |args: Vec<String>| {
        let mut v = vec!["-w".to_owned(), "-t".to_owned(), table.to_owned()];
        v.extend(args);
        v
    };
    // Rules that appeared, last first.
    for line in now.iter().rev() {
        if let Some(rule) = line.strip_prefix("-A ")
            && !before.contains(line)
            && ours(line)
            && let Some(words) = shlex::split(rule)
        {
            let mut args = vec!["-D".to_owned()];
            args.extend(words);
            commands.push(cmd(args));
        }
    }
    // Chains that appeared: emptied, then removed.
    for line in now {
        if let Some(chain) = line.strip_prefix("-N ")
            && !before.contains(line)
            && ours(line)
        {
            commands.push(cmd(vec!["-F".to_owned(), chain.to_owned()]));
            commands.push(cmd(vec!["-X".to_owned(), chain.to_owned()]));
        }
    }
    // Built-in chains' policies as they were.
    for line in before {
        if let Some(policy) = line.strip_prefix("-P ")
            && !now.contains(line)
            && let Some((chain, target)) = policy.split_once(' ')
        {
            commands.push(cmd(vec![
                "-P".to_owned(),
                chain.to_owned(),
                target.to_owned(),
            ]));
        }
    }
    commands
}

/// Puts back what the lab changed since [`save`], says what it did, and removes the saved
/// state. Nothing saved: nothing to do.
pub fn restore(dir: &Path, progress: &mut dyn FnMut(&str)) -> Result<(), String> {
    let path = file(dir);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let before: HostState = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not the lab's saved host state: {e}", path.display()))?;
    let mut failures = Vec::new();
    let mut changed = 0;
    for (table, saved) in &before.tables {
        let now = rules(table)?;
        for args in undo(table, saved, &now) {
            changed += 1;
            let ok = Command::new("iptables")
                .args(&args)
                .output()
                .map(|o| o.status.success());
            if !matches!(ok, Ok(true)) {
                failures.push(format!("iptables {}", args.join(" ")));
            }
        }
    }
    for (name, value) in &before.sysctls {
        let now = std::fs::read_to_string(sysctl_path(name))
            .ok()
            .map(|v| v.trim().to_owned());
        // Not there before: its module came with the lab; 0 is how bridges behaved then.
        let want = match (value, &now) {
            (Some(v), _) => v.clone(),
            (None, Some(_)) if name.starts_with("net.bridge.") => "0".to_owned(),
            (None, _) => continue,
        };
        if now.as_deref() != Some(want.as_str()) {
            changed += 1;
            if std::fs::write(sysctl_path(name), &want).is_err() {
                failures.push(format!("sysctl {name}={want}"));
            }
        }
    }
    progress(&format!(
        "host firewall and sysctls put back as the lab found them ({changed} changes undone)"
    ));
    if !failures.is_empty() {
        return Err(format!(
            "could not put back: {}; the saved state stays in {}",
            failures.join(", "),
            path.display()
        ));
    }
    let _ = std::fs::remove_file(&path);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn what_dockerd_added_is_undone_and_nothing_else() {
        let before = lines(
            "-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n-A FORWARD -i virbr0 -j ACCEPT\n",
        );
        let now = lines(concat!(
            "-P INPUT ACCEPT\n-P FORWARD DROP\n-P OUTPUT ACCEPT\n",
            "-N DOCKER\n-N DOCKER-USER\n-N LIBVIRT_FWI\n",
            "-A FORWARD -i virbr0 -j ACCEPT\n",
            "-A FORWARD -j DOCKER-USER\n",
            "-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n",
            "-A FORWARD -m comment --comment \"someone else's\" -j ACCEPT\n",
            "-A DOCKER-USER -j RETURN\n",
        ));
        let got: Vec<String> = undo("filter", &before, &now)
            .into_iter()
            .map(|a| a.join(" "))
            .collect();
        assert_eq!(
            got,
            [
                "-w -t filter -D DOCKER-USER -j RETURN",
                "-w -t filter -D FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
                "-w -t filter -D FORWARD -j DOCKER-USER",
                "-w -t filter -F DOCKER",
                "-w -t filter -X DOCKER",
                "-w -t filter -F DOCKER-USER",
                "-w -t filter -X DOCKER-USER",
                "-w -t filter -P FORWARD ACCEPT",
            ]
        );
        let nat_before = lines("-P PREROUTING ACCEPT\n");
        let nat_now = lines(
            "-P PREROUTING ACCEPT\n-N DOCKER\n-A POSTROUTING -s 198.18.128.0/24 ! -o docker0 -j MASQUERADE\n",
        );
        assert_eq!(
            undo("nat", &nat_before, &nat_now)
                .into_iter()
                .map(|a| a.join(" "))
                .collect::<Vec<_>>(),
            [
                "-w -t nat -D POSTROUTING -s 198.18.128.0/24 ! -o docker0 -j MASQUERADE",
                "-w -t nat -F DOCKER",
                "-w -t nat -X DOCKER",
            ]
        );
        // Nothing changed: nothing to do.
        assert!(undo("filter", &before, &before).is_empty());
    }
}
