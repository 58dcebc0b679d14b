//! SR-IOV on the node (RA2 ra2.ch.002, ra2.ch.003, network-intensive profile): which NICs
//! can split into virtual functions, and whether the functions were created beforehand.
//!
//! Both checks read sysfs only (`/sys/class/net/<if>/device/sriov_totalvfs`,
//! `sriov_numvfs`, the `driver` and `subsystem` links), under the host checks' root, so the
//! tests point them at fake trees. Observation ([`observe`]) is kept apart from the pure
//! judges ([`judge_capable`], [`judge_vfs`]). A node without a capable NIC is not applicable
//! on a basic-profile node (RA2 asks it of network-intensive nodes only) and a failure
//! naming the NICs seen on a network-intensive one; a sysfs that cannot be read is an
//! error, never a pass.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use nfvi_harness::target::NodeProfile;
use nfvi_harness::{CheckMeta, Declared, Outcome, Severity, declare};
use nfvi_reference_model::Area;

/// What sysfs shows of one network interface's SR-IOV side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Sriov {
    /// No `sriov_totalvfs`: the device (or its driver) offers no SR-IOV.
    NotCapable,
    /// `sriov_totalvfs` and `sriov_numvfs` as read.
    Capable { total: u32, num: u32 },
    /// A file that exists but could not be read or parsed.
    Unreadable(String),
}

/// One interface of `/sys/class/net` with a `device` link (a physical NIC or a VF).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Nic {
    pub(crate) name: String,
    /// The driver's name (`device/driver` link), when bound.
    pub(crate) driver: Option<String>,
    /// The bus (`device/subsystem` link): `pci`, `virtio`, ...
    pub(crate) bus: Option<String>,
    /// A virtual function itself (`device/physfn` exists).
    pub(crate) is_vf: bool,
    pub(crate) sriov: Sriov,
}

/// Everything the judges see.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Observed {
    /// Interfaces with a device behind them, by name.
    pub(crate) nics: Vec<Nic>,
    /// Interfaces without one (`lo`, bridges, veths, ...).
    pub(crate) virtual_ifs: Vec<String>,
}

/// The value of a sysfs count file (`8\n`): `None` unless it is a plain unsigned number.
pub(crate) fn parse_count(text: &str) -> Option<u32> {
    let t = text.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

/// The last component of a sysfs link target (`../../bus/pci/drivers/ixgbe` → `ixgbe`).
pub(crate) fn link_name(target: &Path) -> Option<String> {
    target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty() && n != "..")
}

impl Nic {
    fn capable(&self) -> Option<(u32, u32)> {
        match self.sriov {
            Sriov::Capable { total, num } if total > 0 && !self.is_vf => Some((total, num)),
            _ => None,
        }
    }

    /// `eth2 (ixgbe on pci, 8 of 63 VFs)`.
    fn shown(&self) -> String {
        let mut parts = vec![format!(
            "{} on {}",
            self.driver.as_deref().unwrap_or("no driver"),
            self.bus.as_deref().unwrap_or("unknown bus")
        )];
        if self.is_vf {
            parts.push("a VF itself".to_owned());
        }
        parts.push(match &self.sriov {
            Sriov::NotCapable => "no SR-IOV (no sriov_totalvfs)".to_owned(),
            Sriov::Capable { total: 0, .. } => "sriov_totalvfs 0".to_owned(),
            Sriov::Capable { total, num } => format!("{num} of {total} VFs created"),
            Sriov::Unreadable(why) => why.clone(),
        });
        format!("{} ({})", self.name, parts.join(", "))
    }
}

