//! The OpenStack API sanity checks: the table of service APIs RA1 asks for, the kinds of
//! API question a check asks, the checks' declarations and the entry point that puts the
//! credentials' evidence on every outcome. The token and JSON calls live in `session`, the
//! catalog and version-discovery readers in `catalog`, the questions themselves in `probes`,
//! the pure judges of services' state reports in `judges`, and the Horizon check in `horizon`.

mod catalog;
mod horizon;
mod judges;
mod probes;
mod session;

use std::sync::Arc;
use std::time::Duration;

use nfvi_harness::{
    Check, CheckContext, CheckError, CheckMeta, CheckResult, Outcome, Severity, declare,
};
use nfvi_reference_model::Area;
use serde_json::Value;

use crate::area::KollaShared;
use crate::creds::Credentials;
use horizon::horizon;
use probes::run_with;

pub(crate) use catalog::{catalog_endpoints, endpoint_root, versions};
pub(crate) use judges::{judge_compute_services, judge_network_agents};
pub(crate) use session::{Cached, issue_session, issue_token};

/// What the area knows about one OpenStack service type's API.
#[derive(Debug)]
struct ServiceApi {
    /// The catalog type (and older aliases).
    types: &'static [&'static str],
    /// The project's name for it, for titles.
    name: &'static str,
    /// The RA1 requirement that asks for it.
    requirement: &'static str,
    /// The version id RA1 asks for, as a prefix of discovery's `id` (`v2` matches `v2.16`).
    version: &'static str,
    /// Where version discovery answers, relative to the endpoint's root.
    discovery: &'static str,
    /// The read-only list call, relative to the catalog URL, and the key of its answer
    /// (empty: the answer is a JSON array).
    list: Option<(&'static str, &'static str)>,
}

const SERVICE_APIS: &[ServiceApi] = &[
    ServiceApi {
        types: &["compute"],
        name: "Nova",
        requirement: "int.api.06@ra1",
        version: "v2.1",
        discovery: "",
        list: Some(("/flavors", "flavors")),
    },
    ServiceApi {
        types: &["network"],
        name: "Neutron",
        requirement: "int.api.05@ra1",
        version: "v2.0",
        discovery: "",
        list: Some(("/v2.0/networks", "networks")),
    },
    ServiceApi {
        types: &["image"],
        name: "Glance",
        requirement: "int.api.02@ra1",
        version: "v2",
        discovery: "",
        list: Some(("/v2/images", "images")),
    },
    ServiceApi {
        types: &["block-storage", "volumev3"],
        name: "Cinder",
        requirement: "int.api.03@ra1",
        version: "v3",
        discovery: "",
        list: Some(("/volumes", "volumes")),
    },
    ServiceApi {
        types: &["object-store"],
        name: "Swift",
        requirement: "int.api.04@ra1",
        version: "",
        discovery: "info",
        list: Some(("?format=json", "")),
    },
    ServiceApi {
        types: &["placement"],
        name: "Placement",
        requirement: "int.api.08@ra1",
        version: "v1",
        discovery: "",
        list: Some(("/resource_providers", "resource_providers")),
    },
    ServiceApi {
        types: &["orchestration"],
        name: "Heat",
        requirement: "int.api.09@ra1",
        version: "v1",
        discovery: "",
        list: Some(("/stacks", "stacks")),
    },
];

fn service_api(service_type: &str) -> Option<&'static ServiceApi> {
    SERVICE_APIS
        .iter()
        .find(|a| a.types.contains(&service_type))
}

