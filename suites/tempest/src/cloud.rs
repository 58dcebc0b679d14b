//! What the cloud offers Tempest, observed before Tempest starts: a token for the credentials
//! (a refused password ends everything in a second, naming the user and the HTTP status),
//! the catalog, and for every service in it whether it is a real OpenStack API. A real one
//! is behind keystonemiddleware and answers 401 to a request for a protected resource without
//! a token. Only the lab's stand-ins (lab/src/apis.rs) are left out without an error, and only
//! by their explicit mark (the `X-Nfvi-Lab-Stand-In` header, or the document
//! `/nfvi-lab-stand-in` naming what they stand in for); any other answer (refused, timed
//! out, 5xx, 200 without a token) leaves the service unverified: its check is an error
//! naming the URL and the answer, never a skip.

use std::time::Duration;

use nfvi_suite_kolla::Credentials;

use crate::services::{SERVICES, Service};

/// The header a lab stand-in may send, naming what it stands in for.
pub const STAND_IN_HEADER: &str = "x-nfvi-lab-stand-in";

/// The document each lab stand-in serves at its root: `{"nfvi_lab_stand_in": "compute"}`.
pub const STAND_IN_PATH: &str = "/nfvi-lab-stand-in";

/// How one service stands before Tempest runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Offer {
    /// Tempest is told about it.
    Tested {
        /// The catalog type it was found under (`volumev3`), or `dashboard`.
        catalog_type: String,
        /// The endpoint probed.
        url: String,
        /// What the probe saw (`401 with WWW-Authenticate: Keystone ...`).
        seen: String,
    },
    /// Not tested, rightly; why (absent from the catalog, the lab's stand-in, skipped by the
    /// target).
    NotTested(String),
    /// In the catalog, but it could not be verified to be an OpenStack API, or the target
    /// lacks what its tests need: the check is an error saying why.
    Unverified(String),
}

impl Offer {
    /// Whether Tempest tests it.
    pub fn tested(&self) -> bool {
        matches!(self, Offer::Tested { .. })
    }
}

/// What a stand-in's mark names, from the probe's header or the mark document (its status
/// and body); `None`: no mark, so no stand-in.
pub fn stand_in_mark(header: Option<&str>, document: Option<(u16, &str)>) -> Option<String> {
    let plain = |s: &str| {
        let s = s.trim();
        (!s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .then(|| s.to_owned())
    };
    if let Some(h) = header.and_then(plain) {
        return Some(h);
    }
    let (200, body) = document? else { return None };
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v.get("nfvi_lab_stand_in")?.as_str().and_then(plain)
}

/// How a probe judges an endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// A token-validating OpenStack API: what was seen.
    Api(String),
    /// The lab's stand-in: why it is not tested.
    StandIn(String),
    /// Neither: what was seen, for the check's error.
    Unverified(String),
}

/// Judges the probe of a protected resource without a token: 401 is an OpenStack API; the
/// lab's mark a stand-in; anything else unverified, naming the URL and the answer.
pub fn judge_probe(
    url: &str,
    status: Result<u16, String>,
    www_authenticate: Option<&str>,
    mark: Option<String>,
) -> Probe {
    match (status, mark) {
        (Ok(401), _) => Probe::Api(match www_authenticate {
            Some(w) => format!("GET {url} without a token answered 401 (WWW-Authenticate: {w})"),
            None => format!("GET {url} without a token answered 401"),
        }),
        (_, Some(what)) => Probe::StandIn(format!(
            "the lab's stand-in for {what}, not an OpenStack API (its endpoint carries the lab's stand-in mark)"
        )),
        (Err(e), None) => Probe::Unverified(format!(
            "GET {url} without a token got no answer ({e}): it could not be verified as an OpenStack API"
        )),
        (Ok(code), None) => Probe::Unverified(format!(
            "GET {url} without a token answered {code}, not 401 (an OpenStack API behind keystonemiddleware answers 401): it could not be verified as an OpenStack API"
        )),
    }
}

