//! The OpenStack API sanity checks.

use std::sync::Arc;
use std::time::Duration;

use nfvi_harness::{
    Check, CheckContext, CheckError, CheckMeta, CheckResult, Outcome, Severity, declare,
};
use nfvi_reference_model::Area;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::area::KollaShared;
use crate::creds::{Credentials, Secret};
use crate::http;

/// A project-scoped token and the token body (catalog, roles, expiry).
#[derive(Clone)]
pub(crate) struct Session {
    token: Secret,
    body: Value,
    status: u16,
}

/// One run's token for one set of credentials, issued on first use.
pub(crate) type Cached = Arc<OnceCell<Result<Session, String>>>;

/// One token per (auth URL, user, project) for the whole run: token issue costs a bcrypt
/// round on the server. The cache is the area's shared state, so it ends with the run.
fn cache_slot(shared: &KollaShared, creds: &Credentials) -> Cached {
    let key = format!("{}|{}|{}", creds.auth_url, creds.username, creds.project);
    shared
        .sessions
        .lock()
        .expect("session cache poisoned")
        .entry(key)
        .or_default()
        .clone()
}

/// Where a user gives the CA bundle of a private-CA cloud, for TLS messages.
const CA_HINT: &str = "openstack.cacert in the target file, OS_CACERT, or `cacert` in clouds.yaml";

/// Sends a request and reads a JSON body, with messages that name the URL and what came back.
async fn json_call(
    req: reqwest::RequestBuilder,
    url: &str,
) -> Result<(u16, reqwest::header::HeaderMap, Value), String> {
    let resp = req
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| http::describe(&e, url, CA_HINT))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let ctype = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = resp
        .text()
        .await
        .map_err(|e| format!("reading the answer of {url}: {e}"))?;
    let body = serde_json::from_str(&text).map_err(|_| {
        format!(
            "{url} answered {status} with {} instead of JSON: {}",
            if ctype.is_empty() {
                "no content type"
            } else {
                &ctype
            },
            nfvi_harness::truncate_chars(
                &text.split_whitespace().collect::<Vec<_>>().join(" "),
                120
            )
        )
    })?;
    Ok((status, headers, body))
}

/// Issues a project-scoped password token.
async fn issue(http: &reqwest::Client, creds: &Credentials) -> Result<Session, String> {
    let url = format!("{}/auth/tokens", creds.auth_url);
    let body = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": creds.username, "domain": {"name": creds.user_domain}, "password": creds.password.expose()}}},
        "scope": {"project": {"name": creds.project, "domain": {"name": creds.project_domain}}}}});
    let (status, headers, body) = json_call(http.post(&url).json(&body), &url).await?;
    if status == 401 {
        return Err(format!(
            "POST {url} answered 401: Keystone rejected the credentials of user `{}` from {} (wrong password?)",
            creds.username, creds.source
        ));
    }
    if status != 201 {
        return Err(format!(
            "POST {url} answered {status}, expected 201 with a token: {}",
            nfvi_harness::truncate_chars(&body.to_string(), 200)
        ));
    }
    let token = headers
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| format!("POST {url} answered 201 without an X-Subject-Token header"))?;
    Ok(Session {
        token: crate::creds::secret(token),
        body,
        status,
    })
}

