//! Ingress served by an ingress controller, seen from outside the cluster: the check finds
//! the IngressClass to use (`kubernetes.ingress_class`, else the one annotated as the
//! cluster's default; an IngressClass is how a controller announces itself, so none is a
//! failure), then in a namespace of its own (`nfvi-verify-net-ingress-*`) starts a responder
//! pod that answers HTTP with a token of this run, a ClusterIP Service over it and an Ingress
//! for a host of this run (`<rand>.nfvi-verify.invalid`, path `/`). Once the controller has
//! admitted the Ingress (an address in its status, within `kubernetes.ingress_timeout_secs`;
//! else a failure), nfvi-verify sends from where it runs an HTTP GET to that address
//! (`kubernetes.ingress_port`) with the Ingress's host: the answer must carry the token (the
//! positive). The same request with another host must not (the negative: the controller
//! routes by host), judged only once the positive answered. The address must lie inside
//! `network.lab_cidr` (loopback only with `kubernetes.lb_allow_loopback`, as for the
//! LoadBalancer checks). A request that could not be sent is an error, never a pass or a
//! failure. The namespace (pod, Service, Ingress) is deleted whatever happens.
//!
//! The responder is the probe image's `perl` (perl-base is an essential package of the
//! Debian base of `deploy/kubernetes/probe-image`), serving a fixed body: the prober has no
//! HTTP mode, and the check needs nothing but the body.

use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::{Api, ListParams, PostParams};
use nfvi_harness::{Check, CheckContext, CheckMeta, CheckResult, Outcome, Severity, declare};
use nfvi_reference_model::Area;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cluster::{self, Cluster};
use crate::probe_ns::ProbeNs;
use crate::probes::pod;

/// The annotation that marks the cluster's default IngressClass.
pub const DEFAULT_CLASS: &str = "ingressclass.kubernetes.io/is-default-class";
/// The port the responder pod serves HTTP on.
const HTTP_PORT: u16 = 8080;
/// The name of the pod, the Service and the Ingress.
const NAME: &str = "nfvi-verify-ingress";
/// Longest one HTTP request may take (connect, send, read).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the positive request is repeated while the controller answers without the
/// token (a controller programs its routes some time after it publishes the address).
const ROUTE_DEADLINE: Duration = Duration::from_secs(30);
/// The most of an answer read.
const MAX_ANSWER: usize = 64 * 1024;

/// The check.
pub fn checks() -> Vec<Arc<dyn Check>> {
    vec![declare(
        CheckMeta::new(
            "k8s.ingress.controller",
            Area::K8s,
            "An ingress controller serves the Ingress API: an Ingress routes HTTP by host to its Service, seen from outside the cluster",
        )
        .subject("in-cluster-probes")
        .covers(Severity::Must, &["inf.ntw.16", "ra2.k8s.016"])
        .needs([crate::kubeconfig_need()])
        .side_effects(
            "creates a namespace nfvi-verify-net-ingress-* (label app.kubernetes.io/managed-by=nfvi-verify) holding a responder probe pod (HTTP, the image's perl), a ClusterIP Service and an Ingress of the chosen IngressClass for a host <rand>.nfvi-verify.invalid, which the ingress controller then serves; two HTTP GETs from this machine to the address the controller publishes (only inside network.lab_cidr; loopback only with kubernetes.lb_allow_loopback)",
            "deletes the namespace, and with it the pod, the Service and the Ingress (the controller drops its route), whatever the outcome (also on Ctrl-C)",
        )
        .timeout(Duration::from_secs(600)),
        |cx| Box::pin(run(cx)),
    )
    .into_check()]
}

/// A random value of this process (std's hasher keys are random per process and per call).
fn random() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// The IngressClass to use: `configured` when it exists, else the single default one.
pub(crate) fn pick_class(
    classes: &[(String, bool)],
    configured: Option<&str>,
) -> Result<String, Outcome> {
    if let Some(want) = configured {
        return if classes.iter().any(|(n, _)| n == want) {
            Ok(want.to_owned())
        } else {
            Err(Outcome::fail(format!(
                "the IngressClass {want:?} (kubernetes.ingress_class) does not exist; the cluster has {}: no ingress controller serves that class",
                shown_classes(classes)
            )))
        };
    }
    let defaults: Vec<&str> = classes
        .iter()
        .filter(|(_, d)| *d)
        .map(|(n, _)| n.as_str())
        .collect();
    match (classes.len(), defaults.as_slice()) {
        (0, _) => Err(Outcome::fail(
            "the cluster has no IngressClass: no ingress controller is installed (a controller announces itself with an IngressClass), so Ingress objects are served by nothing",
        )),
        (_, [one]) => Ok((*one).to_owned()),
        (1, []) => Ok(classes[0].0.clone()),
        (_, []) => Err(Outcome::error(format!(
            "the cluster has {} and none is the default ({DEFAULT_CLASS}): set kubernetes.ingress_class to the one to test",
            shown_classes(classes)
        ))),
        (_, many) => Err(Outcome::error(format!(
            "the cluster has {} default IngressClasses ({}): set kubernetes.ingress_class to the one to test",
            many.len(),
            many.join(", ")
        ))),
    }
}

