//! The Horizon dashboard check, which needs no credentials: `openstack.dashboard_url`
//! answers (after redirects and one meta refresh) 200 with Horizon's login page.

use nfvi_harness::{CheckContext, CheckError, CheckResult, Outcome};

use super::session::CA_HINT;
use crate::http;

/// Horizon, which needs no credentials; the Kolla stage goes on every outcome, a skip or an
/// early error too.
pub(super) async fn horizon(cx: &CheckContext) -> CheckResult {
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
