//! The image registry checks (Kolla's `docker_registry`): the Docker Registry HTTP API v2
//! answers, and every image the expected containers need is there at the deployment's tag.
//! Read-only: `GET /v2/` and `HEAD` on manifests.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use nfvi_harness::{
    Check, CheckContext, CheckError, CheckMeta, CheckResult, Outcome, Severity, declare,
};
use nfvi_reference_model::Area;

use crate::KollaConfig as KollaTarget;

use crate::creds::Secret;
use crate::http;
use crate::services;

pub(crate) mod challenge;

/// Which question a check asks the registry: both share its client and authorisation.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Api,
    Images,
}

/// The metadata both registry checks share. `#[track_caller]`, so the check's own line is
/// its declaration site.
#[track_caller]
fn meta(id: &str, title: &str) -> CheckMeta {
    CheckMeta::new(id, Area::Kolla, title)
        .subject("kolla-registry")
        .covers(Severity::Should, &["gen.ost.01"])
        .read_only("none: read-only registry API calls")
        .timeout(Duration::from_secs(60))
}

/// Both registry checks.
pub fn checks() -> Vec<Arc<dyn Check>> {
    vec![
        declare(
            meta(
                "kolla.registry.api",
                "The image registry answers the Docker Registry HTTP API v2",
            ),
            |cx| Box::pin(run(Kind::Api, cx)),
        )
        .into_check(),
        declare(
            meta(
                "kolla.registry.images",
                "Every image the expected containers need is in the registry at the deployment's tag",
            ),
            |cx| Box::pin(run(Kind::Images, cx)),
        )
        .into_check(),
    ]
}

/// Where a user gives the registry's CA bundle, for TLS messages.
const CA_HINT: &str = "kolla.registry_cacert in the target file";

/// The manifest media types a registry may hold for an image.
const MANIFEST_TYPES: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/// Credentials for a registry that asks for them.
struct Login {
    user: String,
    password: Secret,
    source: String,
}

/// `kolla.registry_username` with `NFVI_REGISTRY_PASSWORD`, else the registry's `auths`
/// entry in Docker's config.json (`$DOCKER_CONFIG/config.json`, `~/.docker/config.json`).
fn login(k: &KollaTarget, host: &str) -> Result<Option<Login>, String> {
    let password = std::env::var("NFVI_REGISTRY_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty());
    match (&k.registry_username, password) {
        (Some(user), Some(p)) => {
            return Ok(Some(Login {
                user: user.clone(),
                password: crate::creds::secret(&p),
                source: "kolla.registry_username and NFVI_REGISTRY_PASSWORD".to_owned(),
            }));
        }
        (Some(user), None) => {
            return Err(format!(
                "kolla.registry_username is `{user}` but NFVI_REGISTRY_PASSWORD is not set"
            ));
        }
        (None, _) => {}
    }
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".docker")));
    let Some(path) = dir.map(|d| d.join("config.json")) else {
        return Ok(None);
    };
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let shown = path.display();
    let config: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("{shown}:{}:{}: not JSON: {e}", e.line(), e.column()))?;
    let auths = config["auths"].as_object();
    let entry = auths.and_then(|a| {
        a.iter()
            .find(|(key, _)| {
                key.trim_start_matches("https://")
                    .trim_start_matches("http://")
                    .trim_end_matches('/')
                    == host
            })
            .map(|(_, v)| v)
    });
    let Some(auth) = entry.and_then(|e| e["auth"].as_str()) else {
        return Ok(None);
    };
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            format!("{shown}: the `auths` entry for {host} is not base64 of user:password")
        })?;
    let (user, password) = decoded
        .split_once(':')
        .ok_or_else(|| format!("{shown}: the `auths` entry for {host} is not user:password"))?;
    Ok(Some(Login {
        user: user.to_owned(),
        password: crate::creds::secret(password),
        source: format!("the `auths` entry for {host} in {shown}"),
    }))
}

/// The challenge of a `WWW-Authenticate` header to answer: the first Bearer or Basic one
/// (a registry may offer several), else the first, whose scheme is then refused.
fn challenge(header: &str) -> Result<challenge::Challenge, String> {
    let all = challenge::parse(header)?;
    let pick = all
        .iter()
        .position(|c| c.scheme == "bearer" || c.scheme == "basic")
        .unwrap_or(0);
    all.into_iter()
        .nth(pick)
        .ok_or_else(|| "no challenge".to_owned())
}

