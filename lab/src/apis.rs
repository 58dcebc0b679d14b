//! The lab's stand-ins for the OpenStack APIs behind the Kolla-shaped API containers, and
//! their registration in the lab's real Keystone.
//!
//! They are not OpenStack. Each API container serves, with busybox `httpd` on its Kolla port,
//! the documents the real service answers with for the calls the kolla area makes: version
//! discovery at the root and one list call, in the formats of the OpenStack API references.
//! They do not validate tokens. Two documents are live:
//!
//! - `nova_api` answers `GET /v2.1/os-services` from heartbeats: every RPC container of the
//!   fleet (`nova_compute`, `neutron_l3_agent`, ...) touches `heartbeats/<binary>` every 5 s
//!   while `rabbitmq` answers, and a service whose heartbeat is older than
//!   [`SERVICE_DOWN_SECS`] is `down`, as nova judges `service_down_time`;
//! - `neutron_server` answers `GET /v2.0/agents` the same way (`alive`, as neutron judges
//!   `agent_down_time`).
//!
//! So `docker stop nova_compute` (or stopping `rabbitmq`) shows up in the API checks the way
//! it does on a real cloud: the service goes down after the down time.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::engine as lab;

/// Nova's `service_down_time` and neutron's `agent_down_time` in the lab (Kolla's defaults
/// are 60 s and 75 s; the lab is quicker so that faults show within seconds).
pub const SERVICE_DOWN_SECS: u64 = 20;

/// How often an RPC container writes its heartbeat.
const HEARTBEAT_SECS: u64 = 5;

/// Where heartbeats are kept on the host; mounted at `/heartbeats` in the fleet.
pub fn heartbeat_dir() -> PathBuf {
    Path::new(lab::STATE_DIR).join("heartbeats")
}

/// Per-project stack lists for `heat_api`, mounted at `/tmp/www/v1` (its web root's `v1`).
pub fn stacks_dir() -> PathBuf {
    Path::new(lab::STATE_DIR).join("heat-stacks")
}

/// Extra `-v` mounts of a fleet container (heartbeats, heat's stack lists).
pub fn mounts(container: &str, command: &str) -> Vec<String> {
    let mut v = Vec::new();
    if matches!(container, "nova_api" | "neutron_server") || command.contains("/heartbeats/") {
        v.push(format!("{}:/heartbeats", heartbeat_dir().display()));
    }
    if container == "heat_api" {
        v.push(format!("{}:/tmp/www/v1:ro", stacks_dir().display()));
    }
    v
}

/// One API the lab serves and registers in Keystone, as Kolla's `service-ks-register` does.
#[derive(Clone, Copy)]
struct Api {
    container: &'static str,
    service_type: &'static str,
    name: &'static str,
    port: u16,
    /// The catalog URL's path after `http://127.0.0.1:PORT`.
    path: &'static str,
}

const APIS: &[Api] = &[
    Api {
        container: "glance_api",
        service_type: "image",
        name: "glance",
        port: 9292,
        path: "",
    },
    Api {
        container: "placement_api",
        service_type: "placement",
        name: "placement",
        port: 8780,
        path: "",
    },
    Api {
        container: "nova_api",
        service_type: "compute",
        name: "nova",
        port: 8774,
        path: "/v2.1",
    },
    Api {
        container: "neutron_server",
        service_type: "network",
        name: "neutron",
        port: 9696,
        path: "",
    },
    Api {
        container: "heat_api",
        service_type: "orchestration",
        name: "heat",
        port: 8004,
        path: "/v1/%(tenant_id)s",
    },
    Api {
        container: "heat_api_cfn",
        service_type: "cloudformation",
        name: "heat-cfn",
        port: 8000,
        path: "/v1",
    },
];

fn api(container: &str) -> Option<&'static Api> {
    APIS.iter().find(|a| a.container == container)
}

fn version(id: &str, status: &str, port: u16, extra: Value) -> Value {
    let mut v = json!({
        "id": id,
        "status": status,
        "links": [{"rel": "self", "href": format!("http://127.0.0.1:{port}/{id}/")}],
    });
    if let (Some(v), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
        v.extend(extra.clone());
    }
    v
}

/// Where every stand-in says what it stands in for (`{"nfvi_lab_stand_in": "compute"}`), so
/// that a harness tells it from an OpenStack API by an explicit mark, never by guessing from
/// its answers. (busybox httpd sends no header of one's choosing, so the mark is a document.)
pub const STAND_IN_PATH: &str = "nfvi-lab-stand-in";

fn stand_in(what: &str) -> Value {
    json!({ "nfvi_lab_stand_in": what })
}

