//! One generated input and how to replay it by hand.
//!
//! A case is the environment and the stdin of one invocation, written with placeholders for
//! what only exists while a worker runs it (the container namespace, the private directory,
//! CNI_PATH). A worker binds them to its own objects; a replay line binds them to objects the
//! shell line creates, so the line is exactly the input the plugin got, with paths renamed.

use serde_json::Value;

/// The container namespace's path.
pub(crate) const NETNS: &str = "@NETNS@";
/// The worker's private directory (IPAM data lives below it).
pub(crate) const DIR: &str = "@DIR@";
/// The plugin directories.
pub(crate) const CNI_PATH: &str = "@CNIPATH@";

/// The CNI variables, in the order they are printed.
pub(crate) const VARS: [&str; 6] = [
    "CNI_COMMAND",
    "CNI_CONTAINERID",
    "CNI_NETNS",
    "CNI_IFNAME",
    "CNI_ARGS",
    "CNI_PATH",
];

/// What the plugin reads on stdin.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Stdin {
    /// A JSON document (serialised compactly).
    Json(Value),
    /// Bytes that need not be JSON (truncated, garbage, empty).
    Raw(Vec<u8>),
}

impl Stdin {
    pub(crate) fn bytes(&self) -> Vec<u8> {
        match self {
            Stdin::Json(v) => v.to_string().into_bytes(),
            Stdin::Raw(b) => b.clone(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.bytes().len()
    }
}

/// What the harness does with a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// ADD; then, as a runtime does, CHECK (if `check`) with the result as prevResult after
    /// a success, and DEL in every case (with the result as prevResult after a success).
    Lifecycle { check: bool },
    /// One invocation of whatever CNI_COMMAND says (DEL or CHECK of a never-added
    /// attachment, VERSION, an unknown command...).
    Single,
}

/// One generated input.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Case {
    /// Its index in the plugin's stream: with the seed, all it takes to generate it again.
    pub(crate) index: u64,
    pub(crate) flow: Flow,
    /// The CNI variables that are set, in [`VARS`] order.
    pub(crate) env: Vec<(String, String)>,
    pub(crate) stdin: Stdin,
}

impl Case {
    pub(crate) fn var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn set_var(&mut self, name: &str, value: Option<String>) {
        self.env.retain(|(k, _)| k != name);
        // An environment variable cannot hold NUL.
        if let Some(v) = value.map(|v| v.replace('\0', "")) {
            self.env.push((name.to_owned(), v));
            self.env
                .sort_by_key(|(k, _)| VARS.iter().position(|v| v == k).unwrap_or(VARS.len()));
        }
    }

    /// Bytes of stdin and environment.
    #[cfg(test)]
    pub(crate) fn size(&self) -> usize {
        self.stdin.len()
            + self
                .env
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }
}

/// What the placeholders stand for in one worker.
#[derive(Debug, Clone)]
pub(crate) struct Bindings {
    pub(crate) netns: String,
    pub(crate) dir: String,
    pub(crate) cni_path: String,
}

impl Bindings {
    pub(crate) fn bind(&self, text: &str) -> String {
        text.replace(NETNS, &self.netns)
            .replace(DIR, &self.dir)
            .replace(CNI_PATH, &self.cni_path)
    }

    pub(crate) fn bind_bytes(&self, bytes: &[u8]) -> Vec<u8> {
        match std::str::from_utf8(bytes) {
            Ok(text) => self.bind(text).into_bytes(),
            Err(_) => {
                let mut out = bytes.to_vec();
                for (from, to) in [
                    (NETNS, &self.netns),
                    (DIR, &self.dir),
                    (CNI_PATH, &self.cni_path),
                ] {
                    out = replace_bytes(&out, from.as_bytes(), to.as_bytes());
                }
                out
            }
        }
    }

    /// The inverse of [`Bindings::bind`], for text a plugin printed (a result fed back as
    /// prevResult), so replays name the replay's own objects.
    pub(crate) fn unbind(&self, text: &str) -> String {
        text.replace(&self.dir, DIR).replace(&self.netns, NETNS)
    }
}

fn replace_bytes(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if !from.is_empty() && haystack[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

/// One invocation of a replay: the command, the variables and the exact stdin (placeholders
/// unbound).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReplayStep {
    pub(crate) env: Vec<(String, String)>,
    pub(crate) stdin: Vec<u8>,
}

/// What a replay must create before the plugin runs: the devices the worker made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Setup {
    None,
    /// `nfvmm0`/`nfvmm1`, a veth pair in the runtime namespace (macvlan, ipvlan, vlan master).
    Master,
    /// `nfvhd0`/`nfvhd1`, a veth pair in the runtime namespace (host-device).
    HostDevice,
    /// `eth0` in the container (198.18.41.2/24), its peer `nfvfzh0` in the runtime namespace:
    /// the interface a chained plugin's prevResult describes.
    Chained,
}

