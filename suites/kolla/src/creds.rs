//! OpenStack credentials from `OS_*` variables, a cloud in `clouds.yaml`, or an openrc file.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;

use crate::OpenStackConfig as OpenStackTarget;

use crate::http::Tls;
use serde::Deserialize;

/// A secret that never prints.
#[derive(Clone)]
pub struct Secret(String);

/// Wraps a value as a [`Secret`].
pub(crate) fn secret(s: &str) -> Secret {
    Secret(s.to_owned())
}

impl Secret {
    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// What is needed to get a project-scoped token.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// Identity endpoint, normally ending in /v3.
    pub auth_url: String,
    /// User name.
    pub username: String,
    /// Password.
    pub password: Secret,
    /// Project name.
    pub project: String,
    /// User domain name.
    pub user_domain: String,
    /// Project domain name.
    pub project_domain: String,
    /// Endpoint interface to use from the catalog (`internal`, as Kolla's CLI default, or `public`).
    pub interface: String,
    /// Region, if any.
    pub region: Option<String>,
    /// How servers are trusted (`OS_CACERT` / `cacert`, `OS_INSECURE` / `verify: false`).
    pub tls: Tls,
    /// Where they came from, for messages.
    pub source: String,
}

/// Parses the `OS_*` assignments of an openrc file (`export OS_NAME=VALUE` or
/// `OS_NAME=VALUE`), each value unquoted as the shell would (shlex: single and double quotes,
/// `'\''`, backslashes); other lines (comments, `PATH=...`, shell code) are ignored. A value
/// the shell would reject (an unterminated quote, a trailing backslash) or that is more than
/// one word is an error naming `path` and the line, never the value. Expansions (`$X`,
/// `` `cmd` ``) are not evaluated: they stay as written.
pub fn parse_openrc(text: &str, path: &str) -> Result<HashMap<String, String>, String> {
    let mut vars = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        let assignment = line
            .strip_prefix("export")
            .filter(|rest| rest.starts_with([' ', '\t']))
            .map_or(line, str::trim_start);
        let Some((name, value)) = assignment.split_once('=') else {
            continue;
        };
        let is_name =
            name.starts_with("OS_") && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !is_name {
            continue;
        }
        let at = || format!("{path}:{}: {name}", n + 1);
        let mut words = shlex::Shlex::new(value);
        let value = words.next().unwrap_or_default();
        let more = words.next().is_some();
        if words.had_error {
            return Err(format!(
                "{}: the value has an unterminated quote or ends in a backslash",
                at()
            ));
        }
        if more {
            return Err(format!(
                "{}: the value is more than one word; quote it",
                at()
            ));
        }
        vars.insert(name.to_owned(), value);
    }
    Ok(vars)
}

/// Where the credentials come from.
pub(crate) enum Source {
    /// `OS_AUTH_URL` and the other `OS_*` variables.
    Environment,
    /// A cloud of clouds.yaml (`OS_CLOUD`, else `openstack.cloud`).
    Cloud(String),
    /// An openrc file (`openstack.openrc`).
    Openrc(String),
}

/// Where the credentials would come from, in the order [`Credentials::discover`] reads
/// them; the error says how to provide some.
pub(crate) fn locate(os: &OpenStackTarget) -> Result<Source, String> {
    if std::env::var_os("OS_AUTH_URL").is_some() {
        return Ok(Source::Environment);
    }
    let cloud = std::env::var("OS_CLOUD")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| os.cloud.clone());
    // A named cloud counts: the check reports a missing or broken clouds.yaml itself.
    if let Some(cloud) = cloud {
        return Ok(Source::Cloud(cloud));
    }
    if let Some(openrc) = os
        .openrc
        .as_ref()
        .filter(|p| std::path::Path::new(p).is_file())
    {
        return Ok(Source::Openrc(openrc.clone()));
    }
    Err("no OpenStack credentials: source an openrc (OS_AUTH_URL), name a cloud (OS_CLOUD or openstack.cloud), set openstack.openrc in the target file, or run `nfvi-verify lab up`".to_owned())
}

