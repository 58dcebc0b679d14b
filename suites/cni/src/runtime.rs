//! The harness as a CNI runtime: executes a network configuration list the way libcni does,
//! obeying the runtime-side obligations of the spec (CNI-RT-*):
//!
//! - RT-001/002: container namespaces exist before any plugin runs; plugins run in the
//!   runtime's networking domain with CNI_PATH set ([`Lab`]).
//! - RT-003: every request gets the negotiated `cniVersion` and the list's `name`;
//!   `capabilities` is removed and `runtimeConfig` holds only the capability arguments the
//!   plugin declares.
//! - RT-004: ADD runs the plugins in order, each with the previous result as `prevResult`
//!   (none for the first), and stops at the first error.
//! - RT-005: DEL runs in reverse order with the cached final result as `prevResult`.
//! - RT-006: CHECK runs in order with the cached final result, never before ADD or after DEL,
//!   and not at all when the list sets `disableCheck`.
//! - RT-007: the final ADD result is cached and the cache entry deleted after a successful DEL.
//! - RT-009: the version is the highest of `cniVersion`/`cniVersions` every plugin supports.
//! - RT-010: no second ADD for an attachment without DEL; container ID, interface name and
//!   network name are validated before any plugin runs.

use serde_json::{Map, Value, json};

use crate::lab::{Env, Exec, Lab, Netns};

/// One plugin invocation of a list operation.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub(crate) request: Value,
    pub(crate) exec: Exec,
}

/// An attachment: which container, which interface, and the capability arguments the
/// runtime offers (`mac`, `portMappings`, `bandwidth`, `ips`...).
#[derive(Debug, Clone)]
pub(crate) struct Attachment {
    pub(crate) container_id: String,
    pub(crate) ns: Netns,
    pub(crate) ifname: String,
    pub(crate) capability_args: Value,
}

/// Why the runtime refused or failed an operation.
#[derive(Debug, Clone)]
pub(crate) enum RuntimeError {
    /// The runtime itself refused (invalid parameters, double ADD, CHECK before ADD).
    Refused(String),
    /// A plugin failed; the steps run so far, the last one failed.
    Plugin(Vec<Step>),
}

impl RuntimeError {
    pub(crate) fn describe(&self) -> String {
        match self {
            RuntimeError::Refused(why) => format!("runtime refused: {why}"),
            RuntimeError::Plugin(steps) => steps
                .last()
                .map_or("no step ran".to_owned(), |s| s.exec.describe()),
        }
    }
}

fn valid_container_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
}

/// The list's network name, validated as libcni does.
fn network_name(list: &Value) -> Result<String, RuntimeError> {
    let name = list["name"].as_str().unwrap_or_default();
    if valid_container_id(name) {
        Ok(name.to_owned())
    } else {
        Err(RuntimeError::Refused(format!(
            "invalid network name {name:?}"
        )))
    }
}

pub(crate) struct Runtime<'l, 'a> {
    lab: &'l Lab<'a>,
}

impl<'l, 'a> Runtime<'l, 'a> {
    pub(crate) fn new(lab: &'l Lab<'a>) -> Self {
        Self { lab }
    }

    fn cache_path(&self, net: &str, att: &Attachment) -> std::path::PathBuf {
        self.lab
            .dir
            .join("results")
            .join(format!("{net}-{}-{}", att.container_id, att.ifname))
    }

