//! Ansible INI inventories, the form Kolla-Ansible's `multinode` ships, read the way
//! ansible-core's `ini` inventory plugin reads them:
//!
//! - `[group]` sections of host lines `name key=value key='quoted value' ...`, split as a
//!   shell splits words (a `#` word starts a comment); hosts before any section are
//!   `ungrouped`; every host is in `all`;
//! - host patterns `compute[01:04]`, `node[a:c]`, `host[1:10:2]` (leading zeros kept) and
//!   `name:port`;
//! - `[group:children]` (a child may be declared later in the file, but must be declared) and
//!   `[group:vars]` (`[all:vars]` too) of `key=value` lines;
//! - comment lines starting with `#` or `;`.
//!
//! Variables: `all:vars` < parent group vars < child group vars < host vars (groups of the
//! same depth in name order, as Ansible). A node's roles are every group it belongs to,
//! directly or through `:children`, except `all` and `ungrouped`, sorted. YAML inventories
//! are not read.

mod connection;
mod pattern;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;

pub use connection::Connection;
pub use pattern::MAX_RANGE_HOSTS;

/// The most hosts an inventory may hold.
pub const MAX_HOSTS: usize = 10_000;
/// The most groups an inventory may hold.
pub const MAX_GROUPS: usize = 10_000;
/// The largest inventory file read.
pub const MAX_FILE_BYTES: u64 = 8 << 20;
/// The most host names all host lines together may expand to (a host named on several
/// lines counts each time).
const MAX_EXPANDED: usize = 200_000;

/// An inventory that cannot be used: the file, the 1-based line when there is one, and what
/// was wrong and expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct InventoryError {
    /// The file, as the user named it.
    pub file: String,
    /// The 1-based line, when the error is on one.
    pub line: Option<usize>,
    /// What is wrong and what was expected.
    pub message: String,
}

/// A variable's value and the line that set it (for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Var {
    /// The value, unquoted.
    pub value: String,
    /// The 1-based line that set it.
    pub line: usize,
}

/// One host of an inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Its inventory name.
    pub name: String,
    /// Its roles: every group it belongs to, directly or through `:children`, except `all`
    /// and `ungrouped`, sorted.
    pub roles: Vec<String>,
    /// The groups that list it on a host line (except `all` and `ungrouped`), sorted.
    pub direct_groups: Vec<String>,
    /// Its variables, after precedence.
    pub vars: BTreeMap<String, Var>,
}

impl Host {
    /// A variable's value.
    pub fn var(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(|v| v.value.as_str())
    }
}

/// A parsed inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    /// The file, as the user named it.
    pub file: String,
    /// Every host, in the order the file first names them.
    pub hosts: Vec<Host>,
}