/// Judges a dashboard login page: Horizon (Django) sets a `csrftoken` cookie on it, which
/// Tempest's dashboard test needs to log in; the lab's stand-in carries its mark; anything
/// else is unverified.
pub fn judge_dashboard(
    url: &str,
    status: Result<u16, String>,
    cookies: &[String],
    mark: Option<String>,
) -> Probe {
    let csrf = cookies
        .iter()
        .any(|c| c.trim_start().starts_with("csrftoken="));
    match (status, mark) {
        (Ok(200), _) if csrf => Probe::Api(format!(
            "GET {url} answered 200 and set Django's csrftoken cookie"
        )),
        (_, Some(what)) => Probe::StandIn(format!(
            "the lab's stand-in for {what}, not Horizon (its site carries the lab's stand-in mark)"
        )),
        (Err(e), None) => Probe::Unverified(format!(
            "the dashboard {url} did not answer ({e}): it could not be verified as Horizon"
        )),
        (Ok(200), None) => Probe::Unverified(format!(
            "GET {url} answered 200 but set no csrftoken cookie: it could not be verified as a Horizon Tempest can log in to"
        )),
        (Ok(code), None) => Probe::Unverified(format!(
            "GET {url} answered {code}, not Horizon's login page: it could not be verified as Horizon"
        )),
    }
}

/// The offers once the target's settings are applied: a tested service whose tests need a
/// `[tempest]` key that is unset (`missing`) is unverified naming the key; a part of other
/// services (`within`) is tested only when each of them is, and otherwise says why.
pub fn settle(offers: &mut [(&'static Service, Offer)], missing: &dyn Fn(&str) -> bool) {
    let unset = |o: &mut Offer, s: &Service| {
        if o.tested()
            && let Some(k) = s.needs_keys.iter().find(|k| missing(k))
        {
            *o = Offer::Unverified(format!(
                "tempest.{k} is not set: {}'s tests need it (set it in the [tempest] table, or name {} in tempest.skip_services); Tempest is not told about it",
                s.name, s.name
            ));
        }
    };
    // The services of the catalog first; their parts once the wholes are settled.
    for (s, o) in offers.iter_mut().filter(|(s, _)| s.within.is_empty()) {
        unset(o, s);
    }
    let before: Vec<(&str, Offer)> = offers.iter().map(|(s, o)| (s.name, o.clone())).collect();
    for (s, o) in offers.iter_mut() {
        if !o.tested() {
            continue;
        }
        for w in s.within {
            match before.iter().find(|(n, _)| n == w).map(|(_, o)| o) {
                Some(Offer::Tested { .. }) => continue,
                Some(Offer::NotTested(why)) => {
                    *o = Offer::NotTested(format!("{w} is not tested: {why}"));
                }
                Some(Offer::Unverified(why)) => *o = Offer::Unverified(format!("{w}: {why}")),
                None => *o = Offer::Unverified(format!("{w} was not looked at (a defect)")),
            }
            break;
        }
        unset(o, s);
    }
}

/// The first catalog endpoint of any of `types`, as (type, URL).
pub fn find<'a>(endpoints: &'a [(String, String)], types: &[&str]) -> Option<&'a (String, String)> {
    types
        .iter()
        .find_map(|t| endpoints.iter().find(|(ty, _)| ty == t))
}