/// Which API question a check asks: all share the credentials, the token and the evidence.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Discovery,
    TokenIssue,
    TokenValidate,
    Catalog,
    Endpoints,
    Service(&'static ServiceApi),
    States(&'static StateCall),
}

/// A service's own report of its parts' states, judged by `judge`.
#[derive(Debug)]
struct StateCall {
    service_type: &'static str,
    requirement: &'static str,
    /// Relative to the catalog URL.
    path: &'static str,
    judge: fn(&Value, &str) -> Outcome,
}

const COMPUTE_SERVICES: StateCall = StateCall {
    service_type: "compute",
    requirement: "int.api.06@ra1",
    path: "/os-services",
    judge: judge_compute_services,
};

const NETWORK_AGENTS: StateCall = StateCall {
    service_type: "network",
    requirement: "int.api.05@ra1",
    path: "/v2.0/agents",
    judge: judge_network_agents,
};

/// The metadata every check that needs credentials shares. `#[track_caller]`, so the
/// check's own line is its declaration site.
#[track_caller]
fn meta(id: &str, title: &str, covers: &[&str]) -> CheckMeta {
    CheckMeta::new(id, Area::Kolla, title)
        .subject("openstack-api")
        .covers(Severity::Must, covers)
        .needs([crate::area::cloud_need()])
        .read_only("issues one project-scoped token (read-only API calls otherwise); the token expires on its own")
        .timeout(Duration::from_secs(60))
}

/// Every OpenStack API check.
pub fn checks() -> Vec<Arc<dyn Check>> {
    let mut all = vec![
        declare(
            meta(
                "kolla.api.identity-discovery",
                "Identity v3 version discovery: the stable v3 version and the version list",
                &["gen.ost.01", "int.api.01@ra1", "int.api.10@ra1"],
            ),
            |cx| Box::pin(run(Kind::Discovery, cx)),
        ),
        declare(
            meta(
                "kolla.api.token-issue",
                "A password token scoped to the project is issued (201, X-Subject-Token, catalog, roles)",
                &["int.api.01@ra1"],
            ),
            |cx| Box::pin(run(Kind::TokenIssue, cx)),
        ),
        declare(
            meta(
                "kolla.api.token-validate",
                "The token validates (GET /v3/auth/tokens)",
                &["int.api.01@ra1"],
            ),
            |cx| Box::pin(run(Kind::TokenValidate, cx)),
        ),
        declare(
            meta(
                "kolla.api.catalog",
                "The service catalog is not empty and lists identity on the chosen interface",
                &["gen.ost.01"],
            ),
            |cx| Box::pin(run(Kind::Catalog, cx)),
        ),
        declare(
            meta(
                "kolla.api.endpoints",
                "Every catalog endpoint answers version discovery and, for known types, a read-only list call",
                &["gen.ost.01", "int.api.10@ra1"],
            ),
            |cx| Box::pin(run(Kind::Endpoints, cx)),
        ),
    ];
    for api in SERVICE_APIS {
        let version = if api.version.is_empty() {
            String::new()
        } else {
            format!(" {}", api.version)
        };
        all.push(declare(
            meta(
                &format!("kolla.api.{}", api.types[0]),
                &format!(
                    "{} ({}) serves API{version}: version discovery and a read-only list call",
                    api.name, api.types[0]
                ),
                &[api.requirement],
            ),
            move |cx| Box::pin(run(Kind::Service(api), cx)),
        ));
    }
    all.extend([
        declare(
            meta(
                "kolla.api.compute-services",
                "Every enabled compute service (nova-scheduler, nova-conductor, nova-compute, ...) is up, and a compute host is registered",
                &[COMPUTE_SERVICES.requirement],
            ),
            |cx| Box::pin(run(Kind::States(&COMPUTE_SERVICES), cx)),
        ),
        declare(
            CheckMeta::new(
                "kolla.api.dashboard",
                Area::Kolla,
                "The Horizon dashboard serves its login page (openstack.dashboard_url)",
            )
            .subject("openstack-api")
            .covers(Severity::Must, &["int.api.07@ra1"])
            .read_only("none: one GET of the login page, no login")
            .timeout(Duration::from_secs(30)),
            |cx| Box::pin(horizon(cx)),
        ),
        declare(
            meta(
                "kolla.api.network-agents",
                "Every administratively up network agent is alive",
                &[NETWORK_AGENTS.requirement],
            ),
            |cx| Box::pin(run(Kind::States(&NETWORK_AGENTS), cx)),
        ),
    ]);
    all.into_iter().map(|d| d.into_check()).collect()
}

/// Runs a check with the target's credentials; where they come from and what they reach go on
/// every outcome once they are known, an early one too.
async fn run(kind: Kind, cx: &CheckContext) -> CheckResult {
    let os = cx.target().config::<crate::OpenStackConfig>();
    let creds = Credentials::discover(os)?.with_target(os);
    let shared = cx.shared::<KollaShared>();
    let evidence = |o: Outcome| {
        o.with_property("credentials from", &creds.source)
            .with_stage("post-deploy (API smoke tests on its openrc)")
            .with_property("auth url", &creds.auth_url)
            .with_property("interface", &creds.interface)
            .with_property("TLS", creds.tls.describe())
    };
    run_with(kind, &shared, &creds)
        .await
        .map(evidence)
        .map_err(|CheckError(o)| evidence(o).into())
}