impl Inventory {
    /// Reads and parses an inventory file.
    pub fn load(path: &Path) -> Result<Self, InventoryError> {
        let file = path.display().to_string();
        let error = |message: String| InventoryError {
            file: file.clone(),
            line: None,
            message,
        };
        let meta = std::fs::metadata(path).map_err(|e| error(format!("cannot read it: {e}")))?;
        trusted(path, &meta).map_err(error)?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(error(format!(
                "it is {} bytes; expected an inventory of at most {MAX_FILE_BYTES} bytes",
                meta.len()
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| error(format!("cannot read it: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..at].iter().filter(|b| **b == b'\n').count() + 1;
            InventoryError {
                file: file.clone(),
                line: Some(line),
                message: "not UTF-8 text; expected an Ansible INI inventory".into(),
            }
        })?;
        parse(&file, &text)
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }
}

/// What a section holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Hosts,
    Children,
    Vars,
}

#[derive(Default)]
struct Group {
    /// Declared by a `[name]` or `[name:children]` section (not by `:vars` alone).
    declared: bool,
    /// The line of a `[name:vars]` section, while the group is not declared.
    vars_line: Option<usize>,
    /// Children and the line naming each.
    children: Vec<(usize, usize)>,
    /// Parents.
    parents: Vec<usize>,
    /// Variables, in file order.
    vars: Vec<(String, Var)>,
}

struct Parser<'a> {
    file: &'a str,
    names: Vec<String>,
    index: HashMap<String, usize>,
    groups: Vec<Group>,
    hosts: Vec<String>,
    host_index: HashMap<String, usize>,
    /// Per host: its groups listing it directly, and its own variables in file order.
    host_groups: Vec<Vec<usize>>,
    host_vars: Vec<Vec<(String, Var)>>,
    expanded: usize,
}

const ALL: usize = 0;
const UNGROUPED: usize = 1;

/// An inventory decides the commands `ssh` runs here (`ansible_ssh_common_args` may hold a
/// ProxyCommand) and where the agent runs as root, so it must be as trusted as the user
/// running nfvi-verify, as ssh's StrictModes asks of its own files: owned by root or by
/// that user, and writable by nobody else (the file and its directory).
fn trusted(path: &Path, meta: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let me = nix::unistd::geteuid().as_raw();
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir_meta = std::fs::metadata(dir).map_err(|e| format!("cannot read its directory: {e}"))?;
    for (what, m, sticky_ok) in [
        ("the file", meta, false),
        ("its directory", &dir_meta, true),
    ] {
        let owner_ok = m.uid() == 0 || m.uid() == me;
        let sticky = m.mode() & 0o1000 != 0;
        let writable_by_others = m.mode() & 0o022 != 0 && !(sticky_ok && sticky);
        if !owner_ok || writable_by_others {
            return Err(format!(
                "{what} is owned by uid {} with mode {:04o}: whoever else can change it chooses \
                 the commands ssh runs here and on the nodes as root; expected it owned by root \
                 or by uid {me} and writable by nobody else (chmod go-w), or run nfvi-verify as \
                 its owner (a fleet run needs no root on the jump host)",
                m.uid(),
                m.mode() & 0o7777
            ));
        }
    }
    Ok(())
}

/// Parses the text of an INI inventory; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Inventory, InventoryError> {
    let mut p = Parser {
        file,
        names: Vec::new(),
        index: HashMap::new(),
        groups: Vec::new(),
        hosts: Vec::new(),
        host_index: HashMap::new(),
        host_groups: Vec::new(),
        host_vars: Vec::new(),
        expanded: 0,
    };
    for name in ["all", "ungrouped"] {
        let g = p.group(name, 0)?;
        p.groups[g].declared = true;
    }
    let mut current = (UNGROUPED, State::Hosts);
    let mut first = true;
    for (n, raw) in text.lines().enumerate() {
        let line_no = n + 1;
        let line = raw.trim();
        // A control character in a value could end a command line on a node; none has a
        // place in an inventory.
        if let Some(c) = line.chars().find(|c| c.is_control() && *c != '\t') {
            return Err(p.err(
                line_no,
                format!(
                    "a control character (U+{:04X}) is in this line; expected text",
                    u32::from(c)
                ),
            ));
        }
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if std::mem::take(&mut first) && (line == "---" || line.starts_with("all:")) {
            return Err(p.err(
                line_no,
                "this looks like a YAML inventory, which is not supported; expected an Ansible \
                 INI inventory (`[group]` sections of host lines), such as Kolla-Ansible's \
                 `multinode`",
            ));
        }
        if let Some(section) = section_header(line) {
            current = p.section(line_no, section)?;
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            return Err(p.err(
                line_no,
                format!(
                    "invalid section header `{line}`; expected [group], [group:children] or \
                     [group:vars] without spaces"
                ),
            ));
        }
        let (group, state) = current;
        match state {
            State::Hosts => p.host_line(line_no, line, group)?,
            State::Vars => {
                let (key, value) = var_line(line).map_err(|m| p.err(line_no, m))?;
                p.groups[group].vars.push((
                    key,
                    Var {
                        value,
                        line: line_no,
                    },
                ));
            }
            State::Children => {
                let child = child_line(line).map_err(|m| p.err(line_no, m))?;
                if child == "all" {
                    return Err(p.err(
                        line_no,
                        format!(
                            "group `all` cannot be a child of `{}`: every group is in `all`",
                            p.names[group]
                        ),
                    ));
                }
                let c = p.group(child, line_no)?;
                p.groups[group].children.push((c, line_no));
                p.groups[c].parents.push(group);
            }
        }
    }
    p.finish()
}

/// `[name]`, `[name:state]`, optionally followed by a `#` comment: (name, state).
fn section_header(line: &str) -> Option<(&str, &str)> {
    let inner = line.strip_prefix('[')?;
    let close = inner.find(']')?;
    let after = inner[close + 1..].trim_start();
    if !(after.is_empty() || after.starts_with('#')) {
        return None;
    }
    let inner = &inner[..close];
    let (name, state) = inner.split_once(':').unwrap_or((inner, ""));
    let bad_name = |s: &str| s.is_empty() || s.chars().any(|c| c.is_whitespace() || c == '[');
    if bad_name(name) || state.contains(':') || state.chars().any(char::is_whitespace) {
        return None;
    }
    if inner.contains(':') && state.is_empty() {
        return None;
    }
    Some((name, state))
}

/// `key=value` of a `:vars` section. The value is taken as written, without one level of
/// matching quotes; Ansible reads no comment after it.
fn var_line(line: &str) -> Result<(String, String), String> {
    let Some((key, value)) = line.split_once('=') else {
        return Err(format!("`{line}` is not a variable; expected key=value"));
    };
    let key = key.trim();
    if key.is_empty() || key.chars().any(char::is_whitespace) {
        return Err(format!("`{line}` has no variable name; expected key=value"));
    }
    Ok((key.to_owned(), unquote(value.trim()).to_owned()))
}