/// Reads `/sys/class/net` under `root`; an error when the directory cannot be listed.
pub(crate) async fn observe(root: &Path) -> Result<Observed, String> {
    let class = root.join("sys/class/net");
    let mut rd = tokio::fs::read_dir(&class)
        .await
        .map_err(|e| format!("cannot list /sys/class/net: {e}"))?;
    let mut names = Vec::new();
    loop {
        match rd.next_entry().await {
            Ok(Some(e)) => names.push(e.file_name().to_string_lossy().into_owned()),
            Ok(None) => break,
            Err(e) => return Err(format!("cannot list /sys/class/net: {e}")),
        }
    }
    names.sort();
    let mut seen = Observed::default();
    for name in names {
        let device = class.join(&name).join("device");
        if !tokio::fs::try_exists(&device).await.unwrap_or(false) {
            seen.virtual_ifs.push(name);
            continue;
        }
        let link = |p: PathBuf| async move {
            tokio::fs::read_link(&p)
                .await
                .ok()
                .and_then(|t| link_name(&t))
        };
        let sriov = match tokio::fs::read_to_string(device.join("sriov_totalvfs")).await {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Sriov::NotCapable,
            Err(e) => Sriov::Unreadable(format!("cannot read sriov_totalvfs: {e}")),
            Ok(total) => {
                let num = tokio::fs::read_to_string(device.join("sriov_numvfs")).await;
                match (parse_count(&total), num.as_deref().map(parse_count)) {
                    (Some(total), Ok(Some(num))) => Sriov::Capable { total, num },
                    (None, _) => Sriov::Unreadable(format!(
                        "sriov_totalvfs is not a count: {:?}",
                        nfvi_harness::truncate_chars(total.trim(), 40)
                    )),
                    (_, Ok(None)) => Sriov::Unreadable("sriov_numvfs is not a count".to_owned()),
                    (_, Err(e)) => Sriov::Unreadable(format!("cannot read sriov_numvfs: {e}")),
                }
            }
        };
        seen.nics.push(Nic {
            driver: link(device.join("driver")).await,
            bus: link(device.join("subsystem")).await,
            // The link itself says so; whether its target resolves does not matter.
            is_vf: tokio::fs::symlink_metadata(device.join("physfn"))
                .await
                .is_ok(),
            sriov,
            name,
        });
    }
    Ok(seen)
}

/// The evidence both judges carry: every NIC seen, and the virtual interfaces.
fn evidence(o: Outcome, seen: &Observed) -> Outcome {
    let mut o = seen
        .nics
        .iter()
        .fold(o, |o, n| {
            o.with_property(format!("nic {}", n.name), n.shown())
        })
        .with_property(
            "virtual interfaces",
            if seen.virtual_ifs.is_empty() {
                "none".to_owned()
            } else {
                seen.virtual_ifs.join(", ")
            },
        );
    let capable: Vec<(u32, u32)> = seen.nics.iter().filter_map(Nic::capable).collect();
    o = o.with_metric("sriov_capable_nics", capable.len() as f64, "count");
    o.with_metric(
        "vfs_created",
        capable.iter().map(|(_, n)| f64::from(*n)).sum(),
        "count",
    )
}

