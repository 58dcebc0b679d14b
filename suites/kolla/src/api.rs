//! The OpenStack API sanity checks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nfvi_harness::{BoxFuture, Check, CheckContext, CheckMeta, Need, Outcome, Severity};
use nfvi_reference_model::Area;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::creds::{Credentials, Secret};

/// A project-scoped token and the token body (catalog, roles, expiry).
#[derive(Clone)]
struct Session {
    token: Secret,
    body: Value,
    status: u16,
}

type Cached = Arc<OnceCell<Result<Session, String>>>;

/// One token per (auth URL, user, project) for the whole run: token issue costs a bcrypt
/// round on the server.
fn cache_slot(creds: &Credentials) -> Cached {
    static SESSIONS: Mutex<Option<HashMap<String, Cached>>> = Mutex::new(None);
    let key = format!("{}|{}|{}", creds.auth_url, creds.username, creds.project);
    let mut map = SESSIONS.lock().expect("session cache poisoned");
    map.get_or_insert_with(HashMap::new)
        .entry(key)
        .or_default()
        .clone()
}

fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        // uWSGI's http-socket (Keystone under Kolla and in the lab) closes every connection
        // after one response; a pooled connection would fail on reuse.
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

/// Sends a request and reads a JSON body, with messages that name the URL and what came back.
async fn json_call(
    req: reqwest::RequestBuilder,
    url: &str,
) -> Result<(u16, reqwest::header::HeaderMap, Value), String> {
    let resp = req
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                format!("{url} did not answer within 10 s")
            } else {
                format!("cannot reach {url}: {e}")
            }
        })?;
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
            nfvi_harness::truncate_chars(text.trim(), 120)
        )
    })?;
    Ok((status, headers, body))
}

async fn session(creds: &Credentials) -> Result<Session, String> {
    cache_slot(creds)
        .get_or_init(|| async {
            let url = format!("{}/auth/tokens", creds.auth_url);
            let body = json!({"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": creds.username, "domain": {"name": creds.user_domain}, "password": creds.password.expose()}}},
                "scope": {"project": {"name": creds.project, "domain": {"name": creds.project_domain}}}}});
            let (status, headers, body) = json_call(client()?.post(&url).json(&body), &url).await?;
            if status == 401 {
                return Err(format!(
                    "POST {url} answered 401: Keystone rejected the credentials of user `{}` from {} (wrong password?)",
                    creds.username, creds.source
                ));
            }
            if status != 201 {
                return Err(format!("POST {url} answered {status}, expected 201 with a token: {}", nfvi_harness::truncate_chars(&body.to_string(), 200)));
            }
            let token = headers
                .get("x-subject-token")
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| format!("POST {url} answered 201 without an X-Subject-Token header"))?;
            Ok(Session { token: crate::creds::secret(token), body, status })
        })
        .await
        .clone()
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Discovery,
    TokenIssue,
    TokenValidate,
    Catalog,
    Endpoints,
}

struct ApiCheck {
    meta: CheckMeta,
    kind: Kind,
}

/// Every OpenStack API check.
pub fn checks() -> Vec<Arc<dyn Check>> {
    let mk = |id: &str, title: &str, covers: &[&str], kind: Kind| -> Arc<dyn Check> {
        Arc::new(ApiCheck {
            meta: CheckMeta::new(id, Area::Kolla, title)
                .subject("openstack-api")
                .covers(Severity::Must, covers)
                .needs([Need::OpenStackCloud])
                .side_effects(
                    "issues one project-scoped token (read-only API calls otherwise); the token expires on its own",
                    "none needed",
                )
                .timeout(Duration::from_secs(60)),
            kind,
        })
    };
    vec![
        mk(
            "kolla.api.identity-discovery",
            "Identity v3 version discovery: the stable v3 version and the version list",
            &["gen.ost.01", "int.api.01@ra1", "int.api.10@ra1"],
            Kind::Discovery,
        ),
        mk(
            "kolla.api.token-issue",
            "A password token scoped to the project is issued (201, X-Subject-Token, catalog, roles)",
            &["int.api.01@ra1"],
            Kind::TokenIssue,
        ),
        mk(
            "kolla.api.token-validate",
            "The token validates (GET /v3/auth/tokens)",
            &["int.api.01@ra1"],
            Kind::TokenValidate,
        ),
        mk(
            "kolla.api.catalog",
            "The service catalog is not empty and lists identity on the chosen interface",
            &["gen.ost.01"],
            Kind::Catalog,
        ),
        mk(
            "kolla.api.endpoints",
            "Every catalog endpoint answers version discovery and a read-only list call",
            &["gen.ost.01", "int.api.10@ra1"],
            Kind::Endpoints,
        ),
    ]
}

impl Check for ApiCheck {
    fn meta(&self) -> &CheckMeta {
        &self.meta
    }

