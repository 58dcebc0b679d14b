//! The image registry checks (Kolla's `docker_registry`): the Docker Registry HTTP API v2
//! answers, and every image the expected containers need is there at the deployment's tag.
//! Read-only: `GET /v2/` and `HEAD` on manifests.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use nfvi_harness::outcome::{SkipKind, SkipReason};
use nfvi_harness::{BoxFuture, Check, CheckContext, CheckMeta, Outcome, Severity};
use nfvi_reference_model::Area;

use crate::services;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Api,
    Images,
}

struct RegistryCheck {
    meta: CheckMeta,
    kind: Kind,
}

/// Both registry checks.
pub fn checks() -> Vec<Arc<dyn Check>> {
    let mk = |id: &str, title: &str, kind: Kind| -> Arc<dyn Check> {
        Arc::new(RegistryCheck {
            meta: CheckMeta::new(id, Area::Kolla, title)
                .subject("kolla-registry")
                .covers(Severity::Should, &["gen.ost.01"])
                .side_effects("none: read-only registry API calls", "none needed")
                .timeout(Duration::from_secs(60)),
            kind,
        })
    };
    vec![
        mk(
            "kolla.registry.api",
            "The image registry answers the Docker Registry HTTP API v2",
            Kind::Api,
        ),
        mk(
            "kolla.registry.images",
            "Every image the expected containers need is in the registry at the deployment's tag",
            Kind::Images,
        ),
    ]
}

fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

fn describe(e: &reqwest::Error, url: &str) -> String {
    if e.is_timeout() {
        format!("{url} did not answer within 10 s")
    } else {
        format!("cannot reach {url}: {e}")
    }
}

/// The manifest media types a registry may hold for an image.
const MANIFEST_TYPES: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

impl Check for RegistryCheck {
    fn meta(&self) -> &CheckMeta {
        &self.meta
    }

    fn run<'a>(&'a self, cx: &'a CheckContext) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let k = &cx.target().kolla;
            if k.registry.is_empty() {
                return Outcome::skip(SkipReason {
                    kind: SkipKind::NotApplicable,
                    message: "no registry configured (kolla.registry is empty)".to_owned(),
                });
            }
            let base = k.registry.trim_end_matches('/');
            let http = match client() {
                Ok(c) => c,
                Err(e) => return Outcome::error(e),
            };
            match self.kind {
                Kind::Api => {
                    let url = format!("{base}/v2/");
                    let resp = match http.get(&url).send().await {
                        Ok(r) => r,
                        Err(e) => return Outcome::error(describe(&e, &url)),
                    };
                    let status = resp.status().as_u16();
                    let api = resp
                        .headers()
                        .get("docker-distribution-api-version")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    let o = if status == 200 && api.starts_with("registry/2") {
                        Outcome::pass(format!("GET {url} answered 200, API {api}"))
                    } else if status == 401 {
                        Outcome::error(format!(
                            "GET {url} answered 401: the registry wants credentials, which this build cannot send yet"
                        ))
                    } else {
                        Outcome::fail(format!(
                            "GET {url} answered {status} with Docker-Distribution-API-Version `{api}`; expected 200 and registry/2.0"
                        ))
                    };
                    o.with_property("registry", base).with_property(
                        "kolla stage",
                        "prechecks and pull (images the deploy needs)",
                    )
                }
                Kind::Images => {
                    let expected = match services::expected(&k.release, &k.containers) {
                        Ok(e) => e,
                        Err(e) => return Outcome::error(e),
                    };
                    let images: BTreeSet<&str> = expected
                        .iter()
                        .filter_map(|e| e.service.map(|s| s.image))
                        .collect();
                    let calls = images.iter().map(|image| {
                        let url = format!(
                            "{base}/v2/{}/{image}/manifests/{}",
                            k.image_namespace, k.image_tag
                        );
                        let http = http.clone();
                        async move {
                            let r = http
                                .head(&url)
                                .header("Accept", MANIFEST_TYPES)
                                .send()
                                .await;
                            (*image, url, r)
                        }
                    });
                    let mut missing = Vec::new();
                    for (image, url, r) in futures_util::future::join_all(calls).await {
                        match r {
                            Err(e) => return Outcome::error(describe(&e, &url)),
                            Ok(r) if r.status().as_u16() == 200 => {}
                            Ok(r) if r.status().as_u16() == 404 => missing.push(image),
                            Ok(r) => {
                                return Outcome::error(format!(
                                    "HEAD {url} answered {}; expected 200 or 404",
                                    r.status()
                                ));
                            }
                        }
                    }
                    let reference = format!("{base}/{}/<image>:{}", k.image_namespace, k.image_tag);
                    let o = if missing.is_empty() {
                        Outcome::pass(format!(
                            "all {} images are present as {reference}",
                            images.len()
                        ))
                    } else {
                        Outcome::fail(format!(
                            "{} of {} images are not in the registry as {reference}: {}",
                            missing.len(),
                            images.len(),
                            missing.join(", ")
                        ))
                    };
                    o.with_property("registry", base)
                        .with_property(
                            "kolla stage",
                            "prechecks and pull (images the deploy needs)",
                        )
                        .with_property("images", images.into_iter().collect::<Vec<_>>().join(", "))
                }
            }
        })
    }
}