/// What is left when nothing decided: an error when some NIC could not be read, not
/// applicable on a basic-profile node, a failure naming what was seen otherwise.
fn undecided(seen: &Observed, profile: NodeProfile, requirement: &str, fail: String) -> Outcome {
    let unreadable: Vec<String> = seen
        .nics
        .iter()
        .filter(|n| matches!(n.sriov, Sriov::Unreadable(_)))
        .map(Nic::shown)
        .collect();
    if !unreadable.is_empty() {
        return Outcome::error(format!(
            "sysfs could not be read for {}, so SR-IOV was not observed there",
            unreadable.join("; ")
        ));
    }
    if profile != NodeProfile::NetworkIntensive {
        return Outcome::not_applicable(format!(
            "{fail}; {requirement} applies to network-intensive nodes and this target's profile is `{}`",
            profile.as_str()
        ));
    }
    if seen.nics.iter().all(|n| n.is_vf) {
        return Outcome::fail(format!(
            "no physical NIC: /sys/class/net holds only {}",
            if seen.nics.is_empty() && seen.virtual_ifs.is_empty() {
                "nothing".to_owned()
            } else {
                seen.nics
                    .iter()
                    .map(Nic::shown)
                    .chain(seen.virtual_ifs.iter().map(|v| format!("{v} (virtual)")))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ));
    }
    Outcome::fail(fail)
}

fn physical(seen: &Observed) -> String {
    let shown: Vec<String> = seen
        .nics
        .iter()
        .filter(|n| !n.is_vf)
        .map(Nic::shown)
        .collect();
    if shown.is_empty() {
        "no physical NIC".to_owned()
    } else {
        shown.join(", ")
    }
}

/// ra2.ch.002: at least one physical NIC offers SR-IOV (`sriov_totalvfs` > 0).
pub(crate) fn judge_capable(seen: &Observed, profile: NodeProfile) -> Outcome {
    let capable: Vec<String> = seen
        .nics
        .iter()
        .filter(|n| n.capable().is_some())
        .map(Nic::shown)
        .collect();
    let o = if capable.is_empty() {
        undecided(
            seen,
            profile,
            "ra2.ch.002",
            format!(
                "no SR-IOV-capable NIC (none shows sriov_totalvfs > 0); seen: {}",
                physical(seen)
            ),
        )
    } else {
        Outcome::pass(format!(
            "{} SR-IOV-capable NIC(s): {}",
            capable.len(),
            capable.join(", ")
        ))
    };
    evidence(o, seen)
}

/// ra2.ch.003: at least one capable NIC has virtual functions created (`sriov_numvfs` > 0).
pub(crate) fn judge_vfs(seen: &Observed, profile: NodeProfile) -> Outcome {
    let with_vfs: Vec<String> = seen
        .nics
        .iter()
        .filter(|n| n.capable().is_some_and(|(_, num)| num > 0))
        .map(Nic::shown)
        .collect();
    let without: Vec<&Nic> = seen
        .nics
        .iter()
        .filter(|n| n.capable().is_some_and(|(_, num)| num == 0))
        .collect();
    let o = if !with_vfs.is_empty() {
        Outcome::pass(format!(
            "virtual functions created on {}",
            with_vfs.join(", ")
        ))
    } else if without.is_empty() {
        undecided(
            seen,
            profile,
            "ra2.ch.003",
            format!(
                "no SR-IOV-capable NIC, so no virtual function can be created; seen: {}",
                physical(seen)
            ),
        )
    } else {
        let fix = without
            .iter()
            .map(|n| format!("`echo N > /sys/class/net/{}/device/sriov_numvfs`", n.name))
            .collect::<Vec<_>>()
            .join(" or ");
        undecided(
            seen,
            profile,
            "ra2.ch.003",
            format!(
                "SR-IOV-capable NICs have no virtual function created: {}; create them at boot ({fix}, made persistent by a udev rule or systemd unit)",
                without
                    .iter()
                    .map(|n| n.shown())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    };
    evidence(o, seen)
}

#[derive(Clone, Copy)]
enum Judge {
    Capable,
    Vfs,
}

fn body(
    root: &Arc<PathBuf>,
    judge: Judge,
) -> impl for<'a> Fn(
    &'a nfvi_harness::CheckContext,
) -> nfvi_harness::BoxFuture<'a, nfvi_harness::CheckResult>
+ Send
+ Sync
+ 'static {
    let root = root.clone();
    move |cx| {
        let root = root.clone();
        Box::pin(async move {
            let seen = observe(&root).await?;
            let profile = cx.target().profile;
            Ok(match judge {
                Judge::Capable => judge_capable(&seen, profile),
                Judge::Vfs => judge_vfs(&seen, profile),
            })
        })
    }
}

/// The SR-IOV checks, reading sysfs under `root`.
pub(crate) fn checks(root: &Arc<PathBuf>) -> Vec<Declared> {
    const READS: &str = "none: reads /sys/class/net/*/device (sriov_totalvfs, sriov_numvfs, driver and subsystem links)";
    vec![
        declare(
            CheckMeta::new(
                "host.sriov.capable-nics",
                Area::Host,
                "The node has SR-IOV-capable NICs (sriov_totalvfs > 0)",
            )
            .covers(Severity::Must, &["ra2.ch.002"])
            .read_only(READS),
            body(root, Judge::Capable),
        ),
        declare(
            CheckMeta::new(
                "host.sriov.vfs-created",
                Area::Host,
                "SR-IOV virtual functions are created on the node (sriov_numvfs > 0)",
            )
            .covers(Severity::Must, &["ra2.ch.003"])
            .read_only(READS),
            body(root, Judge::Vfs),
        ),
    ]
}

#[cfg(test)]
#[path = "sriov_tests.rs"]
mod tests;