fn shown_classes(classes: &[(String, bool)]) -> String {
    if classes.is_empty() {
        return "no IngressClass".to_owned();
    }
    let names: Vec<&str> = classes.iter().map(|(n, _)| n.as_str()).collect();
    format!("the IngressClasses {}", names.join(", "))
}

async fn run(cx: &CheckContext) -> CheckResult {
    let k = cx.target().config::<crate::KubernetesConfig>();
    if let Some(skip) = k.without_probe_image(
        "the Ingress's backend is a probe pod, which needs the probe image (deploy/kubernetes/probe-image)",
    ) {
        return Ok(skip);
    }
    let c = cluster::for_check(cx).await?;
    let classes = Api::<IngressClass>::all(c.client().clone())
        .list(&ListParams::default())
        .await
        .map_err(|e| c.explain("list ingressclasses", &e))?;
    let classes: Vec<(String, bool)> = classes
        .items
        .iter()
        .filter_map(|ic| {
            let name = ic.metadata.name.clone()?;
            let default = ic
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(DEFAULT_CLASS))
                .is_some_and(|v| v == "true");
            Some((name, default))
        })
        .collect();
    let class = match pick_class(&classes, k.ingress_class.as_deref()) {
        Ok(c) => c,
        Err(o) => return Ok(o.with_property("API server", &c.server)),
    };
    let ns = format!("nfvi-verify-net-ingress-{}", crate::upstream::short_id());
    let run_id = format!("{:012x}", random() & 0xffff_ffff_ffff);
    let run = Run {
        host: format!("{run_id}.nfvi-verify.invalid"),
        other: format!("other-{run_id}.nfvi-verify.invalid"),
        token: format!("nfvi-verify-ingress-token-{:016x}", random()),
    };
    let evidence = |o: Outcome| {
        o.with_property("API server", &c.server)
            .with_property("namespace", &ns)
            .with_property("IngressClass", &class)
            .with_property("host", &run.host)
    };
    exercise(cx, &c, &ns, &class, &run)
        .await
        .map(evidence)
        .map_err(|e| evidence(e.0).into())
}

/// What one run sends and expects.
pub(crate) struct Run {
    /// The Ingress's host.
    pub host: String,
    /// A host no Ingress names (the negative).
    pub other: String,
    /// What the responder answers, and only it.
    pub token: String,
}

/// The responder: a fixed HTTP answer carrying `token`, from the image's perl, on a node the
/// scheduler picks (one node is enough: the controller reaches it through the Service).
fn responder(image: &str, token: &str) -> Result<Pod, String> {
    let script = format!(
        "use IO::Socket::INET; my $b = $ARGV[0]; my $s = IO::Socket::INET->new(LocalPort => {HTTP_PORT}, Listen => 16, ReuseAddr => 1) or die \"listen: $!\"; while (my $c = $s->accept) {{ while (my $l = <$c>) {{ last if $l =~ /^\\r?\\n$/ }} print $c \"HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\nContent-Length: \" . length($b) . \"\\r\\nConnection: close\\r\\n\\r\\n$b\"; close $c }}"
    );
    let mut p = pod(NAME, "", image, vec![token.to_owned()], "Always", &[]);
    let spec = p.spec.as_mut().ok_or("the probe pod has no spec")?;
    spec.node_name = None;
    let container = spec
        .containers
        .first_mut()
        .ok_or("the probe pod has no container")?;
    container.command = Some(vec!["perl".into(), "-e".into(), script, "--".into()]);
    if let Some(l) = p.metadata.labels.as_mut() {
        l.insert("nfvi-verify/ingress-backend".into(), "true".into());
    }
    Ok(p)
}