    /// The cached final ADD result of an attachment.
    pub(crate) fn cached(&self, list: &Value, att: &Attachment) -> Option<Value> {
        let net = network_name(list).ok()?;
        let text = std::fs::read_to_string(self.cache_path(&net, att)).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn validate(&self, list: &Value, att: &Attachment) -> Result<String, RuntimeError> {
        if !valid_container_id(&att.container_id) {
            return Err(RuntimeError::Refused(format!(
                "invalid container ID {:?}",
                att.container_id
            )));
        }
        if !valid_ifname(&att.ifname) {
            return Err(RuntimeError::Refused(format!(
                "invalid interface name {:?}",
                att.ifname
            )));
        }
        network_name(list)
    }

    /// RT-009: the highest version listed by the config that every plugin supports.
    pub(crate) async fn negotiate(&self, list: &Value) -> Result<String, RuntimeError> {
        let mut wanted: Vec<String> = list["cniVersions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(v) = list["cniVersion"].as_str() {
            wanted.push(v.to_owned());
        }
        let mut supported_by_all: Option<Vec<String>> = None;
        for p in list["plugins"].as_array().into_iter().flatten() {
            let plugin = p["type"].as_str().unwrap_or_default();
            let s = crate::assertions::supported_versions(self.lab, plugin)
                .await
                .map_err(|o| {
                    RuntimeError::Refused(format!("VERSION of {plugin} failed: {}", o.message))
                })?;
            supported_by_all = Some(match supported_by_all {
                None => s,
                Some(prev) => prev.into_iter().filter(|v| s.contains(v)).collect(),
            });
        }
        let all = supported_by_all.unwrap_or_default();
        pick_version(wanted, &all).ok_or_else(|| {
            RuntimeError::Refused(format!(
                "no version of the list is supported by every plugin (common: {all:?})"
            ))
        })
    }

    fn env(&self, command: &str, att: &Attachment) -> Env {
        self.lab
            .env(command, &att.ns, &att.container_id, &att.ifname)
    }

    /// RT-004, RT-007, RT-010.
    pub(crate) async fn add(
        &self,
        list: &Value,
        att: &Attachment,
    ) -> Result<(Value, Vec<Step>), RuntimeError> {
        let net = self.validate(list, att)?;
        if self.cache_path(&net, att).exists() {
            return Err(RuntimeError::Refused(format!(
                "attachment {}/{} of {net} is already added; DEL it first",
                att.container_id, att.ifname
            )));
        }
        let version = self.negotiate(list).await?;
        let mut steps = Vec::new();
        let mut prev: Option<Value> = None;
        for plugin in list["plugins"].as_array().into_iter().flatten() {
            let request = request(list, plugin, &version, prev.as_ref(), &att.capability_args);
            let kind = plugin["type"].as_str().unwrap_or_default();
            let exec = self.lab.exec(kind, &self.env("ADD", att), &request).await;
            let result = if exec.ok() {
                exec.json().cloned()
            } else {
                None
            };
            steps.push(Step { request, exec });
            match result {
                Some(r) => prev = Some(r),
                None => return Err(RuntimeError::Plugin(steps)),
            }
        }
        let result = prev.unwrap_or_else(|| json!({"cniVersion": version}));
        let path = self.cache_path(&net, att);
        std::fs::create_dir_all(path.parent().expect("cache dir"))
            .map_err(|e| RuntimeError::Refused(e.to_string()))?;
        std::fs::write(&path, result.to_string())
            .map_err(|e| RuntimeError::Refused(e.to_string()))?;
        Ok((result, steps))
    }

    /// RT-006.
    pub(crate) async fn check(
        &self,
        list: &Value,
        att: &Attachment,
    ) -> Result<Vec<Step>, RuntimeError> {
        let net = self.validate(list, att)?;
        if list["disableCheck"].as_bool() == Some(true) {
            return Ok(Vec::new());
        }
        let Some(cached) = self.cached(list, att) else {
            return Err(RuntimeError::Refused(format!(
                "no cached ADD result for {}/{} of {net}: CHECK needs a prior ADD",
                att.container_id, att.ifname
            )));
        };
        let version = cached["cniVersion"].as_str().unwrap_or("1.0.0").to_owned();
        let mut steps = Vec::new();
        for plugin in list["plugins"].as_array().into_iter().flatten() {
            let request = request(list, plugin, &version, Some(&cached), &att.capability_args);
            let kind = plugin["type"].as_str().unwrap_or_default();
            let exec = self.lab.exec(kind, &self.env("CHECK", att), &request).await;
            let ok = exec.ok();
            steps.push(Step { request, exec });
            if !ok {
                return Err(RuntimeError::Plugin(steps));
            }
        }
        Ok(steps)
    }

    /// RT-005, RT-007.
    pub(crate) async fn del(
        &self,
        list: &Value,
        att: &Attachment,
    ) -> Result<Vec<Step>, RuntimeError> {
        let net = self.validate(list, att)?;
        let cached = self.cached(list, att);
        let version = match cached.as_ref().and_then(|c| c["cniVersion"].as_str()) {
            Some(v) => v.to_owned(),
            None => self.negotiate(list).await?,
        };
        let mut steps = Vec::new();
        let plugins: Vec<&Value> = list["plugins"].as_array().into_iter().flatten().collect();
        for plugin in plugins.into_iter().rev() {
            let request = request(
                list,
                plugin,
                &version,
                cached.as_ref(),
                &att.capability_args,
            );
            let kind = plugin["type"].as_str().unwrap_or_default();
            let exec = self.lab.exec(kind, &self.env("DEL", att), &request).await;
            let ok = exec.ok();
            steps.push(Step { request, exec });
            if !ok {
                return Err(RuntimeError::Plugin(steps));
            }
        }
        let _ = std::fs::remove_file(self.cache_path(&net, att));
        Ok(steps)
    }
}

/// RT-003: the request configuration for one plugin of the list.
pub(crate) fn request(
    list: &Value,
    plugin: &Value,
    version: &str,
    prev: Option<&Value>,
    caps: &Value,
) -> Value {
    let mut req: Map<String, Value> = plugin.as_object().cloned().unwrap_or_default();
    req.insert("cniVersion".into(), version.into());
    req.insert("name".into(), list["name"].clone());
    let declared = req.remove("capabilities");
    let mut runtime_config = Map::new();
    if let (Some(declared), Some(offered)) = (
        declared.as_ref().and_then(Value::as_object),
        caps.as_object(),
    ) {
        for (k, v) in offered {
            if declared.get(k).and_then(Value::as_bool) == Some(true) {
                runtime_config.insert(k.clone(), v.clone());
            }
        }
    }
    if runtime_config.is_empty() {
        req.remove("runtimeConfig");
    } else {
        req.insert("runtimeConfig".into(), Value::Object(runtime_config));
    }
    match prev {
        Some(p) => req.insert("prevResult".into(), p.clone()),
        None => req.remove("prevResult"),
    };
    Value::Object(req)
}

/// RT-009: the highest wanted version that every plugin supports.
pub(crate) fn pick_version(mut wanted: Vec<String>, supported_by_all: &[String]) -> Option<String> {
    wanted.sort_by_key(|v| version_key(v));
    wanted.dedup();
    wanted
        .into_iter()
        .rev()
        .find(|v| supported_by_all.contains(v))
}

/// Orders versions numerically ("0.10.0" after "0.4.0").
pub(crate) fn version_key(v: &str) -> Vec<u32> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated_like_libcni() {
        assert!(valid_container_id("A1_b.c-D"));
        for bad in ["-lead", "has/slash", "has space", "", "ümlaut"] {
            assert!(!valid_container_id(bad), "{bad}");
        }
        assert!(valid_ifname("abcdefghijklmno"));
        for bad in ["abcdefghijklmnop", "a/b", "a:b", "a b", ".", "..", ""] {
            assert!(!valid_ifname(bad), "{bad:?}");
        }
    }

