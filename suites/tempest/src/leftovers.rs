//! What Tempest's dynamic credentials leave in Keystone when a run is stopped before its
//! classes tear down (Ctrl-C, the deadline): `tempest-<Class>-<number>` projects and their
//! users. The names present before the run are noted; after it, those that appeared during
//! it are deleted, and the evidence says which.

use nfvi_suite_kolla::Secret;
use serde_json::Value;

/// Whether a Keystone project or user name is one Tempest's dynamic credentials make:
/// `tempest-<Class>-<digits>`, for a user followed by `-project-<role>` or `-<role>`.
pub fn tempest_made(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("tempest-") else {
        return false;
    };
    let mut parts = rest.split('-');
    let class = parts.next().unwrap_or("");
    let number = parts.next().unwrap_or("");
    !class.is_empty()
        && class.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit())
        && parts.all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

/// The `tempest-*` projects and users of Keystone, as (kind, id, name).
pub async fn list(
    http: &reqwest::Client,
    token: &Secret,
    base: &str,
) -> Result<Vec<(&'static str, String, String)>, String> {
    let mut out = Vec::new();
    for kind in ["projects", "users"] {
        let url = format!("{base}/{kind}");
        let resp = http
            .get(&url)
            .header("X-Auth-Token", token.expose())
            .send()
            .await
            .map_err(|e| format!("GET {url}: {}", nfvi_harness::error_with_causes(&e)))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("GET {url} answered {status}"));
        }
        let v: Value = resp.json().await.map_err(|e| format!("GET {url}: {e}"))?;
        for x in v[kind].as_array().into_iter().flatten() {
            let (Some(id), Some(name)) = (x["id"].as_str(), x["name"].as_str()) else {
                continue;
            };
            if tempest_made(name) {
                out.push((kind, id.to_owned(), name.to_owned()));
            }
        }
    }
    Ok(out)
}

/// Deletes those of `now` that `before` did not hold (users first); returns the names
/// deleted and the deletions that failed.
pub async fn remove_new(
    http: &reqwest::Client,
    token: &Secret,
    base: &str,
    before: &[(&'static str, String, String)],
    now: &[(&'static str, String, String)],
) -> (Vec<String>, Vec<String>) {
    let (mut removed, mut failed) = (Vec::new(), Vec::new());
    let mut new: Vec<&(&str, String, String)> = now
        .iter()
        .filter(|x| !before.iter().any(|b| b.1 == x.1))
        .collect();
    new.sort_by_key(|x| x.0 != "users");
    for (kind, id, name) in new {
        let url = format!("{base}/{kind}/{id}");
        match http
            .delete(&url)
            .header("X-Auth-Token", token.expose())
            .send()
            .await
        {
            Ok(r) if r.status().is_success() || r.status().as_u16() == 404 => {
                removed.push(format!("{} {name}", kind.trim_end_matches('s')));
            }
            Ok(r) => failed.push(format!("DELETE {url} ({name}) answered {}", r.status())),
            Err(e) => failed.push(format!(
                "DELETE {url} ({name}): {}",
                nfvi_harness::error_with_causes(&e)
            )),
        }
    }
    (removed, failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_names_dynamic_credentials_make_are_tempests() {
        for n in [
            "tempest-EndPointsTestJSON-941276058",
            "tempest-EndPointsTestJSON-941276058-project-admin",
            "tempest-DomainsTestJSON-859768487-project-member",
            "tempest-TestNetworkBasicOps-1",
        ] {
            assert!(tempest_made(n), "{n}");
        }
        for n in [
            "admin",
            "tempest",
            "tempest-",
            "tempest-ci-project",
            "tempest-Class-",
            "tempest-Class-12a",
            "tempest-Class-1--x",
            "my-tempest-Class-1",
        ] {
            assert!(!tempest_made(n), "{n}");
        }
    }
}