fn unquote(v: &str) -> &str {
    for q in ['\'', '"'] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

/// A group name on a `:children` line, optionally followed by a `#` comment.
fn child_line(line: &str) -> Result<&str, String> {
    let name = line.split('#').next().unwrap_or_default().trim();
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || "[]:".contains(c)) {
        return Err(format!(
            "`{line}` is not a group name; expected one group name per line in a \
             [group:children] section"
        ));
    }
    Ok(name)
}

impl Parser<'_> {
    fn err(&self, line: usize, message: impl Into<String>) -> InventoryError {
        InventoryError {
            file: self.file.to_owned(),
            line: (line > 0).then_some(line),
            message: message.into(),
        }
    }

    /// The group `name`, made (undeclared) if new.
    fn group(&mut self, name: &str, line: usize) -> Result<usize, InventoryError> {
        if let Some(&g) = self.index.get(name) {
            return Ok(g);
        }
        if self.groups.len() >= MAX_GROUPS {
            return Err(self.err(
                line,
                format!("more than {MAX_GROUPS} groups; expected at most {MAX_GROUPS}"),
            ));
        }
        self.names.push(name.to_owned());
        self.groups.push(Group::default());
        self.index.insert(name.to_owned(), self.groups.len() - 1);
        Ok(self.groups.len() - 1)
    }

    fn section(
        &mut self,
        line: usize,
        (name, state): (&str, &str),
    ) -> Result<(usize, State), InventoryError> {
        let state = match state {
            "" | "hosts" => State::Hosts,
            "children" => State::Children,
            "vars" => State::Vars,
            other => {
                return Err(self.err(
                    line,
                    format!(
                        "section [{name}:{other}] has an unknown type `{other}`; expected \
                         [{name}], [{name}:children] or [{name}:vars]"
                    ),
                ));
            }
        };
        let g = self.group(name, line)?;
        let group = &mut self.groups[g];
        if state == State::Vars {
            if !group.declared && group.vars_line.is_none() {
                group.vars_line = Some(line);
            }
        } else {
            group.declared = true;
        }
        Ok((g, state))
    }

    fn host_line(&mut self, line: usize, text: &str, group: usize) -> Result<(), InventoryError> {
        // The line is not quoted back: it may hold a password.
        let words = shlex::split(text).ok_or_else(|| {
            self.err(
                line,
                "cannot split this host line: a quote is not closed or it ends with `\\`; \
                 expected name key=value ...",
            )
        })?;
        let Some((token, assignments)) = words.split_first() else {
            return Ok(()); // only a comment
        };
        let pattern = pattern::parse(token).map_err(|m| self.err(line, m))?;
        let mut vars = Vec::new();
        if let Some(port) = pattern.port {
            vars.push(("ansible_port".to_owned(), port.to_string()));
        }
        for word in assignments {
            let Some((key, value)) = word.split_once('=').filter(|(k, _)| !k.is_empty()) else {
                // The word itself is not shown: it may be the end of a password with a
                // space in it.
                return Err(self.err(
                    line,
                    format!(
                        "host `{token}`: a word after the host name is not a variable; expected \
                         key=value (quote values with spaces)"
                    ),
                ));
            };
            vars.push((key.to_owned(), value.to_owned()));
        }
        self.expanded += pattern.names.len();
        if self.expanded > MAX_EXPANDED {
            return Err(self.err(
                line,
                format!(
                    "the host lines name more than {MAX_EXPANDED} hosts in all; expected a \
                     smaller inventory"
                ),
            ));
        }
        for name in pattern.names {
            let h = match self.host_index.get(&name) {
                Some(&h) => h,
                None => {
                    if self.hosts.len() >= MAX_HOSTS {
                        return Err(self.err(
                            line,
                            format!("more than {MAX_HOSTS} hosts; expected at most {MAX_HOSTS}"),
                        ));
                    }
                    self.hosts.push(name.clone());
                    self.host_groups.push(Vec::new());
                    self.host_vars.push(Vec::new());
                    self.host_index.insert(name, self.hosts.len() - 1);
                    self.hosts.len() - 1
                }
            };
            if !self.host_groups[h].contains(&group) {
                self.host_groups[h].push(group);
            }
            self.host_vars[h].extend(vars.iter().map(|(k, v)| {
                (
                    k.clone(),
                    Var {
                        value: v.clone(),
                        line,
                    },
                )
            }));
        }
        Ok(())
    }

    fn finish(self) -> Result<Inventory, InventoryError> {
        // Groups named but never declared, in the order of the line that named them.
        let mut undeclared: Vec<(usize, String)> = Vec::new();
        for (g, group) in self.groups.iter().enumerate() {
            if group.declared {
                continue;
            }
            if let Some(line) = group.vars_line {
                undeclared.push((
                    line,
                    format!(
                        "section [{0}:vars] is for group `{0}`, which is not declared; expected \
                         a [{0}] or [{0}:children] section",
                        self.names[g]
                    ),
                ));
            }
            for (parent, other) in self.groups.iter().enumerate() {
                if let Some(&(_, line)) = other.children.iter().find(|(c, _)| *c == g) {
                    undeclared.push((
                        line,
                        format!(
                            "section [{}:children] names group `{}`, which is not declared; \
                             expected a [{1}] or [{1}:children] section",
                            self.names[parent], self.names[g]
                        ),
                    ));
                }
            }
        }
        if let Some((line, message)) = undeclared.into_iter().min() {
            return Err(self.err(line, message));
        }
        let depth = self.depths()?;
        let mut hosts = Vec::with_capacity(self.hosts.len());
        let mut seen = vec![false; self.groups.len()];
        for (h, name) in self.hosts.iter().enumerate() {
            // Every group of the host, through parents (breadth first, no recursion).
            seen.iter_mut().for_each(|s| *s = false);
            let mut queue: VecDeque<usize> = self.host_groups[h].iter().copied().collect();
            let mut member = Vec::new();
            while let Some(g) = queue.pop_front() {
                if std::mem::replace(&mut seen[g], true) {
                    continue;
                }
                member.push(g);
                queue.extend(self.groups[g].parents.iter().copied());
            }
            if !seen[ALL] {
                member.push(ALL);
            }
            member.sort_by(|a, b| (depth[*a], &self.names[*a]).cmp(&(depth[*b], &self.names[*b])));
            let mut vars = BTreeMap::new();
            for &g in &member {
                vars.extend(self.groups[g].vars.iter().cloned());
            }
            vars.extend(self.host_vars[h].iter().cloned());
            let visible = |g: &usize| *g != ALL && *g != UNGROUPED;
            let mut roles: Vec<String> = member
                .iter()
                .filter(|g| visible(g))
                .map(|g| self.names[*g].clone())
                .collect();
            roles.sort();
            let mut direct_groups: Vec<String> = self.host_groups[h]
                .iter()
                .filter(|g| visible(g))
                .map(|g| self.names[*g].clone())
                .collect();
            direct_groups.sort();
            hosts.push(Host {
                name: name.clone(),
                roles,
                direct_groups,
                vars,
            });
        }
        Ok(Inventory {
            file: self.file.to_owned(),
            hosts,
        })
    }

    /// Each group's depth below `all` (a group without parents is 1, a child one more than
    /// its deepest parent), by Kahn's algorithm; a cycle through `:children` is an error.
    fn depths(&self) -> Result<Vec<usize>, InventoryError> {
        let n = self.groups.len();
        let mut pending: Vec<usize> = self.groups.iter().map(|g| g.parents.len()).collect();
        let mut depth = vec![1usize; n];
        depth[ALL] = 0;
        let mut queue: VecDeque<usize> = (0..n).filter(|g| pending[*g] == 0).collect();
        let mut done = 0;
        while let Some(g) = queue.pop_front() {
            done += 1;
            for &(c, _) in &self.groups[g].children {
                depth[c] = depth[c].max(depth[g] + 1);
                pending[c] -= 1;
                if pending[c] == 0 {
                    queue.push_back(c);
                }
            }
        }
        if done == n {
            return Ok(depth);
        }
        // Every pending group has a pending parent: walking up them must repeat a group,
        // and the groups from its first visit on form a cycle.
        let start = (0..n).find(|g| pending[*g] > 0).unwrap_or_default();
        let mut path = vec![start];
        let mut at = vec![usize::MAX; n];
        at[start] = 0;
        let mut g = start;
        while let Some(&p) = self.groups[g].parents.iter().find(|p| pending[**p] > 0) {
            if at[p] != usize::MAX {
                path.drain(..at[p]);
                path.push(p);
                break;
            }
            at[p] = path.len();
            path.push(p);
            g = p;
        }
        // Parent first; the line reported is the last edge of the cycle in the file.
        path.reverse();
        let line = path
            .windows(2)
            .filter_map(|w| {
                self.groups[w[0]]
                    .children
                    .iter()
                    .find(|(c, _)| *c == w[1])
                    .map(|(_, l)| *l)
            })
            .max()
            .unwrap_or_default();
        let names: Vec<&str> = path.iter().map(|g| self.names[*g].as_str()).collect();
        Err(self.err(
            line,
            format!(
                "groups form a cycle through [group:children]: {}; expected child groups \
                 without cycles",
                names.join(" -> ")
            ),
        ))
    }
}