    #[test]
    fn requests_follow_rt_003() {
        let list = json!({"name": "net", "cniVersion": "1.0.0", "plugins": []});
        let plugin = json!({"type": "tuning", "capabilities": {"mac": true}, "runtimeConfig": {"stale": 1}, "prevResult": {"old": 1}});
        let caps = json!({"mac": "0e:00:00:00:00:01", "portMappings": [{"hostPort": 1}]});
        let first = request(&list, &plugin, "1.0.0", None, &caps);
        assert_eq!(first["cniVersion"], "1.0.0");
        assert_eq!(first["name"], "net");
        assert!(
            first.get("capabilities").is_none(),
            "capabilities must be stripped"
        );
        assert_eq!(
            first["runtimeConfig"],
            json!({"mac": "0e:00:00:00:00:01"}),
            "only declared capabilities"
        );
        assert!(
            first.get("prevResult").is_none(),
            "no prevResult for the first plugin"
        );
        let prev = json!({"cniVersion": "1.0.0"});
        let second = request(
            &list,
            &json!({"type": "bridge"}),
            "1.0.0",
            Some(&prev),
            &caps,
        );
        assert_eq!(second["prevResult"], prev);
        assert!(
            second.get("runtimeConfig").is_none(),
            "no capability declared, no runtimeConfig"
        );
    }

    #[test]
    fn the_highest_common_version_is_picked() {
        let all = vec!["0.4.0".to_owned(), "1.0.0".to_owned()];
        let wanted = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            pick_version(wanted(&["1.1.0", "1.0.0", "0.4.0"]), &all).as_deref(),
            Some("1.0.0")
        );
        assert_eq!(pick_version(wanted(&["1.1.0"]), &all), None);
    }

    #[test]
    fn versions_order_numerically() {
        let mut v = vec!["1.0.0", "0.10.0", "0.4.0"];
        v.sort_by_key(|s| version_key(s));
        assert_eq!(v, ["0.4.0", "0.10.0", "1.0.0"]);
    }
}