/// A token for the credentials (the fast check of the password), then every service's offer.
pub async fn observe(
    creds: &Credentials,
    dashboard_url: Option<&str>,
    skip: &[String],
) -> Result<(Vec<(&'static Service, Offer)>, Keystone), String> {
    let (http, token, body) = nfvi_suite_kolla::project_session(creds)
        .await
        .map_err(|e| {
            if e.contains("answered 401") {
                format!(
                    "Keystone refused the credentials for user {} (from {}): HTTP 401 to POST {}/auth/tokens; Tempest was not started",
                    creds.username, creds.source, creds.auth_url
                )
            } else {
                e
            }
        })?;
    let endpoints = nfvi_suite_kolla::catalog_endpoints(&body, creds);
    let mut out = Vec::new();
    for s in SERVICES {
        let offer = if skip.iter().any(|k| k == s.name) {
            Offer::NotTested(format!(
                "tempest.skip_services names {}: Tempest is not told about it",
                s.name
            ))
        } else if !s.within.is_empty() {
            // A part of other services: settled by `settle` from theirs.
            Offer::Tested {
                catalog_type: String::new(),
                url: String::new(),
                seen: format!("its tests run against {}", s.within.join(" and ")),
            }
        } else if s.name == "dashboard" {
            match dashboard_url {
                None => Offer::NotTested(
                    "no dashboard: openstack.dashboard_url is not set (an edge cloud without Horizon)"
                        .to_owned(),
                ),
                Some(base) => {
                    let url = format!("{}/{}", base.trim_end_matches('/'), s.probe_path);
                    let (status, cookies, header) = match get(&http, &url).await {
                        Ok(r) => (
                            Ok(r.status().as_u16()),
                            r.headers()
                                .get_all("set-cookie")
                                .iter()
                                .filter_map(|v| v.to_str().ok().map(str::to_owned))
                                .collect(),
                            header_of(&r),
                        ),
                        Err(e) => (Err(e), Vec::new(), None),
                    };
                    let mark = mark_of(&http, &url, header).await;
                    match judge_dashboard(&url, status, &cookies, mark) {
                        Probe::Api(seen) => Offer::Tested {
                            catalog_type: "dashboard".to_owned(),
                            url: base.to_owned(),
                            seen,
                        },
                        Probe::StandIn(why) => Offer::NotTested(why),
                        Probe::Unverified(why) => Offer::Unverified(why),
                    }
                }
            }
        } else {
            match find(&endpoints, s.catalog_types) {
                None => Offer::NotTested(format!(
                    "Keystone's catalog has no {} endpoint on the {} interface",
                    s.catalog_types.join(" or "),
                    creds.interface
                )),
                Some((ty, url)) if s.name == "identity" => Offer::Tested {
                    catalog_type: ty.clone(),
                    url: url.clone(),
                    seen: "Keystone issued a project-scoped token for the credentials".to_owned(),
                },
                Some((ty, url)) => {
                    let probe = format!("{url}{}", s.probe_path);
                    let (status, www, header) = match get(&http, &probe).await {
                        Ok(r) => (
                            Ok(r.status().as_u16()),
                            r.headers()
                                .get("www-authenticate")
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_owned),
                            header_of(&r),
                        ),
                        Err(e) => (Err(e), None, None),
                    };
                    let mark = if status == Ok(401) {
                        None
                    } else {
                        mark_of(&http, &probe, header).await
                    };
                    match judge_probe(&probe, status, www.as_deref(), mark) {
                        Probe::Api(seen) => Offer::Tested {
                            catalog_type: ty.clone(),
                            url: url.clone(),
                            seen,
                        },
                        Probe::StandIn(why) => {
                            Offer::NotTested(format!("the catalog's {ty} endpoint {url} is {why}"))
                        }
                        Probe::Unverified(why) => {
                            Offer::Unverified(format!("the catalog's {ty} endpoint {url}: {why}"))
                        }
                    }
                }
            }
        };
        out.push((s, offer));
    }
    Ok((
        out,
        Keystone {
            http,
            token,
            base: creds.auth_url.clone(),
        },
    ))
}

/// GET under a 15 s deadline.
async fn get(http: &reqwest::Client, url: &str) -> Result<reqwest::Response, String> {
    match tokio::time::timeout(Duration::from_secs(15), http.get(url).send()).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(nfvi_harness::error_with_causes(&e)),
        Err(_) => Err("no answer within 15 s".to_owned()),
    }
}