impl Credentials {
    /// From variables (OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME, ...).
    pub fn from_vars(vars: &HashMap<String, String>, source: &str) -> Result<Self, String> {
        let get = |k: &str| vars.get(k).filter(|v| !v.is_empty()).cloned();
        let need = |k: &str| get(k).ok_or_else(|| format!("{source} does not set {k}"));
        Ok(Self {
            auth_url: need("OS_AUTH_URL")?.trim_end_matches('/').to_owned(),
            username: need("OS_USERNAME")?,
            password: Secret(need("OS_PASSWORD")?),
            project: need("OS_PROJECT_NAME")?,
            user_domain: get("OS_USER_DOMAIN_NAME").unwrap_or_else(|| "Default".to_owned()),
            project_domain: get("OS_PROJECT_DOMAIN_NAME").unwrap_or_else(|| "Default".to_owned()),
            interface: get("OS_INTERFACE")
                .unwrap_or_else(|| "internal".to_owned())
                .trim_end_matches("URL")
                .to_owned(),
            region: get("OS_REGION_NAME"),
            tls: Tls {
                cacert: get("OS_CACERT"),
                insecure: get("OS_INSECURE").is_some_and(|v| {
                    matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes")
                }),
            },
            source: source.to_owned(),
        })
    }

    /// The target file's settings over whatever the credentials said: `openstack.interface`,
    /// `openstack.cacert`, `openstack.insecure`.
    pub fn with_target(mut self, os: &OpenStackTarget) -> Self {
        if let Some(interface) = &os.interface {
            self.interface = interface.clone();
        }
        if let Some(cacert) = &os.cacert {
            self.tls.cacert = Some(cacert.clone());
        }
        if os.insecure {
            self.tls.insecure = true;
        }
        self
    }

    /// In this order: the environment when `OS_AUTH_URL` is set; the cloud named by
    /// `OS_CLOUD` or `openstack.cloud` in clouds.yaml; the openrc file.
    pub fn discover(os: &OpenStackTarget) -> Result<Self, String> {
        let openrc = match locate(os)? {
            Source::Environment => {
                let vars: HashMap<String, String> = std::env::vars()
                    .filter(|(k, _)| k.starts_with("OS_"))
                    .collect();
                return Self::from_vars(&vars, "the OS_* environment");
            }
            Source::Cloud(cloud) => {
                return Self::from_clouds_yaml(os.clouds_yaml.as_deref(), &cloud);
            }
            Source::Openrc(openrc) => openrc,
        };
        let text =
            std::fs::read_to_string(&openrc).map_err(|e| format!("cannot read {openrc}: {e}"))?;
        Self::from_vars(&parse_openrc(&text, &openrc)?, &openrc)
    }

    /// A cloud from clouds.yaml: `path`, or the first of openstacksdk's search path.
    pub fn from_clouds_yaml(path: Option<&str>, cloud: &str) -> Result<Self, String> {
        let path = if let Some(path) = path {
            PathBuf::from(path)
        } else {
            let candidates = clouds_yaml_search_path();
            candidates
                .iter()
                .find(|p| p.is_file())
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "cloud `{cloud}` was asked for, but there is no clouds.yaml in {}; set openstack.clouds_yaml",
                        candidates
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?
        };
        let shown = path.display().to_string();
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("cannot read {shown}: {e}"))?;
        parse_clouds_yaml(&text, &shown, cloud)
    }
}

/// openstacksdk's search order for clouds.yaml.
fn clouds_yaml_search_path() -> Vec<PathBuf> {
    let mut v = vec![PathBuf::from("clouds.yaml")];
    if let Some(home) = std::env::var_os("HOME") {
        v.push(PathBuf::from(home).join(".config/openstack/clouds.yaml"));
    }
    v.push(PathBuf::from("/etc/openstack/clouds.yaml"));
    v
}

#[derive(Deserialize)]
struct CloudsFile {
    clouds: BTreeMap<String, Cloud>,
}

#[derive(Deserialize)]
struct Cloud {
    auth: CloudAuth,
    region_name: Option<String>,
    interface: Option<String>,
    cacert: Option<String>,
    verify: Option<bool>,
}