/// How requests to the registry are authorised, and its final answer to `GET /v2/`.
struct Access {
    /// The `Authorization` header to send (`None`: none is needed).
    header: Option<String>,
    /// Who is logged in and from where, for the evidence.
    who: Option<String>,
    /// The status of the last `GET /v2/` (with the header, when there is one).
    status: u16,
    /// Its `Docker-Distribution-API-Version`.
    api_version: String,
}

fn api_version(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("docker-distribution-api-version")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// Asks `GET /v2/` as the Docker Registry API v2 prescribes: a 401 names Basic or Bearer
/// (token service) authentication, which is then done and the call repeated with it.
/// `scopes` are the repositories a Bearer token must cover.
async fn authorise(
    http: &reqwest::Client,
    base: &str,
    k: &KollaTarget,
    scopes: &[String],
) -> Result<Access, Outcome> {
    let url = format!("{base}/v2/");
    let resp = http
        .get(&url)
        .send()
        .await
        .map_err(|e| Outcome::error(http::describe(&e, &url, CA_HINT)))?;
    if resp.status().as_u16() != 401 {
        return Ok(Access {
            header: None,
            who: None,
            status: resp.status().as_u16(),
            api_version: api_version(&resp),
        });
    }
    let www = resp
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let host = base
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let Some(login) = login(k, host).map_err(Outcome::error)? else {
        return Err(Outcome::error(format!(
            "GET {url} answered 401 (WWW-Authenticate: {www}): the registry wants credentials; set kolla.registry_username and NFVI_REGISTRY_PASSWORD, or `docker login {host}`"
        )));
    };
    let challenge = challenge(&www).map_err(|e| {
        Outcome::fail(format!(
            "GET {url} answered 401 with a malformed WWW-Authenticate `{www}`: {e}"
        ))
    })?;
    let scheme = challenge.scheme.clone();
    let param = |k: &str| challenge.param(k).map(str::to_owned);
    let header = match scheme.as_str() {
        "basic" => {
            use base64::Engine;
            let raw = format!("{}:{}", login.user, login.password.expose());
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            )
        }
        "bearer" => {
            let realm = param("realm").ok_or_else(|| {
                Outcome::fail(format!(
                    "GET {url}: a Bearer challenge without a realm: {www}"
                ))
            })?;
            let mut token_url = reqwest::Url::parse(&realm).map_err(|e| {
                Outcome::fail(format!(
                    "GET {url}: the Bearer realm `{realm}` is not a URL: {e}"
                ))
            })?;
            {
                let mut q = token_url.query_pairs_mut();
                if let Some(service) = param("service") {
                    q.append_pair("service", &service);
                }
                for scope in scopes {
                    q.append_pair("scope", scope);
                }
            }
            let resp = http
                .get(token_url)
                .basic_auth(&login.user, Some(login.password.expose()))
                .send()
                .await
                .map_err(|e| Outcome::error(http::describe(&e, &realm, CA_HINT)))?;
            if resp.status().as_u16() == 401 {
                return Err(Outcome::fail(format!(
                    "the token service {realm} rejected the credentials of user `{}` from {}",
                    login.user, login.source
                )));
            }
            let body: serde_json::Value = resp.json().await.map_err(|e| {
                Outcome::fail(format!(
                    "the token service {realm} did not answer JSON: {e}"
                ))
            })?;
            let token = body["token"]
                .as_str()
                .or(body["access_token"].as_str())
                .ok_or_else(|| {
                    Outcome::fail(format!(
                        "the token service {realm} answered without a token"
                    ))
                })?;
            format!("Bearer {token}")
        }
        other => {
            return Err(Outcome::fail(format!(
                "GET {url} asks for `{other}` authentication; registries use Basic or Bearer"
            )));
        }
    };
    let check = http
        .get(&url)
        .header("Authorization", &header)
        .send()
        .await
        .map_err(|e| Outcome::error(http::describe(&e, &url, CA_HINT)))?;
    if check.status().as_u16() == 401 {
        return Err(Outcome::fail(format!(
            "GET {url} answered 401: the registry rejected the credentials of user `{}` from {} (wrong password?)",
            login.user, login.source
        )));
    }
    Ok(Access {
        header: Some(header),
        who: Some(format!("{} ({scheme}), from {}", login.user, login.source)),
        status: check.status().as_u16(),
        api_version: api_version(&check),
    })
}

/// Runs a registry check; the Kolla stage goes on every outcome, a skip or an early error
/// too.
async fn run(kind: Kind, cx: &CheckContext) -> CheckResult {
    let stage = |o: Outcome| o.with_stage("prechecks and pull (images the deploy needs)");
    judge(kind, cx)
        .await
        .map(stage)
        .map_err(|CheckError(o)| stage(o).into())
}

