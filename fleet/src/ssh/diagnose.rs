//! Why a connection failed, from what `ssh` wrote, in words that say what to do: host keys
//! unknown or changed (with the fingerprints the node offers), authentication, and the
//! network.

use std::time::Duration;

use nfvi_harness::cancel::CancelToken;
use nfvi_harness::fleet::NodeError;

use crate::inventory::Connection;

use super::proc;

/// What kind of failure `ssh`'s error output shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// known_hosts holds no key for the node, and strict checking is on.
    HostKeyUnknown,
    /// known_hosts holds another key for the node.
    HostKeyChanged,
    /// Host key verification failed for another reason (a jump host's key, a revoked key).
    HostKeyOther,
    /// The node refused every key offered.
    Auth,
    /// Nothing listens on the port.
    Refused,
    /// No answer in time.
    Timeout,
    /// No route, or the network is unreachable.
    Unreachable,
    /// The name does not resolve.
    Resolve,
    /// Anything else.
    Other,
}

/// Classifies `ssh`'s error output.
pub fn classify(stderr: &str) -> Failure {
    let has = |s: &str| stderr.contains(s);
    if has("REMOTE HOST IDENTIFICATION HAS CHANGED") {
        Failure::HostKeyChanged
    } else if has("host key is known") || (has("No ") && has("and you have requested strict")) {
        Failure::HostKeyUnknown
    } else if has("Host key verification failed") {
        Failure::HostKeyOther
    } else if has("Permission denied (") || has("Too many authentication failures") {
        Failure::Auth
    } else if has("Connection refused") {
        Failure::Refused
    } else if has("timed out") {
        Failure::Timeout
    } else if has("No route to host") || has("Network is unreachable") {
        Failure::Unreachable
    } else if has("Could not resolve hostname") || has("Name or service not known") {
        Failure::Resolve
    } else {
        Failure::Other
    }
}

/// `ED25519 SHA256:...` for each line of `ssh-keygen -lf -` output
/// (`256 SHA256:abc 198.19.10.12 (ED25519)`).
pub fn parse_fingerprints(keygen: &str) -> Vec<String> {
    let mut out: Vec<String> = keygen
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let fingerprint = words.iter().find(|w| w.starts_with("SHA256:"))?;
            let kind = words
                .last()
                .and_then(|w| w.strip_prefix('(')?.strip_suffix(')'))
                .unwrap_or("key");
            Some(format!("{kind} {fingerprint}"))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The host keys the node offers, read with `ssh-keyscan` straight from its address (not
/// through a jump host) and fingerprinted with `ssh-keygen -lf -`.
pub fn offered_fingerprints(
    conn: &Connection,
    cancel: &CancelToken,
) -> Result<Vec<String>, String> {
    let port = conn.port.unwrap_or(22).to_string();
    let scan = [
        "ssh-keyscan",
        "-p",
        port.as_str(),
        "-T",
        "5",
        conn.address.as_str(),
    ]
    .map(str::to_owned);
    let keys = proc::run(&scan, None, Duration::from_secs(20), cancel)
        .map_err(|e| format!("ssh-keyscan: {e}"))?;
    if keys.stdout.is_empty() {
        return Err(format!(
            "ssh-keyscan read no key: {}",
            keys.last_error_line()
        ));
    }
    let keygen = ["ssh-keygen", "-lf", "-"].map(str::to_owned);
    let out = proc::run(&keygen, Some(&keys.stdout), Duration::from_secs(10), cancel)
        .map_err(|e| format!("ssh-keygen: {e}"))?;
    let fingerprints = parse_fingerprints(&String::from_utf8_lossy(&out.stdout));
    if fingerprints.is_empty() {
        return Err(format!("ssh-keygen: {}", out.last_error_line()));
    }
    Ok(fingerprints)
}

/// The fingerprint ssh reports for a changed key, from its own connection:
/// `The fingerprint for the ED25519 key sent by the remote host is` and, on the next line,
/// `SHA256:….` becomes `ED25519 SHA256:…`.
pub fn sent_by_remote(stderr: &str) -> Option<String> {
    let mut lines = stderr.lines();
    let intro = lines.find(|l| l.contains("key sent by the remote host is"))?;
    let kind = intro
        .split_whitespace()
        .skip_while(|w| *w != "the")
        .nth(1)
        .filter(|k| k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))?;
    let fingerprint = lines.next()?.trim().trim_end_matches('.');
    let ok = fingerprint.strip_prefix("SHA256:").is_some_and(|b64| {
        !b64.is_empty()
            && b64
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c))
    });
    ok.then(|| format!("{kind} {fingerprint}"))
}