/// A shell line that creates a runtime and a container namespace and a directory, runs the
/// steps with exactly their environment and stdin inside the runtime namespace, prints each
/// exit code, and removes what it created.
pub(crate) fn replay_line(
    plugin_path: &str,
    cni_path: &str,
    setup: Setup,
    steps: &[ReplayStep],
) -> String {
    let mut s = String::from(
        "R=nfvreplay-$$; D=$(mktemp -d) && ip netns add $R-rt && ip netns add $R-c && ip -n $R-rt link set lo up",
    );
    let rt = "ip -n $R-rt link";
    match setup {
        Setup::None => {}
        Setup::Master => s.push_str(&format!(
            " && {rt} add nfvmm0 type veth peer name nfvmm1 && {rt} set nfvmm0 up && {rt} set nfvmm1 up"
        )),
        Setup::HostDevice => s.push_str(&format!(" && {rt} add nfvhd0 type veth peer name nfvhd1")),
        Setup::Chained => s.push_str(&format!(
            " && {rt} add nfvfzh0 type veth peer name eth0 netns $R-c && {rt} set nfvfzh0 up && ip -n $R-c link set eth0 up && ip -n $R-c addr add 198.18.41.2/24 dev eth0"
        )),
    }
    for step in steps {
        s.push_str("; ");
        s.push_str(&stdin_words(&step.stdin));
        s.push_str(" | ip netns exec $R-rt env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin");
        for (k, v) in &step.env {
            s.push(' ');
            s.push_str(&shell_word(&format!(
                "{k}={}",
                v.replace(CNI_PATH, cni_path)
            )));
        }
        s.push(' ');
        s.push_str(&shell_word(plugin_path));
        s.push_str("; echo \" -> exit $?\"");
    }
    s.push_str("; ip netns del $R-c; ip netns del $R-rt; rm -rf \"$D\"");
    s
}

/// `text` as one shell word: single-quoted literal parts, with the placeholders as the
/// replay's variables.
pub(crate) fn shell_word(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        let next = [(NETNS, "\"/run/netns/$R-c\""), (DIR, "\"$D\"")]
            .into_iter()
            .filter_map(|(p, var)| rest.find(p).map(|at| (at, p, var)))
            .min_by_key(|(at, _, _)| *at);
        let (lit, tail) = match next {
            Some((at, p, var)) => {
                let lit = &rest[..at];
                if !lit.is_empty() {
                    out.push_str(&single_quote(lit));
                }
                out.push_str(var);
                (None, &rest[at + p.len()..])
            }
            None => (Some(rest), ""),
        };
        if let Some(lit) = lit {
            out.push_str(&single_quote(lit));
        }
        rest = tail;
    }
    if out.is_empty() {
        out.push_str("''");
    }
    out
}

fn single_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A command writing exactly `bytes` to stdout: `printf '%s' WORD`, or for bytes that are not
/// UTF-8 (or hold NUL), a printf format of octal escapes.
fn stdin_words(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.contains('\0') => format!("printf '%s' {}", shell_word(text)),
        _ => {
            let mut fmt = String::new();
            for &b in bytes {
                if b.is_ascii_graphic() && !matches!(b, b'\'' | b'\\' | b'%') || b == b' ' {
                    fmt.push(b as char);
                } else {
                    fmt.push_str(&format!("\\{b:03o}"));
                }
            }
            format!("printf '{fmt}'")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(line: &str) -> String {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(line)
            .env("R", "nfvx")
            .output()
            .expect("sh runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn shell_words_survive_the_shell() {
        for text in ["plain", "it's", "", "ü 🚀 \"q\" $HOME `x` \\n", "a\nb"] {
            assert_eq!(sh(&format!("printf '%s' {}", shell_word(text))), text);
        }
        let bound = sh(&format!(
            "D=/tmp/d; R=r; printf '%s' {}",
            shell_word("x@DIR@/ipam'@NETNS@")
        ));
        assert_eq!(bound, "x/tmp/d/ipam'/run/netns/r-c");
    }

    #[test]
    fn raw_stdin_replays_byte_for_byte() {
        for bytes in [
            b"{\"a\":\xff\x00%s\\'".to_vec(),
            b"{\"cniVersion\":".to_vec(),
        ] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(stdin_words(&bytes))
                .output()
                .unwrap();
            assert_eq!(out.stdout, bytes);
        }
    }

    #[test]
    fn bindings_round_trip() {
        let b = Bindings {
            netns: "/run/netns/nfvc-1".into(),
            dir: "/tmp/nfv-cni-1".into(),
            cni_path: "/usr/lib/cni".into(),
        };
        let t = "@DIR@/ipam @NETNS@ @CNIPATH@";
        assert_eq!(
            b.bind(t),
            "/tmp/nfv-cni-1/ipam /run/netns/nfvc-1 /usr/lib/cni"
        );
        assert_eq!(
            b.unbind(&b.bind("@DIR@/ipam @NETNS@")),
            "@DIR@/ipam @NETNS@"
        );
        assert_eq!(b.bind_bytes(b"\xff@DIR@"), b"\xff/tmp/nfv-cni-1".to_vec());
    }

    #[test]
    fn a_replay_line_names_every_variable_and_cleans_up() {
        let step = ReplayStep {
            env: vec![
                ("CNI_COMMAND".into(), "ADD".into()),
                ("CNI_NETNS".into(), NETNS.into()),
                ("CNI_PATH".into(), CNI_PATH.into()),
            ],
            stdin: b"{\"dataDir\":\"@DIR@\"}".to_vec(),
        };
        let line = replay_line(
            "/usr/lib/cni/bridge",
            "/usr/lib/cni",
            Setup::Master,
            &[step],
        );
        assert!(line.contains("'CNI_NETNS='\"/run/netns/$R-c\""), "{line}");
        assert!(line.contains("'CNI_PATH=/usr/lib/cni'"), "{line}");
        assert!(line.contains("'{\"dataDir\":\"'\"$D\"'\"}'"), "{line}");
        assert!(line.ends_with("ip netns del $R-c; ip netns del $R-rt; rm -rf \"$D\""));
    }
}
