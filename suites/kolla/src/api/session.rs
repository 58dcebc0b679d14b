//! The run's Keystone session and the JSON calls every API check makes: a project-scoped
//! token issued once per (auth URL, user, project) and cached in the area's shared state,
//! the request helper whose messages name the URL and what came back, and the authenticated
//! GET that must answer 200 with JSON.

use std::sync::Arc;

use nfvi_harness::Outcome;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::area::KollaShared;
use crate::creds::{Credentials, Secret};
use crate::http;

/// A project-scoped token and the token body (catalog, roles, expiry).
#[derive(Clone)]
pub(crate) struct Session {
    pub(super) token: Secret,
    pub(super) body: Value,
    pub(super) status: u16,
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
pub(super) const CA_HINT: &str =
    "openstack.cacert in the target file, OS_CACERT, or `cacert` in clouds.yaml";

/// Sends a request and reads a JSON body, with messages that name the URL and what came back.
pub(super) async fn json_call(
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
pub(super) async fn session(shared: &KollaShared, creds: &Credentials) -> Result<Session, String> {
    cache_slot(shared, creds)
        .get_or_init(|| async { issue(&http::client(&creds.tls)?, creds).await })
        .await
        .clone()
}

/// A GET with the token that must answer 200 with JSON; anything else fails naming it.
pub(super) async fn authed_json(
    http: &reqwest::Client,
    token: &Secret,
    url: &str,
) -> Result<Value, Outcome> {
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