/// A project-scoped token and the project's id, for the lab's own Keystone calls.
pub(crate) async fn issue_token(
    http: &reqwest::Client,
    creds: &Credentials,
) -> Result<(Secret, String), String> {
    let s = issue(http, creds).await?;
    let project = s.body["token"]["project"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Ok((s.token, project))
}

/// A project-scoped token and Keystone's token body (with the catalog).
pub(crate) async fn issue_session(
    http: &reqwest::Client,
    creds: &Credentials,
) -> Result<(Secret, Value), String> {
    let s = issue(http, creds).await?;
    Ok((s.token, s.body))
}

/// The run's session for these credentials, issued once.
async fn session(shared: &KollaShared, creds: &Credentials) -> Result<Session, String> {
    cache_slot(shared, creds)
        .get_or_init(|| async { issue(&http::client(&creds.tls)?, creds).await })
        .await
        .clone()
}

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

/// An endpoint URL's root (what version discovery answers at): scheme, host, port and any
/// path before the version segment (a trailing project id or its placeholder goes too).
pub(crate) fn endpoint_root(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let mut parts: Vec<&str> = rest.split('/').collect();
    let project_id = |s: &str| {
        s.contains("project_id")
            || s.contains("tenant_id")
            || (s.len() == 32 && s.chars().all(|c| c.is_ascii_hexdigit()))
    };
    while let Some(last) = parts.last() {
        let versioned =
            last.starts_with('v') && last[1..].chars().next().is_some_and(|c| c.is_ascii_digit());
        if parts.len() > 1 && (versioned || last.is_empty() || project_id(last)) {
            parts.pop();
        } else {
            break;
        }
    }
    format!("{scheme}://{}/", parts.join("/"))
}

/// The endpoints of the chosen interface (and region, when one is set), as (type, URL)
/// with any project placeholder Keystone left unsubstituted removed.
pub(crate) fn catalog_endpoints(token_body: &Value, creds: &Credentials) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for svc in token_body["token"]["catalog"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let ty = svc["type"].as_str().unwrap_or("?");
        for ep in svc["endpoints"].as_array().into_iter().flatten() {
            let other_region = creds
                .region
                .as_deref()
                .is_some_and(|r| ep["region_id"] != r && ep["region"] != r);
            if ep["interface"] != creds.interface.as_str() || other_region {
                continue;
            }
            let mut url = ep["url"].as_str().unwrap_or("").to_owned();
            for placeholder in [
                "$(project_id)s",
                "%(project_id)s",
                "$(tenant_id)s",
                "%(tenant_id)s",
            ] {
                url = url.replace(placeholder, "");
            }
            out.push((ty.to_owned(), url.trim_end_matches('/').to_owned()));
        }
    }
    out
}

/// Version discovery at an endpoint: the document when it answers 200 or 300 with one.
async fn discover(http: &reqwest::Client, root: &str) -> Result<(u16, Value), String> {
    match json_call(http.get(root), root).await? {
        (st, _, b)
            if (st == 200 || st == 300)
                && (b.get("version").is_some()
                    || b.get("versions").is_some()
                    || b.get("swift").is_some()) =>
        {
            Ok((st, b))
        }
        (st, _, _) => Err(format!(
            "GET {root} answered {st} without a version document"
        )),
    }
}

/// The version entries of a discovery document (`versions` as a list or as Keystone's
/// `versions.values`, or a single `version`).
pub(crate) fn versions(doc: &Value) -> Vec<&Value> {
    if let Some(list) = doc["versions"].as_array() {
        list.iter().collect()
    } else if let Some(list) = doc["versions"]["values"].as_array() {
        list.iter().collect()
    } else if doc["version"].is_object() {
        vec![&doc["version"]]
    } else {
        Vec::new()
    }
}

/// A read-only list call with the token: how many entries came back.
async fn list(
    http: &reqwest::Client,
    token: &Secret,
    url: &str,
    key: &str,
) -> Result<usize, String> {
    let what = if key.is_empty() {
        "a JSON list".to_owned()
    } else {
        format!("`{key}`")
    };
    match json_call(http.get(url).header("X-Auth-Token", token.expose()), url).await? {
        (200, _, b) if key.is_empty() && b.is_array() => Ok(b.as_array().map_or(0, Vec::len)),
        (200 | 204, _, b) if !key.is_empty() && b.get(key).is_some() => {
            Ok(b[key].as_array().map_or(0, Vec::len))
        }
        (st, _, _) => Err(format!("GET {url} answered {st}, expected 200 with {what}")),
    }
}

fn skip_absent(types: &[&str], creds: &Credentials, covers: &str) -> Outcome {
    let region = creds
        .region
        .as_deref()
        .map(|r| format!(" in region `{r}`"))
        .unwrap_or_default();
    Outcome::not_applicable(format!(
        "the catalog has no `{}` endpoint on interface `{}`{region}: the service is not deployed, so {covers} stays unverified",
        types[0], creds.interface
    ))
}