/// The static documents an API container serves: (path under the web root, JSON).
fn documents(a: &Api) -> Vec<(String, Value)> {
    let p = a.port;
    let root = match a.service_type {
        "compute" => json!({"versions": [
            version("v2.0", "SUPPORTED", p, json!({"version": "", "min_version": ""})),
            version("v2.1", "CURRENT", p, json!({"version": "2.100", "min_version": "2.1"})),
        ]}),
        "network" => json!({"versions": [version("v2.0", "CURRENT", p, json!({}))]}),
        "image" => json!({"versions": [
            version("v2.17", "CURRENT", p, json!({})),
            version("v2.16", "SUPPORTED", p, json!({})),
        ]}),
        "placement" => json!({"versions": [
            version("v1.0", "CURRENT", p, json!({"max_version": "1.39", "min_version": "1.0"})),
        ]}),
        _ => json!({"versions": [version("v1.0", "CURRENT", p, json!({}))]}),
    };
    let mut docs = vec![
        ("index.html".to_owned(), root),
        (STAND_IN_PATH.to_owned(), stand_in(a.service_type)),
    ];
    match a.service_type {
        "compute" => docs.push(("v2.1/flavors".to_owned(), json!({"flavors": []}))),
        "network" => docs.push(("v2.0/networks".to_owned(), json!({"networks": []}))),
        "image" => docs.push((
            "v2/images".to_owned(),
            json!({"images": [], "first": "/v2/images", "schema": "/v2/schemas/images"}),
        )),
        "placement" => docs.push((
            "resource_providers".to_owned(),
            json!({"resource_providers": []}),
        )),
        _ => {}
    }
    docs
}

/// Shell that writes `/tmp/www/os-services`-style documents from heartbeats, every 2 s.
fn live_loop(service_type: &str) -> Option<String> {
    let down = SERVICE_DOWN_SECS;
    let (glob, file, body) = match service_type {
        // Nova's `os-services` entries (compute API reference, microversion 2.11+ fields).
        "compute" => (
            "nova-*",
            "v2.1/os-services",
            format!(
                r#"zone=internal; [ "$b" = nova-compute ] && zone=nova; st=up; [ $((now-t)) -gt {down} ] && st=down; o="$o$sep{{\"id\": $i, \"binary\": \"$b\", \"host\": \"$h\", \"zone\": \"$zone\", \"status\": \"enabled\", \"state\": \"$st\", \"updated_at\": \"$(date -u -d @$t +%Y-%m-%dT%H:%M:%S.000000)\", \"disabled_reason\": null, \"forced_down\": false}}""#
            ),
        ),
        // Neutron's agents (networking API reference).
        "network" => (
            "neutron-*-agent",
            "v2.0/agents",
            format!(
                r#"case "$b" in *openvswitch*) ty='Open vSwitch agent';; *dhcp*) ty='DHCP agent';; *l3*) ty='L3 agent';; *metadata*) ty='Metadata agent';; *) ty="$b";; esac; al=true; [ $((now-t)) -gt {down} ] && al=false; o="$o$sep{{\"id\": \"$i\", \"agent_type\": \"$ty\", \"binary\": \"$b\", \"host\": \"$h\", \"topic\": \"N/A\", \"admin_state_up\": true, \"alive\": $al, \"heartbeat_timestamp\": \"$(date -u -d @$t '+%Y-%m-%d %H:%M:%S')\", \"availability_zone\": null}}""#
            ),
        ),
        _ => return None,
    };
    let key = if service_type == "compute" {
        "services"
    } else {
        "agents"
    };
    Some(format!(
        r#"h=$(hostname); while :; do now=$(date +%s); o=''; sep=''; i=0; for f in /heartbeats/{glob}; do [ -f "$f" ] || continue; b=${{f##*/}}; i=$((i+1)); t=$(stat -c %Y "$f"); {body}; sep=', '; done; printf '{{"{key}": [%s]}}' "$o" > /tmp/www/{file}.new && mv /tmp/www/{file}.new /tmp/www/{file}; sleep 2; done"#
    ))
}

/// The command of an API container: write its documents, serve them on 127.0.0.1:PORT, and
/// keep the live ones current. `None` when `container` is not one of the lab's APIs.
pub fn api_command(container: &str) -> Option<String> {
    api_command_on(container, api(container)?.port)
}

/// [`api_command`] on another port (tests run a second API of their own).
pub fn api_command_on(container: &str, port: u16) -> Option<String> {
    let a = &Api {
        port,
        ..*api(container)?
    };
    let mut sh = vec!["busybox mkdir -p /tmp/www".to_owned()];
    for (path, doc) in documents(a) {
        if let Some((dir, _)) = path.rsplit_once('/') {
            sh.push(format!("busybox mkdir -p /tmp/www/{dir}"));
        }
        // The documents hold no single quotes, so single-quoting is exact.
        sh.push(format!("printf '%s' '{doc}' > /tmp/www/{path}"));
    }
    let serve = format!("busybox httpd -p 127.0.0.1:{} -h /tmp/www", a.port);
    match live_loop(a.service_type) {
        Some(live) => {
            // The first document exists before the port answers.
            let once = live.replace("sleep 2; done", "break; done");
            sh.push(once);
            sh.push(serve);
            sh.push(live);
        }
        None => sh.push(format!("exec {serve} -f")),
    }
    Some(sh.join(" && "))
}

