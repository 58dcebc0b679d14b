//! The tests of [`super`] (sriov.rs).

use super::*;
use nfvi_harness::{SkipKind, Status};

#[test]
fn counts_parse_and_hostile_ones_do_not() {
    for (text, want) in [
        ("8\n", Some(8)),
        ("0", Some(0)),
        (" 63 \n", Some(63)),
        ("", None),
        ("-1", None),
        ("+4", None),
        ("8 VFs", None),
        ("99999999999999999999", None),
        ("\u{0}", None),
    ] {
        assert_eq!(parse_count(text), want, "{text:?}");
    }
    assert_eq!(
        link_name(Path::new("../../../bus/pci/drivers/ixgbe")).as_deref(),
        Some("ixgbe")
    );
    assert_eq!(link_name(Path::new("..")), None);
    assert_eq!(link_name(Path::new("/")), None);
}

fn nic(name: &str, is_vf: bool, sriov: Sriov) -> Nic {
    Nic {
        name: name.into(),
        driver: Some(if is_vf { "iavf" } else { "i40e" }.into()),
        bus: Some("pci".into()),
        is_vf,
        sriov,
    }
}

fn virtio() -> Nic {
    Nic {
        name: "eth0".into(),
        driver: Some("virtio_net".into()),
        bus: Some("virtio".into()),
        is_vf: false,
        sriov: Sriov::NotCapable,
    }
}

/// (what was seen, profile, status of capable-nics, of vfs-created, words in both).
#[test]
fn judges_table() {
    use NodeProfile::{Basic, NetworkIntensive as Ni};
    use Sriov::{Capable, NotCapable, Unreadable};
    let cap = |total, num| Capable { total, num };
    let na = Status::Skipped;
    type Row = (
        &'static str,
        Observed,
        NodeProfile,
        Status,
        Status,
        &'static str,
    );
    let rows: Vec<Row> = vec![
        (
            "nothing observed",
            Observed::default(),
            Ni,
            Status::Failed,
            Status::Failed,
            "no physical NIC: /sys/class/net holds only nothing",
        ),
        (
            "nothing observed, basic",
            Observed::default(),
            Basic,
            na,
            na,
            "profile is `basic`",
        ),
        (
            "only virtual interfaces",
            Observed {
                nics: vec![],
                virtual_ifs: vec!["lo".into(), "br0".into()],
            },
            Ni,
            Status::Failed,
            Status::Failed,
            "no physical NIC: /sys/class/net holds only lo (virtual), br0 (virtual)",
        ),
        (
            "a virtio NIC (this VM)",
            Observed {
                nics: vec![virtio()],
                virtual_ifs: vec!["lo".into()],
            },
            Ni,
            Status::Failed,
            Status::Failed,
            "eth0 (virtio_net on virtio, no SR-IOV (no sriov_totalvfs))",
        ),
        (
            "a virtio NIC on a basic node",
            Observed {
                nics: vec![virtio()],
                virtual_ifs: vec![],
            },
            Basic,
            na,
            na,
            "applies to network-intensive nodes",
        ),
        (
            "capable, VFs created",
            Observed {
                nics: vec![virtio(), nic("ens1f0", false, cap(64, 8))],
                virtual_ifs: vec![],
            },
            Ni,
            Status::Passed,
            Status::Passed,
            "ens1f0 (i40e on pci, 8 of 64 VFs created)",
        ),
        (
            "capable on a basic node still passes: it was observed",
            Observed {
                nics: vec![nic("ens1f0", false, cap(64, 8))],
                virtual_ifs: vec![],
            },
            Basic,
            Status::Passed,
            Status::Passed,
            "ens1f0",
        ),
        (
            "capable, no VFs",
            Observed {
                nics: vec![nic("ens1f0", false, cap(64, 0))],
                virtual_ifs: vec![],
            },
            Ni,
            Status::Passed,
            Status::Failed,
            "ens1f0 (i40e on pci, 0 of 64 VFs created)",
        ),
        (
            "sriov_totalvfs 0 is not capable",
            Observed {
                nics: vec![nic("ens1f0", false, cap(0, 0))],
                virtual_ifs: vec![],
            },
            Ni,
            Status::Failed,
            Status::Failed,
            "ens1f0 (i40e on pci, sriov_totalvfs 0)",
        ),
        (
            "only VFs in this namespace",
            Observed {
                nics: vec![nic("ens1f0v0", true, NotCapable)],
                virtual_ifs: vec![],
            },
            Ni,
            Status::Failed,
            Status::Failed,
            "no physical NIC",
        ),
        (
            "unreadable sysfs, nothing else",
            Observed {
                nics: vec![nic(
                    "ens1f0",
                    false,
                    Unreadable("cannot read sriov_totalvfs: Permission denied".into()),
                )],
                virtual_ifs: vec![],
            },
            Basic,
            Status::Error,
            Status::Error,
            "sysfs could not be read for ens1f0",
        ),
        (
            "unreadable next to a capable NIC: the capable one decides",
            Observed {
                nics: vec![
                    nic(
                        "ens1f0",
                        false,
                        Unreadable("sriov_numvfs is not a count".into()),
                    ),
                    nic("ens2f0", false, cap(8, 2)),
                ],
                virtual_ifs: vec![],
            },
            Ni,
            Status::Passed,
            Status::Passed,
            "ens2f0",
        ),
    ];
    for (what, seen, profile, capable, vfs, words) in rows {
        for (judged, want) in [
            (judge_capable(&seen, profile), capable),
            (judge_vfs(&seen, profile), vfs),
        ] {
            assert_eq!(judged.status, want, "{what}: {}", judged.message);
            if want == Status::Skipped {
                assert_eq!(judged.skip_kind(), Some(SkipKind::NotApplicable), "{what}");
            }
            assert!(
                judged.message.contains(words),
                "{what}: `{words}` not in: {}",
                judged.message
            );
        }
    }
}

#[test]
fn a_failure_names_the_fix_and_the_evidence_lists_every_interface() {
    let seen = Observed {
        nics: vec![
            virtio(),
            nic("ens1f0", false, Sriov::Capable { total: 64, num: 0 }),
        ],
        virtual_ifs: vec!["lo".into()],
    };
    let o = judge_vfs(&seen, NodeProfile::NetworkIntensive);
    assert!(
        o.message
            .contains("`echo N > /sys/class/net/ens1f0/device/sriov_numvfs`"),
        "{}",
        o.message
    );
    let p = &o.evidence.properties;
    assert_eq!(
        p["nic eth0"],
        "eth0 (virtio_net on virtio, no SR-IOV (no sriov_totalvfs))"
    );
    assert_eq!(p["virtual interfaces"], "lo");
    assert_eq!(o.evidence.metrics["sriov_capable_nics"].value, 1.0);
    assert_eq!(o.evidence.metrics["vfs_created"].value, 0.0);
}
