//! The areas this build of `nfvi-verify` verifies. Adding an area is one line here and its
//! own crate (ARCHITECTURE.md).

use std::sync::Arc;

use nfvi_harness::Areas;

pub mod values;

/// Every area of this build, in the order `list` and the reports show them.
pub fn areas() -> Areas {
    Areas::new(vec![
        Arc::new(nfvi_suite_host::HostArea),
        Arc::new(nfvi_suite_cni::CniArea),
        Arc::new(nfvi_suite_datapath::DatapathArea),
        Arc::new(nfvi_suite_docker::DockerArea),
        Arc::new(nfvi_suite_kolla::KollaArea),
        Arc::new(nfvi_suite_k8s::K8sArea::with_evidence(
            nfvi_suite_evidence::upstream::path(),
        )),
        Arc::new(nfvi_suite_evidence::EvidenceArea),
        Arc::new(nfvi_suite_tempest::TempestArea),
        Arc::new(nfvi_fleet::FleetArea),
    ])
}