fn header_of(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get(STAND_IN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The stand-in mark of the site `url` is on: its header, else its mark document.
async fn mark_of(http: &reqwest::Client, url: &str, header: Option<String>) -> Option<String> {
    if let Some(m) = stand_in_mark(header.as_deref(), None) {
        return Some(m);
    }
    let doc = reqwest::Url::parse(url).ok()?.join(STAND_IN_PATH).ok()?;
    let r = get(http, doc.as_str()).await.ok()?;
    let status = r.status().as_u16();
    let body = tokio::time::timeout(Duration::from_secs(15), r.text())
        .await
        .ok()?
        .ok()?;
    stand_in_mark(None, Some((status, &body)))
}

/// A client and a project-scoped token for Keystone's own API.
pub struct Keystone {
    /// The client (the credentials' TLS settings).
    pub http: reqwest::Client,
    /// The token.
    pub token: nfvi_suite_kolla::Secret,
    /// Keystone's v3 URL.
    pub base: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_token_validating_api_is_tested_only_a_marked_stand_in_is_skipped() {
        let u = "http://127.0.0.1:9292/v2/images";
        let Probe::Api(real) = judge_probe(u, Ok(401), Some("Keystone uri=\"http://k/v3\""), None)
        else {
            panic!("401 is an OpenStack API")
        };
        assert!(
            real.contains("401") && real.contains("Keystone uri"),
            "{real}"
        );
        assert_eq!(
            judge_probe(u, Ok(404), None, Some("compute".into())),
            Probe::StandIn(
                "the lab's stand-in for compute, not an OpenStack API (its endpoint carries the lab's stand-in mark)".into()
            )
        );
        // A broken real service (HAProxy's 503, refused, a timeout, 200 without a token) is
        // never a skip: it could not be verified, naming the URL and the answer.
        for (status, text) in [
            (Ok(503), "answered 503, not 401"),
            (Ok(200), "answered 200, not 401"),
            (Ok(404), "answered 404"),
            (
                Err("connection refused".to_owned()),
                "got no answer (connection refused)",
            ),
            (
                Err("no answer within 15 s".to_owned()),
                "no answer within 15 s",
            ),
        ] {
            let Probe::Unverified(e) = judge_probe(u, status, None, None) else {
                panic!("{text}")
            };
            assert!(e.contains(text) && e.contains(u), "{e}");
        }
    }

    #[test]
    fn the_mark_is_the_header_or_the_document_and_nothing_else() {
        assert_eq!(
            stand_in_mark(Some("compute"), None).as_deref(),
            Some("compute")
        );
        let doc = r#"{"nfvi_lab_stand_in": "network"}"#;
        assert_eq!(
            stand_in_mark(None, Some((200, doc))).as_deref(),
            Some("network")
        );
        for (h, d) in [
            (None, Some((404, doc))),
            (None, Some((200, "<html>503 Service Unavailable</html>"))),
            (None, Some((200, r#"{"nfvi_lab_stand_in": "a\nb"}"#))),
            (Some(""), None),
            (None, None),
        ] {
            assert_eq!(stand_in_mark(h, d), None, "{h:?} {d:?}");
        }
    }

    #[test]
    fn a_dashboard_is_horizon_only_with_its_csrf_cookie() {
        let u = "http://127.0.0.1/auth/login/";
        let csrf = ["csrftoken=abc; Path=/".to_owned()];
        assert!(matches!(
            judge_dashboard(u, Ok(200), &csrf, None),
            Probe::Api(_)
        ));
        assert!(matches!(
            judge_dashboard(u, Ok(200), &[], Some("dashboard".into())),
            Probe::StandIn(w) if w.contains("stand-in for dashboard")
        ));
        for status in [Ok(200), Ok(302), Ok(503), Err("refused".to_owned())] {
            assert!(matches!(
                judge_dashboard(u, status, &[], None),
                Probe::Unverified(w) if w.contains(u)
            ));
        }
    }

    #[test]
    fn unset_keys_and_untested_wholes_settle_the_parts() {
        use crate::services::by_name;
        let tested = || Offer::Tested {
            catalog_type: "x".into(),
            url: "http://x".into(),
            seen: "401".into(),
        };
        let base = |compute: Offer| {
            vec![
                (by_name("compute").unwrap(), compute),
                (by_name("volume").unwrap(), tested()),
                (by_name("volume-attach").unwrap(), tested()),
                (
                    by_name("network").unwrap(),
                    Offer::NotTested("the lab's stand-in for network".into()),
                ),
                (by_name("network-ipv6").unwrap(), tested()),
            ]
        };
        let mut o = base(tested());
        settle(&mut o, &|k| k == "flavor_ref");
        assert!(
            matches!(&o[0].1, Offer::Unverified(w) if w.starts_with("tempest.flavor_ref is not set"))
        );
        assert!(matches!(&o[2].1, Offer::Unverified(w) if w.contains("tempest.flavor_ref")));
        assert!(o[1].1.tested());
        assert!(
            matches!(&o[4].1, Offer::NotTested(w) if w.starts_with("network is not tested: the lab's stand-in"))
        );
        let mut o = base(tested());
        settle(&mut o, &|_| false);
        assert!(o[0].1.tested() && o[2].1.tested());
        // The whole not tested rightly (the lab's stand-in): the part is skipped with it,
        // whatever the keys.
        let mut o = base(Offer::NotTested("the lab's stand-in for compute".into()));
        settle(&mut o, &|_| true);
        assert!(matches!(&o[2].1, Offer::NotTested(w) if w.starts_with("compute is not tested")));
        let mut o = base(Offer::Unverified("http://n answered 503".into()));
        settle(&mut o, &|_| false);
        assert!(matches!(&o[2].1, Offer::Unverified(w) if w == "compute: http://n answered 503"));
    }

    #[test]
    fn the_first_type_offered_is_found() {
        let eps = vec![
            ("block-storage".to_owned(), "http://c/v3".to_owned()),
            ("volumev3".to_owned(), "http://b/v3".to_owned()),
        ];
        assert_eq!(
            find(&eps, &["volumev3", "block-storage"]).unwrap().1,
            "http://b/v3"
        );
        assert!(find(&eps, &["image"]).is_none());
    }
}