/// What a check of `kind` asks the APIs, and its judgement of the answers.
async fn run_with(kind: Kind, shared: &KollaShared, creds: &Credentials) -> CheckResult {
    let http = http::client(&creds.tls)?;
    // An unreachable identity service leaves the question open (error); a rejection or a
    // malformed answer is the NFVI's (failure).
    let session = || async {
        session(shared, creds).await.map_err(|e| {
            if http::unreachable(&e) {
                Outcome::error(e)
            } else {
                Outcome::fail(e)
            }
        })
    };
    match kind {
        Kind::Discovery => {
            let (status, _, body) = json_call(http.get(&creds.auth_url), &creds.auth_url).await?;
            let v = &body["version"];
            if status != 200
                || v["status"] != "stable"
                || !v["id"].as_str().unwrap_or("").starts_with("v3")
            {
                return Ok(Outcome::fail(format!(
                    "GET {} answered {status}; expected 200 with a stable v3 version, got version {}",
                    creds.auth_url, v
                )));
            }
            let root = endpoint_root(&creds.auth_url);
            let (rs, _, rb) = json_call(http.get(&root), &root).await?;
            let versions = rb["versions"]["values"].as_array().map_or(0, Vec::len);
            let o = if (rs == 300 || rs == 200) && versions > 0 {
                Outcome::pass(format!(
                    "identity {} is stable; {root} lists {versions} version(s)",
                    v["id"].as_str().unwrap_or("")
                ))
            } else {
                Outcome::fail(format!(
                    "GET {root} answered {rs} with {versions} versions; expected 300 and a version list"
                ))
            };
            Ok(
                o.with_property("identity version", v["id"].as_str().unwrap_or(""))
                    .with_property("version list status", rs),
            )
        }
        Kind::TokenIssue => {
            let s = session().await?;
            let t = &s.body["token"];
            let mut missing = Vec::new();
            for key in ["catalog", "roles", "expires_at", "project"] {
                if t.get(key).is_none() {
                    missing.push(key);
                }
            }
            Ok(if missing.is_empty() {
                Outcome::pass(format!(
                    "token issued ({}), expires {}, roles {}",
                    s.status,
                    t["expires_at"].as_str().unwrap_or(""),
                    t["roles"].as_array().map_or(0, Vec::len)
                ))
                .with_property("project", t["project"]["name"].as_str().unwrap_or(""))
            } else {
                Outcome::fail(format!("the token body lacks {missing:?}"))
            })
        }
        Kind::TokenValidate => {
            let s = session().await?;
            let url = format!("{}/auth/tokens", creds.auth_url);
            let req = http
                .get(&url)
                .header("X-Auth-Token", s.token.expose())
                .header("X-Subject-Token", s.token.expose());
            let (status, _, body) = json_call(req, &url).await?;
            Ok(
                if status == 200 && body["token"]["expires_at"].is_string() {
                    Outcome::pass("the token validates (200)")
                } else {
                    Outcome::fail(format!(
                        "GET {url} with the token answered {status}; expected 200 and the token body"
                    ))
                },
            )
        }
        Kind::Catalog => {
            let s = session().await?;
            let catalog = s.body["token"]["catalog"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let types: Vec<&str> = catalog.iter().filter_map(|c| c["type"].as_str()).collect();
            let identity = catalog.iter().find(|c| c["type"] == "identity");
            let on_iface = identity.is_some_and(|c| {
                c["endpoints"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|e| e["interface"] == creds.interface.as_str())
            });
            let o = if catalog.is_empty() {
                Outcome::fail("the service catalog is empty")
            } else if !on_iface {
                Outcome::fail(format!(
                    "the catalog has no identity endpoint on interface `{}`",
                    creds.interface
                ))
            } else {
                Outcome::pass(format!("{} services: {}", types.len(), types.join(", ")))
            };
            Ok(o.with_property("service types", types.join(", "))
                .with_property("interface", &creds.interface))
        }
        Kind::Endpoints => {
            let s = session().await?;
            let endpoints = catalog_endpoints(&s.body, creds);
            if endpoints.is_empty() {
                return Ok(Outcome::fail(format!(
                    "no catalog endpoint on interface `{}`",
                    creds.interface
                )));
            }
            // Endpoints are asked concurrently; one that fails discovery is not asked
            // its list call.
            let probes = endpoints.iter().map(|(ty, url)| {
                let (http, token) = (&http, &s.token);
                async move {
                    let api = service_api(ty);
                    let root = format!("{}{}", endpoint_root(url), api.map_or("", |a| a.discovery));
                    let mut props = Vec::new();
                    match discover(http, &root).await {
                        Ok((st, _)) => {
                            props.push((format!("{ty} discovery"), format!("{root} -> {st}")))
                        }
                        Err(e) => return (props, Some(format!("{ty}: {e}"))),
                    }
                    if let Some((path, key)) = api.and_then(|a| a.list) {
                        let call = format!("{url}{path}");
                        match list(http, token, &call, key).await {
                            Ok(n) => props.push((
                                format!("{ty} list"),
                                format!("GET {call} -> 200, {n} entries"),
                            )),
                            Err(e) => return (props, Some(format!("{ty}: {e}"))),
                        }
                    }
                    (props, None)
                }
            });
            let mut o = Outcome::pass("");
            let mut problems = Vec::new();
            for (props, problem) in futures_util::future::join_all(probes).await {
                for (k, v) in props {
                    o = o.with_property(k, v);
                }
                problems.extend(problem);
            }
            if problems.is_empty() {
                o.message = format!(
                    "{} endpoint(s) answered version discovery and their list call",
                    endpoints.len()
                );
                Ok(o)
            } else {
                let mut f = Outcome::fail(problems.join("; "));
                f.evidence = o.evidence;
                Ok(f)
            }
        }
        Kind::Service(api) => {
            let s = session().await?;
            let (ty, url) = service_url(&s.body, creds, api.types, api.requirement)?;
            let root = format!("{}{}", endpoint_root(&url), api.discovery);
            let (st, doc) = discover(&http, &root).await.map_err(Outcome::fail)?;
            let mut o = Outcome::pass("")
                .with_property("catalog type", &ty)
                .with_property("endpoint", &url)
                .with_property("discovery", format!("{root} -> {st}"));
            let served = if api.version.is_empty() {
                let v = doc["swift"]["version"].as_str().unwrap_or("?");
                o = o.with_property("version", v);
                format!("version {v}")
            } else {
                let all = versions(&doc);
                let ids: Vec<&str> = all.iter().filter_map(|v| v["id"].as_str()).collect();
                o = o.with_property("versions", ids.join(", "));
                let usable = all.iter().find(|v| {
                    v["id"]
                        .as_str()
                        .is_some_and(|id| id.starts_with(api.version))
                        && matches!(
                            v["status"].as_str().unwrap_or(""),
                            "CURRENT" | "SUPPORTED" | "stable" | "STABLE"
                        )
                });
                let Some(v) = usable else {
                    return Ok(Outcome::fail(format!(
                        "{} at {root} lists versions [{}]; RA1 asks for {} as CURRENT or SUPPORTED",
                        api.name,
                        ids.join(", "),
                        api.version
                    ))
                    .with_property("endpoint", &url));
                };
                let id = v["id"].as_str().unwrap_or("");
                let micro = v["version"]
                    .as_str()
                    .or(v["max_version"].as_str())
                    .filter(|m| !m.is_empty());
                if let Some(m) = micro {
                    o = o.with_property("max microversion", m);
                }
                match micro {
                    Some(m) => format!("{id} (microversions up to {m})"),
                    None => id.to_owned(),
                }
            };
            if let Some((path, key)) = api.list {
                let call = format!("{url}{path}");
                let n = list(&http, &s.token, &call, key)
                    .await
                    .map_err(Outcome::fail)?;
                o = o.with_property("list call", format!("GET {call} -> 200, {n} entries"));
            }
            o.message = format!("{} serves {served} at {url}", api.name);
            Ok(o)
        }
        Kind::States(state) => {
            let s = session().await?;
            let (_, url) = service_url(&s.body, creds, &[state.service_type], state.requirement)?;
            let call = format!("{url}{}", state.path);
            let body = authed_json(&http, &s.token, &call).await?;
            Ok((state.judge)(&body, &call))
        }
    }
}

/// The endpoint of one of `types` on the chosen interface (and region), or the skip that says
/// the service is not deployed and `covers` stays unverified.
fn service_url(
    token_body: &Value,
    creds: &Credentials,
    types: &[&str],
    covers: &str,
) -> Result<(String, String), Outcome> {
    catalog_endpoints(token_body, creds)
        .into_iter()
        .find(|(t, _)| types.contains(&t.as_str()))
        .ok_or_else(|| skip_absent(types, creds, covers))
}

/// Horizon, which needs no credentials; the Kolla stage goes on every outcome, a skip or an
/// early error too.
async fn horizon(cx: &CheckContext) -> CheckResult {
    let stage = |o: Outcome| o.with_stage("post-deploy (API smoke tests on its openrc)");
    dashboard(cx.target().config::<crate::OpenStackConfig>())
        .await
        .map(stage)
        .map_err(|CheckError(o)| stage(o).into())
}

/// Horizon: `dashboard_url` answers (after redirects) 200 with an HTML page that is Horizon's
/// login page (its title or its login form).
async fn dashboard(os: &crate::OpenStackConfig) -> CheckResult {
    let Some(url) = os.dashboard_url.as_deref() else {
        return Ok(Outcome::not_applicable(
            "openstack.dashboard_url is empty (a deployment without Horizon, such as an edge site): int.api.07@ra1 stays unverified",
        ));
    };
    let tls = http::Tls {
        cacert: os.cacert.clone(),
        insecure: os.insecure,
    };
    let client = http::client(&tls)?;
    let resp = client
        .get(url)
        .header("Accept", "text/html")
        .send()
        .await
        .map_err(|e| http::describe(&e, url, CA_HINT))?;
    let status = resp.status().as_u16();
    let landed = resp.url().to_string();
    let page = resp.text().await.unwrap_or_default();
    let mut landed_on = landed.clone();
    // Horizon's `/` redirects to the login page; a page that only refreshes to it is followed
    // once.
    let refresh = page
        .split("url=")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .filter(|_| page.contains("http-equiv=\"refresh\""));
    let (status, page) = match refresh.and_then(|r| reqwest::Url::parse(&landed).ok()?.join(r).ok())
    {
        Some(next) => {
            landed_on = next.to_string();
            let r = client
                .get(next.clone())
                .send()
                .await
                .map_err(|e| http::describe(&e, next.as_str(), CA_HINT))?;
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        }
        None => (status, page),
    };
    let horizon = page.contains("OpenStack Dashboard") || page.contains("csrfmiddlewaretoken");
    let o = if status == 200 && horizon {
        Outcome::pass(format!("{url} serves the Horizon login page ({landed_on})"))
    } else if status == 200 {
        Outcome::fail(format!(
            "{url} answered 200 at {landed_on}, but not with Horizon's login page: {}",
            nfvi_harness::truncate_chars(
                &page.split_whitespace().collect::<Vec<_>>().join(" "),
                120
            )
        ))
    } else {
        Outcome::fail(format!(
            "{url} answered {status} at {landed_on}; expected 200 with Horizon's login page"
        ))
    };
    Ok(o.with_property("dashboard", url)
        .with_property("landed on", landed_on)
        .with_property("TLS", tls.describe()))
}

/// A GET with the token that must answer 200 with JSON; anything else fails naming it.
async fn authed_json(http: &reqwest::Client, token: &Secret, url: &str) -> Result<Value, Outcome> {
    match json_call(http.get(url).header("X-Auth-Token", token.expose()), url).await {
        Ok((200, _, b)) => Ok(b),
        Ok((st, _, b)) => Err(Outcome::fail(format!(
            "GET {url} answered {st}, expected 200: {}",
            nfvi_harness::truncate_chars(&b.to_string(), 160)
        ))),
        Err(e) if http::unreachable(&e) => Err(Outcome::error(e)),
        Err(e) => Err(Outcome::fail(e)),
    }
}

/// Nova's `os-services`: every enabled service up (`state`, and not `forced_down`), and at
/// least one nova-compute.
pub(crate) fn judge_compute_services(body: &Value, call: &str) -> Outcome {
    let Some(services) = body["services"].as_array() else {
        return Outcome::fail(format!("GET {call} answered without a `services` list"));
    };
    let mut o = Outcome::pass("");
    let (mut down, mut disabled, mut computes) = (Vec::new(), Vec::new(), 0);
    for svc in services {
        let name = format!(
            "{}@{}",
            svc["binary"].as_str().unwrap_or("?"),
            svc["host"].as_str().unwrap_or("?")
        );
        let state = svc["state"].as_str().unwrap_or("?");
        let status = svc["status"].as_str().unwrap_or("?");
        let forced = svc["forced_down"].as_bool().unwrap_or(false);
        o = o.with_property(
            &name,
            format!(
                "{status}, {state}{}, updated {}",
                if forced { " (forced down)" } else { "" },
                svc["updated_at"].as_str().unwrap_or("never")
            ),
        );
        if status == "disabled" {
            disabled.push(name);
            continue;
        }
        if svc["binary"] == "nova-compute" {
            computes += 1;
        }
        if state != "up" || forced {
            down.push(format!(
                "{name} is {state}{} (last heartbeat {})",
                if forced { ", forced down" } else { "" },
                svc["updated_at"].as_str().unwrap_or("never")
            ));
        }
    }
    if !disabled.is_empty() {
        o = o.with_property("disabled (not judged)", disabled.join(", "));
    }
    if !down.is_empty() {
        let mut f = Outcome::fail(format!("compute services down: {}", down.join("; ")));
        f.evidence = o.evidence;
        return f;
    }
    if computes == 0 {
        let mut f = Outcome::fail(format!(
            "GET {call} lists no enabled nova-compute: the cloud has no hypervisor to schedule on"
        ));
        f.evidence = o.evidence;
        return f;
    }
    o.message = format!(
        "{} compute services up ({computes} nova-compute){}",
        services.len() - disabled.len(),
        if disabled.is_empty() {
            String::new()
        } else {
            format!(", {} disabled", disabled.len())
        }
    );
    o
}

/// Neutron's agents: every administratively up agent alive, and at least one agent.
pub(crate) fn judge_network_agents(body: &Value, call: &str) -> Outcome {
    let Some(agents) = body["agents"].as_array() else {
        return Outcome::fail(format!("GET {call} answered without an `agents` list"));
    };
    if agents.is_empty() {
        return Outcome::fail(format!(
            "GET {call} lists no agents: no L2 or L3 agent reports to neutron-server"
        ));
    }
    let mut o = Outcome::pass("");
    let mut dead = Vec::new();
    let mut admin_down = 0;
    for a in agents {
        let name = format!(
            "{}@{}",
            a["binary"].as_str().unwrap_or("?"),
            a["host"].as_str().unwrap_or("?")
        );
        let alive = a["alive"].as_bool().unwrap_or(false);
        let admin_up = a["admin_state_up"].as_bool().unwrap_or(true);
        let beat = a["heartbeat_timestamp"].as_str().unwrap_or("never");
        o = o.with_property(
            &name,
            format!(
                "{}, {}, heartbeat {beat}",
                if alive { "alive" } else { "dead" },
                if admin_up { "admin up" } else { "admin down" }
            ),
        );
        if !admin_up {
            admin_down += 1;
        } else if !alive {
            dead.push(format!(
                "{name} ({}) last heartbeat {beat}",
                a["agent_type"].as_str().unwrap_or("?")
            ));
        }
    }
    if !dead.is_empty() {
        let mut f = Outcome::fail(format!("network agents not alive: {}", dead.join("; ")));
        f.evidence = o.evidence;
        return f;
    }
    o.message = format!(
        "{} network agents alive{}",
        agents.len() - admin_down,
        if admin_down > 0 {
            format!(", {admin_down} administratively down (not judged)")
        } else {
            String::new()
        }
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `GET /v2.1/os-services` as the compute API reference shows it (microversion 2.11+).
    const NOVA_SERVICES: &str = r#"{"services": [
        {"id": 1, "binary": "nova-scheduler", "host": "ctl1", "zone": "internal", "status": "enabled", "state": "up", "updated_at": "2026-11-27T03:00:00.000000", "disabled_reason": null, "forced_down": false},
        {"id": 2, "binary": "nova-compute", "host": "cmp1", "zone": "nova", "status": "enabled", "state": "up", "updated_at": "2026-11-27T03:00:00.000000", "disabled_reason": null, "forced_down": false},
        {"id": 3, "binary": "nova-compute", "host": "cmp2", "zone": "nova", "status": "disabled", "state": "down", "updated_at": null, "disabled_reason": "maintenance", "forced_down": false}
    ]}"#;

    fn judge(f: fn(&Value, &str) -> Outcome, text: &str) -> Outcome {
        f(&serde_json::from_str(text).unwrap(), "GET x")
    }

    #[test]
    fn compute_services_judge_enabled_ones_and_need_a_compute_host() {
        let o = judge(judge_compute_services, NOVA_SERVICES);
        assert_eq!(o.status, nfvi_harness::Status::Passed, "{}", o.message);
        assert!(
            o.message
                .contains("2 compute services up (1 nova-compute), 1 disabled"),
            "{}",
            o.message
        );
        let forced = NOVA_SERVICES.replacen("\"forced_down\": false", "\"forced_down\": true", 1);
        let o = judge(judge_compute_services, &forced);
        assert_eq!(o.status, nfvi_harness::Status::Failed);
        assert!(
            o.message.contains("nova-scheduler@ctl1 is up, forced down"),
            "{}",
            o.message
        );
        let down = NOVA_SERVICES.replacen("\"state\": \"up\"", "\"state\": \"down\"", 2);
        let o = judge(judge_compute_services, &down);
        assert!(
            o.message.contains("nova-compute@cmp1 is down"),
            "{}",
            o.message
        );
        let o = judge(
            judge_compute_services,
            r#"{"services": [{"binary": "nova-scheduler", "host": "a", "status": "enabled", "state": "up"}]}"#,
        );
        assert!(
            o.message.contains("no enabled nova-compute"),
            "{}",
            o.message
        );
        for bad in [r#"{}"#, r#"{"services": {}}"#, "[]"] {
            assert_eq!(
                judge(judge_compute_services, bad).status,
                nfvi_harness::Status::Failed,
                "{bad}"
            );
        }
    }

    #[test]
    fn network_agents_judge_admin_up_ones() {
        let text = r#"{"agents": [
            {"binary": "neutron-openvswitch-agent", "agent_type": "Open vSwitch agent", "host": "cmp1", "alive": true, "admin_state_up": true, "heartbeat_timestamp": "2026-11-27 03:00:00"},
            {"binary": "neutron-l3-agent", "agent_type": "L3 agent", "host": "net1", "alive": false, "admin_state_up": false, "heartbeat_timestamp": "2026-11-01 00:00:00"}
        ]}"#;
        let o = judge(judge_network_agents, text);
        assert_eq!(o.status, nfvi_harness::Status::Passed, "{}", o.message);
        assert!(
            o.message.contains("1 administratively down"),
            "{}",
            o.message
        );
        let o = judge(
            judge_network_agents,
            &text.replace("\"admin_state_up\": false", "\"admin_state_up\": true"),
        );
        assert_eq!(o.status, nfvi_harness::Status::Failed);
        assert!(
            o.message
                .contains("neutron-l3-agent@net1 (L3 agent) last heartbeat 2026-11-01"),
            "{}",
            o.message
        );
        assert!(
            judge(judge_network_agents, r#"{"agents": []}"#)
                .message
                .contains("no agents")
        );
        assert_eq!(
            judge(judge_network_agents, r#"{"agent": []}"#).status,
            nfvi_harness::Status::Failed
        );
    }

    #[test]
    fn versions_are_read_in_every_discovery_shape() {
        let nova: Value =
            serde_json::from_str(r#"{"versions": [{"id": "v2.1", "status": "CURRENT"}]}"#).unwrap();
        assert_eq!(versions(&nova).len(), 1);
        let keystone: Value = serde_json::from_str(
            r#"{"versions": {"values": [{"id": "v3.14", "status": "stable"}]}}"#,
        )
        .unwrap();
        assert_eq!(versions(&keystone)[0]["id"], "v3.14");
        let single: Value = serde_json::from_str(r#"{"version": {"id": "v3.14"}}"#).unwrap();
        assert_eq!(versions(&single).len(), 1);
        assert!(versions(&Value::Null).is_empty());
    }

    #[test]
    fn endpoint_roots_drop_version_and_project_segments() {
        assert_eq!(
            endpoint_root("http://127.0.0.1:5000/v3"),
            "http://127.0.0.1:5000/"
        );
        assert_eq!(
            endpoint_root("http://10.0.0.1:8774/v2.1"),
            "http://10.0.0.1:8774/"
        );
        assert_eq!(
            endpoint_root("http://10.0.0.1:8776/v3/%(project_id)s"),
            "http://10.0.0.1:8776/"
        );
        assert_eq!(
            endpoint_root("http://10.0.0.1:9696"),
            "http://10.0.0.1:9696/"
        );
        assert_eq!(
            endpoint_root("https://cloud.example/identity/v3/"),
            "https://cloud.example/identity/"
        );
        assert_eq!(
            endpoint_root("http://10.0.0.1:8004/v1/239a3382124847fb89726be70420330c"),
            "http://10.0.0.1:8004/"
        );
    }
}
