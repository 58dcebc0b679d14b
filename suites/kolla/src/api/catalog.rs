//! Reading the catalog and version discovery: an endpoint URL's root, the catalog's
//! endpoints of the chosen interface and region, a service's endpoint (or the skip that says
//! it is not deployed), version discovery at an endpoint, the version entries of a discovery
//! document, and a read-only list call; with the table tests of the pure readers.

use nfvi_harness::Outcome;
use serde_json::Value;

use super::session::json_call;
use crate::creds::{Credentials, Secret};

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
pub(super) async fn discover(http: &reqwest::Client, root: &str) -> Result<(u16, Value), String> {
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
pub(super) async fn list(
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

/// The endpoint of one of `types` on the chosen interface (and region), or the skip that says
/// the service is not deployed and `covers` stays unverified.
pub(super) fn service_url(
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

#[cfg(test)]
mod tests {
    use super::*;

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
