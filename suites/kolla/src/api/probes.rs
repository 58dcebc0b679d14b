//! What each kind of API check asks the cloud and how it judges the answers: identity
//! discovery, token issue and validation, the catalog, every endpoint's discovery and list
//! call, one service's API versions, and a service's own state report (judged in `judges`).

use nfvi_harness::{CheckResult, Outcome};

use super::catalog::{catalog_endpoints, discover, endpoint_root, list, service_url, versions};
use super::session::{authed_json, json_call, session};
use super::{Kind, service_api};
use crate::area::KollaShared;
use crate::creds::Credentials;
use crate::http;

/// What a check of `kind` asks the APIs, and its judgement of the answers.
pub(super) async fn run_with(kind: Kind, shared: &KollaShared, creds: &Credentials) -> CheckResult {
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