#[derive(Deserialize)]
struct CloudAuth {
    auth_url: Option<String>,
    username: Option<String>,
    password: Option<String>,
    project_name: Option<String>,
    user_domain_name: Option<String>,
    project_domain_name: Option<String>,
}

/// Parses clouds.yaml text and picks `cloud`; errors name the file, line and column.
pub fn parse_clouds_yaml(text: &str, path: &str, cloud: &str) -> Result<Credentials, String> {
    let file: CloudsFile = serde_norway::from_str(text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(":{}:{}", l.line(), l.column()))
            .unwrap_or_default();
        format!("{path}{at}: not a valid clouds.yaml: {e}")
    })?;
    let Some(c) = file.clouds.get(cloud) else {
        return Err(format!(
            "{path} has no cloud `{cloud}`; it has: {}",
            file.clouds.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    };
    let source = format!("cloud `{cloud}` in {path}");
    let need = |v: &Option<String>, key: &str| {
        v.clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("{source} does not set auth.{key}"))
    };
    let a = &c.auth;
    Ok(Credentials {
        auth_url: need(&a.auth_url, "auth_url")?
            .trim_end_matches('/')
            .to_owned(),
        username: need(&a.username, "username")?,
        password: Secret(need(&a.password, "password")?),
        project: need(&a.project_name, "project_name")?,
        user_domain: a
            .user_domain_name
            .clone()
            .unwrap_or_else(|| "Default".to_owned()),
        project_domain: a
            .project_domain_name
            .clone()
            .unwrap_or_else(|| "Default".to_owned()),
        interface: c.interface.clone().unwrap_or_else(|| "internal".to_owned()),
        region: c.region_name.clone(),
        tls: Tls {
            cacert: c.cacert.clone().filter(|s| !s.is_empty()),
            insecure: c.verify == Some(false),
        },
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openrc_files_parse_and_passwords_do_not_print() {
        let vars = parse_openrc(
            "# comment\nexport OS_AUTH_URL=http://127.0.0.1:5000/v3/\nexport OS_USERNAME=admin\nexport OS_PASSWORD='s3cret'\nexport OS_PROJECT_NAME=\"admin\"\nexport OS_INTERFACE=internalURL\nPATH=/bin\n",
            "rc",
        )
        .unwrap();
        let c = Credentials::from_vars(&vars, "rc").unwrap();
        assert_eq!(c.auth_url, "http://127.0.0.1:5000/v3");
        assert_eq!(c.password.expose(), "s3cret");
        assert_eq!(c.interface, "internal");
        assert!(!format!("{c:?}").contains("s3cret"));
        assert_eq!(c.tls, Tls::default());
        let mut vars = vars;
        vars.insert("OS_CACERT".into(), "/ca.pem".into());
        vars.insert("OS_INSECURE".into(), "True".into());
        let c = Credentials::from_vars(&vars, "rc").unwrap();
        assert_eq!(c.tls.cacert.as_deref(), Some("/ca.pem"));
        assert!(c.tls.insecure);
        let os = OpenStackTarget {
            interface: Some("public".into()),
            cacert: Some("/other.pem".into()),
            ..Default::default()
        };
        let c = c.with_target(&os);
        assert_eq!(
            (c.interface.as_str(), c.tls.cacert.as_deref()),
            ("public", Some("/other.pem"))
        );
        let err =
            Credentials::from_vars(&parse_openrc("export OS_AUTH_URL=x\n", "rc").unwrap(), "rc")
                .unwrap_err();
        assert_eq!(err, "rc does not set OS_USERNAME");
    }

    #[test]
    fn openrc_values_are_unquoted_as_the_shell_does() {
        let text = concat!(
            "# Ansible managed\n",
            "for key in $( set | awk '{FS=\"=\"}  /^OS_/ {print $1}' ); do unset $key ; done\n",
            "export OS_PASSWORD='it'\\''s \"x\"'\n",
            "export OS_USERNAME=\"ad\\\"min\"\n",
            "OS_PROJECT_NAME='my project'\n",
            "export OS_REGION_NAME=Region\\ One  # a comment\n",
            "export OS_AUTH_URL='http://$HOST:5000/v3'\n",
            "export OS_CACERT=\n",
            "export\tOS_INTERFACE=\"pub\"'lic'\n",
            "exportOS_X=1\n",
            "export OS_BAD-NAME=1\n",
        );
        let vars = parse_openrc(text, "rc").unwrap();
        let get = |k: &str| vars.get(k).map(String::as_str);
        assert_eq!(get("OS_PASSWORD"), Some("it's \"x\""));
        assert_eq!(get("OS_USERNAME"), Some("ad\"min"));
        assert_eq!(get("OS_PROJECT_NAME"), Some("my project"));
        assert_eq!(get("OS_REGION_NAME"), Some("Region One"));
        assert_eq!(get("OS_AUTH_URL"), Some("http://$HOST:5000/v3"));
        assert_eq!(get("OS_CACERT"), Some(""));
        assert_eq!(get("OS_INTERFACE"), Some("public"));
        assert_eq!(vars.len(), 7, "{:?}", vars.keys());
        let c = Credentials::from_vars(&vars, "rc").unwrap();
        assert_eq!(c.password.expose(), "it's \"x\"");

        // What the shell would reject is an error naming the file and line, not the value.
        for (bad, why) in [
            ("export OS_PASSWORD='s3cret\n", "unterminated quote"),
            ("export OS_PASSWORD=\"s3cret\n", "unterminated quote"),
            ("export OS_PASSWORD=s3cret\\\n", "ends in a backslash"),
            ("export OS_PASSWORD=s3cret 'x\n", "unterminated quote"),
            ("export OS_PASSWORD=s3cret more\n", "more than one word"),
        ] {
            let err =
                parse_openrc(&format!("# rc\n{bad}"), "/etc/kolla/admin-openrc.sh").unwrap_err();
            assert!(
                err.starts_with("/etc/kolla/admin-openrc.sh:2: OS_PASSWORD: ") && err.contains(why),
                "{bad:?}: {err}"
            );
            assert!(!err.contains("s3cret"), "{err}");
        }
    }

    #[test]
    fn clouds_yaml_picks_the_cloud_and_names_bad_lines() {
        let text = "clouds:\n  kolla-admin:\n    auth:\n      auth_url: http://127.0.0.1:5000/v3\n      username: admin\n      password: 'pw'\n      project_name: admin\n    region_name: RegionOne\n    interface: public\n";
        let c = parse_clouds_yaml(text, "c.yaml", "kolla-admin").unwrap();
        assert_eq!(c.auth_url, "http://127.0.0.1:5000/v3");
        assert_eq!(c.tls, Tls::default());
        let tls = parse_clouds_yaml(
            &format!("{text}    cacert: /etc/kolla/certificates/ca/root.crt\n    verify: false\n"),
            "c.yaml",
            "kolla-admin",
        )
        .unwrap()
        .tls;
        assert_eq!(
            tls.cacert.as_deref(),
            Some("/etc/kolla/certificates/ca/root.crt")
        );
        assert!(tls.insecure);
        assert_eq!(c.interface, "public");
        assert_eq!(c.region.as_deref(), Some("RegionOne"));
        assert_eq!(c.user_domain, "Default");
        let err = parse_clouds_yaml(text, "c.yaml", "other").unwrap_err();
        assert_eq!(err, "c.yaml has no cloud `other`; it has: kolla-admin");
        let err = parse_clouds_yaml("clouds:\n  a: [unclosed\n", "c.yaml", "a").unwrap_err();
        assert!(
            err.starts_with("c.yaml:") && err.contains("not a valid clouds.yaml"),
            "{err}"
        );
        let err = parse_clouds_yaml(
            "clouds:\n  a:\n    auth:\n      auth_url: x\n",
            "c.yaml",
            "a",
        )
        .unwrap_err();
        assert_eq!(err, "cloud `a` in c.yaml does not set auth.username");
    }
}
