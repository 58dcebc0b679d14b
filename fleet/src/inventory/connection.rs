//! How to reach one host: Ansible's behavioural inventory variables, read and checked.

use std::path::PathBuf;

use super::{Host, InventoryError, pattern};

/// How the jump host reaches one node, from its `ansible_*` variables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Connection {
    /// The inventory name.
    pub name: String,
    /// `ansible_host` (legacy `ansible_ssh_host`), else the name.
    pub address: String,
    /// `ansible_port` (legacy `ansible_ssh_port`); `None`: ssh's own (from ~/.ssh/config or 22).
    pub port: Option<u16>,
    /// `ansible_user` (legacy `ansible_ssh_user`); `None`: ssh's own.
    pub user: Option<String>,
    /// `ansible_ssh_private_key_file` (legacy `ansible_private_key_file`).
    pub key_file: Option<PathBuf>,
    /// `ansible_become`: run the agent through `sudo -n`.
    pub become_root: bool,
    /// `ansible_become_user`; `None`: root.
    pub become_user: Option<String>,
    /// `ansible_ssh_common_args`, split as a shell would.
    pub common_args: Vec<String>,
    /// `ansible_ssh_extra_args`, split as a shell would.
    pub extra_args: Vec<String>,
    /// `ansible_connection=local`: the node is the jump host itself; no ssh.
    pub local: bool,
}

impl Connection {
    /// Reads the host's connection variables; `file` names the inventory in errors, which
    /// point at the line that set the variable.
    pub fn of(host: &Host, file: &str) -> Result<Self, InventoryError> {
        let get = |keys: &[&'static str]| -> Option<(&'static str, &super::Var)> {
            keys.iter().find_map(|k| host.vars.get(*k).map(|v| (*k, v)))
        };
        let err = |line: usize, message: String| InventoryError {
            file: file.to_owned(),
            line: Some(line),
            message: format!("host `{}`: {message}", host.name),
        };
        let address = match get(&["ansible_host", "ansible_ssh_host"]) {
            Some((key, v)) => {
                pattern::checked_name(&v.value).map_err(|m| err(v.line, format!("{key}: {m}")))?
            }
            None => host.name.clone(),
        };
        let port = match get(&["ansible_port", "ansible_ssh_port"]) {
            Some((key, v)) => Some(v.value.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(
                || {
                    err(
                        v.line,
                        format!("{key}=`{}` is not a port; expected 1 to 65535", v.value),
                    )
                },
            )?),
            None => None,
        };
        let plain = |keys: &[&'static str]| -> Result<Option<String>, InventoryError> {
            match get(keys) {
                None => Ok(None),
                Some((key, v)) if v.value.is_empty() || v.value.starts_with('-') => Err(err(
                    v.line,
                    format!("{key}=`{}` is not usable; expected a name", v.value),
                )),
                Some((_, v)) => Ok(Some(v.value.clone())),
            }
        };
        let user = plain(&["ansible_user", "ansible_ssh_user"])?;
        let key_file = plain(&["ansible_ssh_private_key_file", "ansible_private_key_file"])?
            .map(|k| expand_home(&k));
        let become_root = match get(&["ansible_become"]) {
            None => false,
            Some((key, v)) => boolean(&v.value).ok_or_else(|| {
                err(
                    v.line,
                    format!(
                        "{key}=`{}` is not a boolean; expected true or false (yes/no, 1/0)",
                        v.value
                    ),
                )
            })?,
        };
        let become_user = plain(&["ansible_become_user"])?;
        let words = |key: &str| -> Result<Vec<String>, InventoryError> {
            match host.vars.get(key) {
                None => Ok(Vec::new()),
                Some(v) => shlex::split(&v.value).ok_or_else(|| {
                    err(
                        v.line,
                        format!(
                            "{key}=`{}` cannot be split into words (a quote is not closed); \
                             expected ssh options",
                            v.value
                        ),
                    )
                }),
            }
        };
        let common_args = words("ansible_ssh_common_args")?;
        let extra_args = words("ansible_ssh_extra_args")?;
        let local = match get(&["ansible_connection"]) {
            None => false,
            Some((_, v)) if v.value == "ssh" || v.value == "smart" || v.value == "paramiko" => {
                false
            }
            Some((_, v)) if v.value == "local" => true,
            Some((key, v)) => {
                return Err(err(
                    v.line,
                    format!(
                        "{key}=`{}` is not supported; expected ssh (the default) or local",
                        v.value
                    ),
                ));
            }
        };
        Ok(Self {
            name: host.name.clone(),
            address,
            port,
            user,
            key_file,
            become_root,
            become_user,
            common_args,
            extra_args,
            local,
        })
    }

    /// `address:port` for messages (22 when ssh chooses the port).
    pub fn endpoint(&self) -> String {
        let port = self.port.unwrap_or(22);
        if self.address.contains(':') {
            format!("[{}]:{port}", self.address)
        } else {
            format!("{}:{port}", self.address)
        }
    }

    /// The user for messages: the inventory's, else ssh's own choice.
    pub fn user_for_messages(&self) -> String {
        match &self.user {
            Some(u) => format!("`{u}`"),
            None => "the user ssh chose (~/.ssh/config or the local user name)".to_owned(),
        }
    }

    /// Whether the agent needs `sudo`: `ansible_become` is set and the login is not already
    /// the user to become.
    pub fn needs_sudo(&self) -> bool {
        let target = self.become_user.as_deref().unwrap_or("root");
        self.become_root && self.user.as_deref() != Some(target)
    }
}

/// Ansible's booleans, as the ini plugin's `literal_eval` and `boolean()` take them.
fn boolean(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "on" | "1" => Some(true),
        "false" | "no" | "n" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// `~/x` with the jump host's home directory, as Ansible expands key paths.
fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}