async fn judge(kind: Kind, cx: &CheckContext) -> CheckResult {
    let k = cx.target().config::<KollaTarget>();
    let Some(registry) = &k.registry else {
        return Ok(Outcome::not_applicable(
            "no registry configured (kolla.registry is empty)",
        ));
    };
    let base = registry.trim_end_matches('/');
    let tls = http::Tls {
        cacert: k.registry_cacert.clone(),
        insecure: false,
    };
    let http = http::client(&tls)?;
    // A registry that cannot be reached or logged into is named in the outcome.
    let at_registry = |o: Outcome| o.with_property("registry", base);
    match kind {
        Kind::Api => {
            let url = format!("{base}/v2/");
            let access = authorise(&http, base, k, &[]).await.map_err(at_registry)?;
            let (status, api) = (access.status, &access.api_version);
            let o = Outcome::pass_if(
                status == 200 && api.starts_with("registry/2"),
                format!("GET {url} answered 200, API {api}"),
                format!(
                    "GET {url} answered {status} with Docker-Distribution-API-Version `{api}`; expected 200 and registry/2.0"
                ),
            );
            Ok(o.with_property("registry", base)
                .with_property(
                    "authenticated as",
                    access.who.as_deref().unwrap_or("(anonymous)"),
                )
                .with_property("TLS", tls.describe()))
        }
        Kind::Images => {
            let expected = services::expected(&k.release, &k.containers)?;
            let images: BTreeSet<&str> = expected
                .iter()
                .filter_map(|e| e.service.map(|s| s.image))
                .collect();
            if images.is_empty() {
                // "All 0 images present" would pass on nothing asked.
                return Ok(Outcome::not_applicable(format!(
                    "none of the {} expected containers maps to a known Kolla image, so no image was looked up",
                    expected.len()
                )));
            }
            let scopes: Vec<String> = images
                .iter()
                .map(|i| format!("repository:{}/{i}:pull", k.image_namespace))
                .collect();
            let auth = authorise(&http, base, k, &scopes)
                .await
                .map_err(at_registry)?
                .header;
            let calls = images.iter().map(|image| {
                let url = format!(
                    "{base}/v2/{}/{image}/manifests/{}",
                    k.image_namespace, k.image_tag
                );
                let mut req = http.head(&url).header("Accept", MANIFEST_TYPES);
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                async move {
                    let r = req.send().await;
                    (*image, url, r)
                }
            });
            let mut missing = Vec::new();
            for (image, url, r) in futures_util::future::join_all(calls).await {
                let r = r.map_err(|e| http::describe(&e, &url, CA_HINT))?;
                match r.status().as_u16() {
                    200 => {}
                    404 => missing.push(image),
                    _ => {
                        return Err(format!(
                            "HEAD {url} answered {}; expected 200 or 404",
                            r.status()
                        )
                        .into());
                    }
                }
            }
            let reference = format!("{base}/{}/<image>:{}", k.image_namespace, k.image_tag);
            let o = Outcome::pass_if(
                missing.is_empty(),
                format!("all {} images are present as {reference}", images.len()),
                format!(
                    "{} of {} images are not in the registry as {reference}: {}",
                    missing.len(),
                    images.len(),
                    missing.join(", ")
                ),
            );
            Ok(o.with_property("registry", base)
                .with_property("images", images.into_iter().collect::<Vec<_>>().join(", ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_answered_keeps_a_quoted_scope_whole() {
        let c = challenge(
            r#"Bearer realm="https://r/token",service="registry",scope="repository:x:pull,push""#,
        )
        .expect("a Docker registry's challenge");
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.param("realm"), Some("https://r/token"));
        assert_eq!(c.param("service"), Some("registry"));
        assert_eq!(c.param("scope"), Some("repository:x:pull,push"));
        let c = challenge(r#"Negotiate, Basic realm="a, b""#).expect("two challenges");
        assert_eq!(
            (c.scheme.as_str(), c.param("realm")),
            ("basic", Some("a, b"))
        );
        let c = challenge("Digest realm=\"x\", nonce=\"y\"").expect("unsupported scheme");
        assert_eq!(c.scheme, "digest");
        for bad in ["", r#"Bearer realm="unclosed"#, "Bearer realm=\"r\" junk"] {
            assert!(challenge(bad).is_err(), "{bad}");
        }
    }
}
