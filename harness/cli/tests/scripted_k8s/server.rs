//! The running scripted server: a listener on loopback with a thread per connection, the
//! stores it keeps between requests, the HTTP/1.1 loop that logs each request (and POSTed
//! body) and asks the parts in turn (leftovers, the authenticated own, userns and netpol
//! parts, upstream, agents, then the main server's answers), and the kubeconfig that points
//! a client at it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::objects::documents;
use super::{
    PodStore, Request, Spec, TOKEN, agents, leftovers, netpol, own, respond, upstream, userns,
};

/// A running scripted server.
pub struct Server {
    pub port: u16,
    /// The UDP port of the load balancer's stand-in backends on 127.0.0.1 (0: none).
    pub lb_port: u16,
    pub log: Arc<Mutex<Vec<String>>>,
    /// The body of every POST, by path.
    pub posted: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Server {
    /// Starts answering as `spec` describes.
    pub fn start(spec: Spec) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let docs = Arc::new(documents(&spec));
        let spec = Arc::new(spec);
        let pods: PodStore = Arc::default();
        let agents: agents::Agents = Arc::default();
        let posted: Posted = Arc::default();
        let upstream: upstream::Upstream = Arc::default();
        let lb = Arc::new(spec.lb_ip.as_ref().map(|_| own::LbResponder::start()));
        let lb_port = lb.as_ref().as_ref().map_or(0, |r| r.port);
        let services: own::Services = Arc::default();
        let (l, b) = (log.clone(), posted.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (docs, spec, log, pods) = (docs.clone(), spec.clone(), l.clone(), pods.clone());
                let (agents, posted, upstream) = (agents.clone(), b.clone(), upstream.clone());
                let (services, lb) = (services.clone(), lb.clone());
                std::thread::spawn(move || {
                    let stores = Stores {
                        pods: &pods,
                        agents: &agents,
                        posted: &posted,
                        upstream: &upstream,
                        services: &services,
                        lb: lb.as_ref().as_ref(),
                    };
                    serve_conn(conn, &docs, &spec, &log, &stores)
                });
            }
        });
        Self {
            port,
            lb_port,
            log,
            posted,
        }
    }

    /// Requests seen, as `METHOD /path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The bodies POSTed to paths ending in `suffix` (`/daemonsets`).
    pub fn posted(&self, suffix: &str) -> Vec<Value> {
        self.posted
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.ends_with(suffix))
            .map(|(_, v)| v.clone())
            .collect()
    }
}

type Posted = Arc<Mutex<Vec<(String, Value)>>>;

/// What the server keeps between requests.
struct Stores<'a> {
    pods: &'a PodStore,
    agents: &'a agents::Agents,
    posted: &'a Posted,
    upstream: &'a upstream::Upstream,
    services: &'a own::Services,
    lb: Option<&'a own::LbResponder>,
}

fn serve_conn(
    conn: TcpStream,
    docs: &BTreeMap<String, Value>,
    spec: &Spec,
    log: &Mutex<Vec<String>>,
    stores: &Stores<'_>,
) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (
            parts.next().unwrap_or("").to_owned(),
            parts.next().unwrap_or("").to_owned(),
        );
        let mut length = 0usize;
        let mut auth = String::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                match k.to_ascii_lowercase().as_str() {
                    "content-length" => length = v.trim().parse().unwrap_or(0),
                    "authorization" => auth = v.trim().to_owned(),
                    _ => {}
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        log.lock().unwrap().push(format!("{method} {target}"));
        let path = target.split('?').next().unwrap_or("").to_owned();
        if method == "POST" {
            let v = serde_json::from_slice(&body).unwrap_or(Value::Null);
            stores.posted.lock().unwrap().push((path.clone(), v));
        }
        let query = target.split_once('?').map_or("", |(_, q)| q).to_owned();
        let req = Request {
            method: &method,
            path: &path,
            query: &query,
            auth: &auth,
            body: &body,
        };
        let answer = leftovers::respond(&req, spec)
            .or_else(|| {
                (auth == format!("Bearer {TOKEN}"))
                    .then(|| {
                        own::respond(&req, spec, stores.pods, stores.services, stores.lb)
                            .or_else(|| userns::respond(&req, spec, stores.pods))
                            .or_else(|| netpol::respond(&req, spec, stores.pods))
                    })
                    .flatten()
            })
            .or_else(|| upstream::respond(&req, spec, stores.upstream))
            .or_else(|| agents::respond(&req, spec, stores.agents));
        let (code, ctype, text) = match answer {
            Some(answer) => answer,
            None => {
                let (code, ctype, text) = respond(&req, docs, spec, stores.pods);
                (code, ctype, text.into_bytes())
            }
        };
        let head = format!(
            "HTTP/1.1 {code} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nAudit-Id: scripted\r\n\r\n",
            text.len()
        );
        if out
            .write_all(head.as_bytes())
            .and_then(|()| out.write_all(&text))
            .is_err()
        {
            return;
        }
    }
}

/// A kubeconfig for a server on loopback with `token`.
pub fn kubeconfig(dir: &std::path::Path, port: u16, token: &str) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: scripted\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: scripted\n  context:\n    cluster: scripted\n    user: nfvi-verify\ncurrent-context: scripted\nusers:\n- name: nfvi-verify\n  user:\n    token: {token}\n"
        ),
    )
    .unwrap();
    path
}
