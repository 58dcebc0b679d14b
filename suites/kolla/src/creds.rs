//! OpenStack credentials from `OS_*` variables or an openrc file.

use std::collections::HashMap;
use std::fmt;

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
    /// Where they came from, for messages.
    pub source: String,
}

/// Parses `export KEY=VALUE` lines (quotes stripped; comments and other lines ignored).
pub fn parse_openrc(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("export ").or(Some(l.trim())))
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.starts_with("OS_"))
        .map(|(k, v)| {
            (
                k.trim().to_owned(),
                v.trim().trim_matches(|c| c == '\'' || c == '"').to_owned(),
            )
        })
        .collect()
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
            source: source.to_owned(),
        })
    }

    /// The environment when OS_AUTH_URL is set, else the openrc file.
    pub fn discover(openrc: &str) -> Result<Self, String> {
        if std::env::var_os("OS_AUTH_URL").is_some() {
            let vars: HashMap<String, String> = std::env::vars()
                .filter(|(k, _)| k.starts_with("OS_"))
                .collect();
            return Self::from_vars(&vars, "the OS_* environment");
        }
        if openrc.is_empty() {
            return Err("no OpenStack credentials: source an openrc (OS_AUTH_URL) or set openstack.openrc in the target file".to_owned());
        }
        let text =
            std::fs::read_to_string(openrc).map_err(|e| format!("cannot read {openrc}: {e}"))?;
        Self::from_vars(&parse_openrc(&text), openrc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openrc_files_parse_and_passwords_do_not_print() {
        let vars = parse_openrc(
            "# comment\nexport OS_AUTH_URL=http://127.0.0.1:5000/v3/\nexport OS_USERNAME=admin\nexport OS_PASSWORD='s3cret'\nexport OS_PROJECT_NAME=\"admin\"\nexport OS_INTERFACE=internalURL\nPATH=/bin\n",
        );
        let c = Credentials::from_vars(&vars, "rc").unwrap();
        assert_eq!(c.auth_url, "http://127.0.0.1:5000/v3");
        assert_eq!(c.password.expose(), "s3cret");
        assert_eq!(c.interface, "internal");
        assert!(!format!("{c:?}").contains("s3cret"));
        let err =
            Credentials::from_vars(&parse_openrc("export OS_AUTH_URL=x\n"), "rc").unwrap_err();
        assert_eq!(err, "rc does not set OS_USERNAME");
    }
}