async fn exercise(
    cx: &CheckContext,
    c: &Arc<Cluster>,
    ns: &str,
    class: &str,
    run: &Run,
) -> CheckResult {
    let k = cx.target().config::<crate::KubernetesConfig>();
    let lab = cx.target().network.lab_cidr.clone();
    let space = ProbeNs::create(cx, c, ns).await?;
    let image = k.probe_image.as_deref().unwrap_or_default();
    space.start(&responder(image, &run.token)?).await?;
    let svc: Service = manifest::<Service>(
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": NAME, "labels": crate::clean::labels()},
            "spec": {
                "type": "ClusterIP",
                "selector": {"nfvi-verify/ingress-backend": "true"},
                "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": HTTP_PORT}]
            }
        }),
        "Service",
    )?;
    space
        .api::<Service>()
        .create(&PostParams::default(), &svc)
        .await
        .map_err(|e| c.explain(&format!("create service {ns}/{NAME}"), &e))?;
    let ing: Ingress = manifest::<Ingress>(
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": NAME, "labels": crate::clean::labels()},
            "spec": {
                "ingressClassName": class,
                "rules": [{"host": run.host, "http": {"paths": [{
                    "path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": NAME, "port": {"number": 80}}}
                }]}}]
            }
        }),
        "Ingress",
    )?;
    let ingresses: Api<Ingress> = space.api();
    ingresses
        .create(&PostParams::default(), &ing)
        .await
        .map_err(|e| c.explain(&format!("create ingress {ns}/{NAME}"), &e))?;
    let deadline = Duration::from_secs(k.ingress_timeout_secs);
    let started = Instant::now();
    let ip = loop {
        let i = ingresses
            .get(NAME)
            .await
            .map_err(|e| c.explain(&format!("get ingress {ns}/{NAME}"), &e))?;
        let published = i
            .status
            .and_then(|s| s.load_balancer)
            .and_then(|l| l.ingress)
            .unwrap_or_default();
        if let Some(ip) = published.iter().find_map(|p| p.ip.clone()) {
            break ip;
        }
        if let Some(host) = published.iter().find_map(|p| p.hostname.clone()) {
            return Err(format!(
                "the ingress controller published a hostname ({host}) and no address: nfvi-verify sends requests only to addresses it can check against network.lab_cidr"
            )
            .into());
        }
        if started.elapsed() >= deadline {
            return Ok(Outcome::fail(format!(
                "the controller never admitted the Ingress {ns}/{NAME} of IngressClass {class}: no address in its status within {} s (kubernetes.ingress_timeout_secs)",
                deadline.as_secs()
            )));
        }
        crate::upstream::pod::stopped_or_sleep(
            cx,
            "k8s.ingress (waiting for the Ingress's address)",
        )
        .await?;
    };
    let addr: IpAddr = ip
        .parse()
        .map_err(|_| format!("the Ingress's address {ip:?} is not an IP address"))?;
    if !crate::lb::may_probe(addr, &lab, k.lb_allow_loopback) {
        return Err(if addr.is_loopback() {
            format!(
                "the Ingress's address {addr} is loopback: a request to it would judge a port of this machine, not the cluster (kubernetes.lb_allow_loopback is for tests against a scripted API server only)"
            )
        } else {
            format!(
                "the Ingress's address {addr} lies outside network.lab_cidr ({lab}): nfvi-verify sends requests only to lab addresses; widen network.lab_cidr to the controller's addresses to test it"
            )
        }
        .into());
    }
    let peer = SocketAddr::new(addr, k.ingress_port);
    // The positive, repeated while the controller answers without the token (its route may
    // come some time after its address).
    let until = Instant::now() + ROUTE_DEADLINE;
    let positive = loop {
        let a = get(peer, &run.host, &run.token).await;
        let again = matches!(&a, Answer::Http { token: false, .. }) && Instant::now() < until;
        if !again {
            break a;
        }
        crate::upstream::pod::stopped_or_sleep(cx, "k8s.ingress (waiting for the route)").await?;
    };
    let negative = if matches!(positive, Answer::Http { token: true, .. }) {
        Some(get(peer, &run.other, &run.token).await)
    } else {
        None
    };
    Ok(judge(Some(&positive), negative.as_ref(), peer, run)
        .with_property("address", peer.to_string()))
}

fn manifest<T: serde::de::DeserializeOwned>(v: serde_json::Value, what: &str) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| format!("the {what} manifest: {e}"))
}

/// What one HTTP request brought.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Answer {
    /// An HTTP answer: its status code, and whether its body carries the token.
    Http { status: u16, token: bool },
    /// Connected and sent; no HTTP answer (closed, timed out, not HTTP).
    Silent(String),
    /// Not sent: no connection (refused, no route, timeout connecting).
    NotSent(String),
}