/// The `ssh-keygen -R` argument for the node's known_hosts entry.
fn known_hosts_name(conn: &Connection) -> String {
    match conn.port {
        None | Some(22) => conn.address.clone(),
        Some(port) => format!("[{}]:{port}", conn.address),
    }
}

/// The error for a master connection that failed with `stderr` (exit `code`);
/// `fingerprints` reads the node's keys when a host-key failure needs them.
pub fn connect_error(
    conn: &Connection,
    stderr: &str,
    code: Option<i32>,
    fingerprints: impl FnOnce() -> Result<Vec<String>, String>,
) -> NodeError {
    let endpoint = conn.endpoint();
    let last = proc::last_line(stderr);
    let offered = |f: Result<Vec<String>, String>| match f {
        Ok(list) => list.join(", "),
        Err(e) => format!("keys that could not be read ({e})"),
    };
    let message = match classify(stderr) {
        // The key ssh itself was shown (through any jump host), when it says which; read
        // again with ssh-keyscan only when it does not.
        Failure::HostKeyChanged => format!(
            "host key of {endpoint} has CHANGED: it now offers {}, which known_hosts does not \
             hold; if the node was reinstalled, remove the old entry with `ssh-keygen -R '{}'`, \
             otherwise suspect an attack",
            sent_by_remote(stderr).unwrap_or_else(|| offered(fingerprints())),
            known_hosts_name(conn)
        ),
        Failure::HostKeyUnknown => format!(
            "host key of {endpoint} is not in known_hosts (offered {}); add it, or run with \
             --accept-new-host-keys",
            offered(fingerprints())
        ),
        Failure::HostKeyOther => format!(
            "host key verification failed connecting to {endpoint} (a jump host's key, or a \
             revoked key?): {last}"
        ),
        Failure::Auth => format!(
            "authentication as {} failed on {endpoint}: {last}; expected a key (ssh-agent, \
             ~/.ssh/config or ansible_ssh_private_key_file) that the node accepts, without a \
             password prompt",
            conn.user_for_messages()
        ),
        Failure::Refused => {
            format!("{endpoint} refused the connection: is sshd running and listening there?")
        }
        Failure::Timeout => format!("connecting to {endpoint} timed out: {last}"),
        Failure::Unreachable => format!("{endpoint} is unreachable: {last}"),
        Failure::Resolve => format!("cannot resolve {}: {last}", conn.address),
        Failure::Other => match code {
            Some(c) => format!("ssh to {endpoint} failed (exit {c}): {last}"),
            None => format!("ssh to {endpoint} was killed by a signal: {last}"),
        },
    };
    NodeError::new(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(port: Option<u16>) -> Connection {
        Connection {
            name: "compute02".into(),
            address: "198.19.10.12".into(),
            port,
            user: Some("kolla".into()),
            ..Default::default()
        }
    }

    const CHANGED: &str = "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\r\n\
        @    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r\n\
        IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\r\n\
        Host key verification failed.\r\n";
    const UNKNOWN: &str = "No ED25519 host key is known for 198.19.10.12 and you have \
        requested strict checking.\r\nHost key verification failed.\r\n";

    #[test]
    fn failures_are_classified() {
        for (stderr, want) in [
            (CHANGED, Failure::HostKeyChanged),
            (UNKNOWN, Failure::HostKeyUnknown),
            ("Host key verification failed.\n", Failure::HostKeyOther),
            (
                "kolla@198.19.10.12: Permission denied (publickey).\n",
                Failure::Auth,
            ),
            (
                "ssh: connect to host 198.19.10.12 port 22: Connection refused\n",
                Failure::Refused,
            ),
            (
                "ssh: connect to host 198.19.10.12 port 22: Connection timed out\n",
                Failure::Timeout,
            ),
            (
                "ssh: connect to host 198.19.10.12 port 22: No route to host\n",
                Failure::Unreachable,
            ),
            (
                "ssh: Could not resolve hostname nodex: Name or service not known\n",
                Failure::Resolve,
            ),
            ("something else\n", Failure::Other),
        ] {
            assert_eq!(classify(stderr), want, "{stderr}");
        }
    }

    #[test]
    fn fingerprints_are_read_from_ssh_keygen() {
        let out = "256 SHA256:abcd 198.19.10.12 (ED25519)\n\
                   3072 SHA256:efgh 198.19.10.12 (RSA)\n\
                   256 SHA256:abcd 198.19.10.12 (ED25519)\n\
                   garbage\n";
        assert_eq!(
            parse_fingerprints(out),
            ["ED25519 SHA256:abcd", "RSA SHA256:efgh"]
        );
        assert!(parse_fingerprints("").is_empty());
    }

    #[test]
    fn host_key_errors_name_the_endpoint_fingerprints_and_the_fix() {
        let fp = || Ok(vec!["ED25519 SHA256:abcd".to_owned()]);
        let e = connect_error(&conn(None), CHANGED, Some(255), fp);
        assert_eq!(
            e.message,
            "host key of 198.19.10.12:22 has CHANGED: it now offers ED25519 SHA256:abcd, which \
             known_hosts does not hold; if the node was reinstalled, remove the old entry with \
             `ssh-keygen -R '198.19.10.12'`, otherwise suspect an attack"
        );
        let e = connect_error(&conn(Some(2222)), CHANGED, Some(255), fp);
        assert!(
            e.message.contains("`ssh-keygen -R '[198.19.10.12]:2222'`"),
            "{e}"
        );
        let e = connect_error(&conn(None), UNKNOWN, Some(255), fp);
        assert_eq!(
            e.message,
            "host key of 198.19.10.12:22 is not in known_hosts (offered ED25519 SHA256:abcd); \
             add it, or run with --accept-new-host-keys"
        );
        let e = connect_error(&conn(None), UNKNOWN, Some(255), || {
            Err("ssh-keyscan read no key".into())
        });
        assert!(e.message.contains("(ssh-keyscan read no key)"), "{e}");
    }

    #[test]
    fn other_errors_name_user_and_address() {
        let never = || -> Result<Vec<String>, String> { panic!("not a host-key failure") };
        let e = connect_error(
            &conn(None),
            "kolla@198.19.10.12: Permission denied (publickey).\r\n",
            Some(255),
            never,
        );
        assert!(
            e.message
                .starts_with("authentication as `kolla` failed on 198.19.10.12:22: kolla@"),
            "{e}"
        );
        let e = connect_error(
            &conn(None),
            "ssh: connect to host 198.19.10.12 port 22: Connection refused\n",
            Some(255),
            never,
        );
        assert!(
            e.message
                .starts_with("198.19.10.12:22 refused the connection"),
            "{e}"
        );
        let e = connect_error(&conn(None), "", Some(255), never);
        assert_eq!(
            e.message,
            "ssh to 198.19.10.12:22 failed (exit 255): no error output"
        );
    }
    #[test]
    fn a_changed_key_is_named_as_ssh_itself_saw_it() {
        let stderr = "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
            @    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n\
            IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\n\
            The fingerprint for the ED25519 key sent by the remote host is\n\
            SHA256:m1pDnQb8u3XkqS0O9Pq6v0X7T3c7y2Yy8yT0fJvB3hE.\n\
            Please contact your system administrator.\n";
        assert_eq!(
            sent_by_remote(stderr).as_deref(),
            Some("ED25519 SHA256:m1pDnQb8u3XkqS0O9Pq6v0X7T3c7y2Yy8yT0fJvB3hE")
        );
        let e = connect_error(&conn(None), stderr, Some(255), || {
            Err("keyscan must not be needed".into())
        });
        assert!(e.message.contains("SHA256:m1pDnQb8"), "{}", e.message);
        // Nothing usable: no fingerprint, and garbage is not passed on.
        assert_eq!(sent_by_remote("Host key verification failed."), None);
        assert_eq!(
            sent_by_remote(
                "The fingerprint for the ED25519 key sent by the remote host is\n$(rm -rf /)"
            ),
            None
        );
    }
}