    fn run<'a>(&'a self, cx: &'a CheckContext) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let creds = match Credentials::discover(&cx.target().openstack) {
                Ok(c) => c,
                Err(e) => return Outcome::error(e),
            };
            match self.run_with(&creds).await {
                Ok(o) => o
                    .with_property("credentials from", &creds.source)
                    .with_property("kolla stage", "post-deploy (API smoke tests on its openrc)")
                    .with_property("auth url", &creds.auth_url),
                Err(o) => o
                    .with_property("credentials from", &creds.source)
                    .with_property("kolla stage", "post-deploy (API smoke tests on its openrc)")
                    .with_property("auth url", &creds.auth_url),
            }
        })
    }
}

/// An endpoint URL's root (what version discovery answers at): scheme, host, port and any
/// path before the version segment.
fn endpoint_root(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let mut parts: Vec<&str> = rest.split('/').collect();
    while let Some(last) = parts.last() {
        let versioned =
            last.starts_with('v') && last[1..].chars().next().is_some_and(|c| c.is_ascii_digit());
        if parts.len() > 1 && (versioned || last.is_empty() || last.contains("project_id")) {
            parts.pop();
        } else {
            break;
        }
    }
    format!("{scheme}://{}/", parts.join("/"))
}

/// The read-only list call for a service type, relative to its catalog URL.
fn list_call(service_type: &str) -> Option<(&'static str, &'static str)> {
    Some(match service_type {
        "identity" => ("/projects", "projects"),
        "compute" => ("/flavors", "flavors"),
        "network" => ("/v2.0/networks", "networks"),
        "image" => ("/v2/images", "images"),
        "placement" => ("/resource_providers", "resource_providers"),
        "block-storage" | "volumev3" => ("/volumes", "volumes"),
        _ => return None,
    })
}

impl ApiCheck {
    async fn run_with(&self, creds: &Credentials) -> Result<Outcome, Outcome> {
        let http = client().map_err(Outcome::error)?;
        // An unreachable identity service leaves the question open (error); a rejection or a
        // malformed answer is the NFVI's (failure).
        let session = || async {
            session(creds).await.map_err(|e| {
                if e.starts_with("cannot reach") || e.contains("did not answer") {
                    Outcome::error(e)
                } else {
                    Outcome::fail(e)
                }
            })
        };
        match self.kind {
            Kind::Discovery => {
                let (status, _, body) = json_call(http.get(&creds.auth_url), &creds.auth_url)
                    .await
                    .map_err(Outcome::error)?;
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
                let (rs, _, rb) = json_call(http.get(&root), &root)
                    .await
                    .map_err(Outcome::error)?;
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
                let (status, _, body) = json_call(req, &url).await.map_err(Outcome::error)?;
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
                let mut o = Outcome::pass("");
                let mut problems = Vec::new();
                let mut checked = 0;
                for svc in s.body["token"]["catalog"].as_array().into_iter().flatten() {
                    let ty = svc["type"].as_str().unwrap_or("?");
                    for ep in svc["endpoints"].as_array().into_iter().flatten() {
                        if ep["interface"] != creds.interface.as_str()
                            || creds
                                .region
                                .as_deref()
                                .is_some_and(|r| ep["region_id"] != r)
                        {
                            continue;
                        }
                        let url = ep["url"]
                            .as_str()
                            .unwrap_or("")
                            .replace("$(project_id)s", "")
                            .replace("%(project_id)s", "");
                        let url = url.trim_end_matches('/').to_owned();
                        checked += 1;
                        let root = endpoint_root(&url);
                        match json_call(http.get(&root), &root).await {
                            Ok((st, _, b))
                                if (st == 200 || st == 300)
                                    && (b.get("version").is_some()
                                        || b.get("versions").is_some()) =>
                            {
                                o = o.with_property(
                                    format!("{ty} discovery"),
                                    format!("{root} -> {st}"),
                                );
                            }
                            Ok((st, _, _)) => problems.push(format!(
                                "{ty}: GET {root} answered {st} without a version document"
                            )),
                            Err(e) => problems.push(format!("{ty}: {e}")),
                        }
                        if let Some((path, key)) = list_call(ty) {
                            let list = format!("{url}{path}");
                            match json_call(
                                http.get(&list).header("X-Auth-Token", s.token.expose()),
                                &list,
                            )
                            .await
                            {
                                Ok((200, _, b)) if b.get(key).is_some() => {
                                    o = o.with_property(
                                        format!("{ty} list"),
                                        format!(
                                            "GET {list} -> 200, {} {key}",
                                            b[key].as_array().map_or(0, Vec::len)
                                        ),
                                    );
                                }
                                Ok((st, _, _)) => problems.push(format!(
                                    "{ty}: GET {list} answered {st}, expected 200 with `{key}`"
                                )),
                                Err(e) => problems.push(format!("{ty}: {e}")),
                            }
                        }
                    }
                }
                if checked == 0 {
                    return Ok(Outcome::fail(format!(
                        "no catalog endpoint on interface `{}`",
                        creds.interface
                    )));
                }
                if problems.is_empty() {
                    o.message = format!(
                        "{checked} endpoint(s) answered version discovery and their list call"
                    );
                    Ok(o)
                } else {
                    let mut f = Outcome::fail(problems.join("; "));
                    f.evidence = o.evidence;
                    Ok(f)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::endpoint_root;

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
    }
}