/// The `horizon` stand-in: a login page shaped like Horizon's (`/` redirects to
/// `/auth/login/`, which carries the dashboard's title and login form) on 127.0.0.1:80.
pub fn dashboard_command(container: &str) -> Option<String> {
    (container == "horizon").then(|| {
        let login = r#"<!DOCTYPE html><html><head><title>Login - OpenStack Dashboard</title></head><body><form id="" method="POST" action="/auth/login/"><input type="hidden" name="csrfmiddlewaretoken" value="lab"><input type="text" name="username"><input type="password" name="password"></form></body></html>"#;
        let index = r#"<!DOCTYPE html><html><head><meta http-equiv="refresh" content="0; url=/auth/login/"></head></html>"#;
        let mark = stand_in("dashboard");
        format!(
            "busybox mkdir -p /tmp/www/auth/login && printf '%s' '{login}' > /tmp/www/auth/login/index.html && printf '%s' '{index}' > /tmp/www/index.html && printf '%s' '{mark}' > /tmp/www/{STAND_IN_PATH} && exec busybox httpd -f -p 127.0.0.1:80 -h /tmp/www"
        )
    })
}

/// The heartbeat loop of an RPC container: `heartbeats/<binary>` is touched every 5 s while
/// `rabbitmq` answers on its port.
pub fn heartbeat_command(container: &str, rabbitmq_port: u16) -> String {
    let binary = container.replace('_', "-");
    format!(
        "while :; do r=$(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 127.0.0.1 {rabbitmq_port} | busybox head -n 1); case \"$r\" in *' 200 '*) busybox touch /heartbeats/{binary};; esac; sleep {HEARTBEAT_SECS}; done"
    )
}

/// Registers every lab API the fleet runs in the lab's Keystone (service plus internal and
/// public endpoints in the openrc's region), as Kolla's `service-ks-register` does;
/// idempotent.
pub fn register(containers: &[&str], progress: &mut dyn FnMut(&str)) -> Result<(), String> {
    let admin = KeystoneAdmin::connect()?;
    let wanted: Vec<&Api> = APIS
        .iter()
        .filter(|a| containers.contains(&a.container))
        .collect();
    // Heat lists stacks per project (`/v1/{project_id}/stacks`); its container serves the
    // project directories written here.
    if wanted.iter().any(|a| a.container == "heat_api") {
        let dir = stacks_dir().join(&admin.project);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        std::fs::write(dir.join("stacks"), json!({"stacks": []}).to_string())
            .map_err(|e| format!("cannot write {}: {e}", dir.display()))?;
    }
    let mut added = 0;
    for a in &wanted {
        let service = admin.service(a.service_type, a.name)?;
        let url = format!("http://127.0.0.1:{}{}", a.port, a.path);
        for interface in ["internal", "public"] {
            if admin.endpoint(&service, interface, &admin.region, &url)?.1 {
                added += 1;
            }
        }
    }
    progress(&format!(
        "keystone: {} API services in the catalog ({added} endpoints added)",
        wanted.len() + 1
    ));
    Ok(())
}

/// Administrative calls on the lab's Keystone with the lab's admin credentials: services,
/// regions and endpoints, for `lab up` and for tests that need a catalog entry of their own.
pub struct KeystoneAdmin {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    base: String,
    token: nfvi_suite_kolla::Secret,
    /// The admin project's id.
    pub project: String,
    /// The openrc's region.
    pub region: String,
}

impl KeystoneAdmin {
    /// A token from the lab's `admin-openrc.sh`.
    pub fn connect() -> Result<Self, String> {
        let text = std::fs::read_to_string(lab::OPENRC)
            .map_err(|e| format!("cannot read {}: {e}", lab::OPENRC))?;
        let creds = nfvi_suite_kolla::Credentials::from_vars(
            &nfvi_suite_kolla::parse_openrc(&text, lab::OPENRC)?,
            lab::OPENRC,
        )?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start a runtime: {e}"))?;
        let (http, token, project) = rt.block_on(nfvi_suite_kolla::project_token(&creds))?;
        Ok(Self {
            rt,
            http,
            base: creds.auth_url.clone(),
            token,
            project,
            region: creds.region.unwrap_or_else(|| "RegionOne".to_owned()),
        })
    }

    fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let mut req = self
            .http
            .request(method.clone(), &url)
            .header("X-Auth-Token", self.token.expose());
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.rt.block_on(async {
            let resp = req
                .send()
                .await
                .map_err(|e| format!("{method} {url}: {e}"))?;
            let status = resp.status();
            if status == reqwest::StatusCode::NO_CONTENT {
                return Ok(Value::Null);
            }
            let v: Value = resp
                .json()
                .await
                .map_err(|e| format!("{method} {url}: {e}"))?;
            if status.is_success() {
                Ok(v)
            } else {
                Err(format!("{method} {url} answered {status}: {v}"))
            }
        })
    }

    /// The id of the service of this type, created when missing.
    pub fn service(&self, service_type: &str, name: &str) -> Result<String, String> {
        let found = self.call(
            reqwest::Method::GET,
            &format!("/services?type={service_type}"),
            None,
        )?;
        if let Some(id) = found["services"][0]["id"].as_str() {
            return Ok(id.to_owned());
        }
        let made = self.call(
            reqwest::Method::POST,
            "/services",
            Some(json!({"service": {"type": service_type, "name": name, "enabled": true}})),
        )?;
        made["service"]["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "Keystone created a service without an id".to_owned())
    }

    /// Creates a region when missing.
    pub fn region(&self, id: &str) -> Result<(), String> {
        if self
            .call(reqwest::Method::GET, &format!("/regions/{id}"), None)
            .is_ok()
        {
            return Ok(());
        }
        self.call(
            reqwest::Method::POST,
            "/regions",
            Some(json!({"region": {"id": id, "description": "nfvi-verify"}})),
        )
        .map(drop)
    }

    /// The service's endpoint on this interface and region: (its id, whether it was added).
    pub fn endpoint(
        &self,
        service: &str,
        interface: &str,
        region: &str,
        url: &str,
    ) -> Result<(String, bool), String> {
        let have = self.call(
            reqwest::Method::GET,
            &format!("/endpoints?service_id={service}&interface={interface}&region_id={region}"),
            None,
        )?;
        if let Some(id) = have["endpoints"][0]["id"].as_str() {
            return Ok((id.to_owned(), false));
        }
        let made = self.call(
            reqwest::Method::POST,
            "/endpoints",
            Some(json!({"endpoint": {"service_id": service, "interface": interface, "url": url, "region_id": region, "enabled": true}})),
        )?;
        made["endpoint"]["id"]
            .as_str()
            .map(|id| (id.to_owned(), true))
            .ok_or_else(|| "Keystone created an endpoint without an id".to_owned())
    }

    /// Deletes an endpoint.
    pub fn delete_endpoint(&self, id: &str) -> Result<(), String> {
        self.call(reqwest::Method::DELETE, &format!("/endpoints/{id}"), None)
            .map(drop)
    }

    /// Deletes a region (its endpoints first).
    pub fn delete_region(&self, id: &str) -> Result<(), String> {
        let eps = self.call(
            reqwest::Method::GET,
            &format!("/endpoints?region_id={id}"),
            None,
        )?;
        for ep in eps["endpoints"].as_array().into_iter().flatten() {
            if let Some(e) = ep["id"].as_str() {
                self.delete_endpoint(e)?;
            }
        }
        self.call(reqwest::Method::DELETE, &format!("/regions/{id}"), None)
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_document_is_json_without_single_quotes() {
        for a in APIS {
            for (path, doc) in documents(a) {
                let text = doc.to_string();
                assert!(!text.contains('\''), "{path}: {text}");
                assert!(doc.is_object());
            }
            let cmd = api_command(a.container).unwrap();
            assert!(cmd.contains(&format!("127.0.0.1:{}", a.port)), "{cmd}");
        }
        assert!(api_command("cron").is_none());
        // Every stand-in marks itself as one, naming what it stands in for.
        let nova = api_command("nova_api").unwrap();
        assert!(
            nova.contains(r#"'{"nfvi_lab_stand_in":"compute"}' > /tmp/www/nfvi-lab-stand-in"#),
            "{nova}"
        );
        let horizon = dashboard_command("horizon").unwrap();
        assert!(horizon.contains("nfvi-lab-stand-in"), "{horizon}");
    }

    #[test]
    fn the_live_documents_are_generated_from_heartbeats() {
        let nova = api_command("nova_api").unwrap();
        assert!(nova.contains("/heartbeats/nova-*"), "{nova}");
        assert!(nova.contains(&format!("-gt {SERVICE_DOWN_SECS}")), "{nova}");
        assert!(nova.contains("v2.1/os-services"));
        let neutron = api_command("neutron_server").unwrap();
        assert!(neutron.contains("/heartbeats/neutron-*-agent"), "{neutron}");
        let hb = heartbeat_command("nova_compute", 5672);
        assert!(hb.contains("touch /heartbeats/nova-compute"), "{hb}");
    }
}