/// One HTTP/1.1 GET `/` to `peer` with `Host: host`.
async fn get(peer: SocketAddr, host: &str, token: &str) -> Answer {
    let connect = tokio::time::timeout(REQUEST_TIMEOUT, tokio::net::TcpStream::connect(peer)).await;
    let mut s = match connect {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Answer::NotSent(format!("could not connect to {peer}: {e}")),
        Err(_) => {
            return Answer::NotSent(format!(
                "could not connect to {peer} within {} s",
                REQUEST_TIMEOUT.as_secs()
            ));
        }
    };
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: nfvi-verify\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    let exchange = async {
        s.write_all(request.as_bytes()).await?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = s.read(&mut chunk).await?;
            if n == 0 || buf.len() >= MAX_ANSWER {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Ok::<_, std::io::Error>(buf)
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
        Ok(Ok(buf)) => parse_answer(&buf, token),
        Ok(Err(e)) => Answer::Silent(format!("{peer} (Host {host}): {e}")),
        Err(_) => Answer::Silent(format!(
            "{peer} (Host {host}) sent no complete answer within {} s",
            REQUEST_TIMEOUT.as_secs()
        )),
    }
}

/// An HTTP answer's status and whether its body carries `token`.
pub(crate) fn parse_answer(buf: &[u8], token: &str) -> Answer {
    let text = String::from_utf8_lossy(buf);
    let Some(status) = text
        .strip_prefix("HTTP/1.")
        .and_then(|r| r.get(2..5))
        .and_then(|s| s.parse::<u16>().ok())
    else {
        return Answer::Silent(format!(
            "the answer is not HTTP: {:?}",
            nfvi_harness::truncate_chars(&text, 80)
        ));
    };
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Answer::Http {
        status,
        token: body.contains(token),
    }
}

/// ra2.k8s.016, inf.ntw.16: the positive request (the Ingress's host) answered with the
/// token and the negative one (another host) did not. A request not sent is an error; the
/// negative counts only once the positive answered with the token.
pub(crate) fn judge(
    positive: Option<&Answer>,
    negative: Option<&Answer>,
    peer: SocketAddr,
    run: &Run,
) -> Outcome {
    let host = &run.host;
    match positive {
        None => Outcome::error("no request was sent to the Ingress: nothing observed"),
        Some(Answer::NotSent(why)) => Outcome::error(format!(
            "the request for host {host} was not sent ({why}): the Ingress was not probed, so nothing is judged"
        )),
        Some(Answer::Silent(why)) => Outcome::fail(format!(
            "the ingress controller at {peer} accepted the connection for host {host} but gave no HTTP answer: {why}"
        )),
        Some(Answer::Http {
            status,
            token: false,
        }) => Outcome::fail(format!(
            "the ingress controller at {peer} answered HTTP {status} for host {host} without the backend's token within {} s: the Ingress does not route to its Service",
            ROUTE_DEADLINE.as_secs()
        )),
        Some(Answer::Http { token: true, .. }) => match negative {
            None => Outcome::error(format!(
                "the request for another host ({}) was not made: routing by host not judged",
                run.other
            )),
            Some(Answer::NotSent(why)) => Outcome::error(format!(
                "the request for another host ({}) was not sent ({why}), after the Ingress's host answered: routing by host not judged",
                run.other
            )),
            Some(Answer::Http {
                token: true,
                status,
            }) => Outcome::fail(format!(
                "the ingress controller at {peer} answered HTTP {status} with the backend's token for host {}, which no Ingress names: it does not route by host",
                run.other
            )),
            Some(other) => {
                let neg = match other {
                    Answer::Http { status, .. } => format!("HTTP {status} without it"),
                    Answer::Silent(_) | Answer::NotSent(_) => "no HTTP answer".to_owned(),
                };
                Outcome::pass(format!(
                    "the ingress controller at {peer} routes host {host} to the Ingress's Service (answered with its token) and another host elsewhere ({neg})"
                ))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nfvi_harness::Status;

    fn run() -> Run {
        Run {
            host: "abc.nfvi-verify.invalid".into(),
            other: "other-abc.nfvi-verify.invalid".into(),
            token: "tok-1".into(),
        }
    }

    #[test]
    fn the_ingress_is_judged_on_the_token_by_host() {
        let peer: SocketAddr = "198.18.70.1:80".parse().unwrap();
        let with = Answer::Http {
            status: 200,
            token: true,
        };
        let without = Answer::Http {
            status: 404,
            token: false,
        };
        let unsent =
            Answer::NotSent("could not connect to 198.18.70.1:80: Connection refused".into());
        let silent = Answer::Silent("closed".into());
        type Row<'a> = (
            &'a str,
            Option<&'a Answer>,
            Option<&'a Answer>,
            Status,
            &'a str,
        );
        #[rustfmt::skip]
        let rows: Vec<Row<'_>> = vec![
            ("answered with token, other host not", Some(&with), Some(&without), Status::Passed, "routes host abc.nfvi-verify.invalid"),
            ("other host closed", Some(&with), Some(&silent), Status::Passed, "no HTTP answer"),
            ("answered without token", Some(&without), None, Status::Failed, "does not route to its Service"),
            ("accepted, no answer", Some(&silent), None, Status::Failed, "gave no HTTP answer"),
            ("positive not sent", Some(&unsent), None, Status::Error, "was not sent"),
            ("positive not sent, negative token", Some(&unsent), Some(&with), Status::Error, "nothing is judged"),
            ("negative also with token", Some(&with), Some(&with), Status::Failed, "does not route by host"),
            ("negative not sent", Some(&with), Some(&unsent), Status::Error, "routing by host not judged"),
            ("nothing observed", None, None, Status::Error, "nothing observed"),
        ];
        for (name, pos, neg, status, needle) in rows {
            let o = judge(pos, neg, peer, &run());
            assert_eq!(o.status, status, "{name}: {}", o.message);
            assert!(o.message.contains(needle), "{name}: {}", o.message);
        }
    }

    #[test]
    fn answers_are_parsed_and_hostile_ones_are_not_http() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\ntok-1";
        assert_eq!(
            parse_answer(ok, "tok-1"),
            Answer::Http {
                status: 200,
                token: true
            }
        );
        // The token in a header only is not the backend's body.
        let hdr = b"HTTP/1.1 404 Not Found\r\nX: tok-1\r\n\r\ndefault backend";
        assert_eq!(
            parse_answer(hdr, "tok-1"),
            Answer::Http {
                status: 404,
                token: false
            }
        );
        for bad in [
            &b""[..],
            b"HTTP/1.1",
            b"\xff\xfe<html>",
            b"SSH-2.0-OpenSSH\r\n",
        ] {
            assert!(
                matches!(parse_answer(bad, "tok-1"), Answer::Silent(_)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_class_is_the_configured_or_the_single_default() {
        let c = |v: &[(&str, bool)]| -> Vec<(String, bool)> {
            v.iter().map(|(n, d)| ((*n).to_owned(), *d)).collect()
        };
        assert_eq!(
            pick_class(&c(&[("nginx", true), ("x", false)]), None).unwrap(),
            "nginx"
        );
        assert_eq!(pick_class(&c(&[("x", false)]), None).unwrap(), "x");
        assert_eq!(
            pick_class(&c(&[("a", true), ("b", true)]), Some("b")).unwrap(),
            "b"
        );
        let none = pick_class(&[], None).unwrap_err();
        assert_eq!(none.status, Status::Failed);
        assert!(
            none.message.contains("no ingress controller is installed"),
            "{}",
            none.message
        );
        let many = pick_class(&c(&[("a", true), ("b", true)]), None).unwrap_err();
        assert_eq!(many.status, Status::Error);
        assert!(
            many.message.contains("set kubernetes.ingress_class"),
            "{}",
            many.message
        );
        let unset = pick_class(&c(&[("a", false), ("b", false)]), None).unwrap_err();
        assert_eq!(unset.status, Status::Error);
        let missing = pick_class(&c(&[("a", true)]), Some("nginx")).unwrap_err();
        assert_eq!(missing.status, Status::Failed);
        assert!(
            missing
                .message
                .contains("\"nginx\" (kubernetes.ingress_class) does not exist")
        );
    }

    #[test]
    fn the_responder_serves_the_token_from_perl() {
        let p = responder("r/x:1", "tok-1").unwrap();
        assert_eq!(p.spec.as_ref().unwrap().node_name, None);
        let c = &p.spec.as_ref().unwrap().containers[0];
        assert_eq!(c.command.as_ref().unwrap()[0], "perl");
        assert_eq!(c.args.as_ref().unwrap(), &vec!["tok-1".to_owned()]);
        assert!(c.command.as_ref().unwrap()[2].contains("LocalPort => 8080"));
    }
}
