//! The command lines the transport runs, as pure functions of a node's [`Connection`] and
//! the [`SshOptions`], so that they are tested without ssh.
//!
//! Every `ssh` gets the same connection options (the Ansible way: port, user, key, then
//! `ansible_ssh_common_args`, then `ansible_ssh_extra_args`), so that a command whose master
//! went away reconnects as the master did rather than as someone else. No `-F`: the user's
//! `~/.ssh/config`, agent and ProxyJump keep working.

use std::path::Path;

use crate::inventory::Connection;

use super::{AgentSource, SshOptions};

/// The name the agent binary gets in its directory on the node.
pub const AGENT_NAME: &str = "nfvi-verify";

/// The options every `ssh` of a node gets, before the destination.
pub fn connection_options(conn: &Connection, opts: &SshOptions) -> Vec<String> {
    let strict = if opts.accept_new_host_keys {
        "accept-new"
    } else {
        "yes"
    };
    let mut argv: Vec<String> = [
        "-o",
        "BatchMode=yes",
        "-o",
        &format!("StrictHostKeyChecking={strict}"),
        "-o",
        &format!("ConnectTimeout={}", opts.connect_timeout_secs),
        "-o",
        "ServerAliveInterval=5",
        "-o",
        "ServerAliveCountMax=3",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    if let Some(port) = conn.port {
        argv.extend(["-p".to_owned(), port.to_string()]);
    }
    if let Some(user) = &conn.user {
        argv.extend(["-l".to_owned(), user.clone()]);
    }
    if let Some(key) = &conn.key_file {
        argv.extend([
            "-i".to_owned(),
            key.display().to_string(),
            "-o".to_owned(),
            "IdentitiesOnly=yes".to_owned(),
        ]);
    }
    argv.extend(conn.common_args.iter().cloned());
    argv.extend(conn.extra_args.iter().cloned());
    argv
}

/// The master connection: `ssh -M -N` with the control socket at `control`, kept as a child
/// of nfvi-verify (ControlPersist=no: it ends when it is told to or killed).
pub fn master(program: &str, conn: &Connection, opts: &SshOptions, control: &Path) -> Vec<String> {
    let mut argv = vec![
        program.to_owned(),
        "-M".to_owned(),
        "-N".to_owned(),
        "-o".to_owned(),
        format!("ControlPath={}", control.display()),
        "-o".to_owned(),
        "ControlPersist=no".to_owned(),
    ];
    argv.extend(connection_options(conn, opts));
    argv.push(conn.address.clone());
    argv
}

/// A control request to the master (`check`, `exit`).
pub fn control(
    program: &str,
    conn: &Connection,
    opts: &SshOptions,
    control: &Path,
    request: &str,
) -> Vec<String> {
    let mut argv = vec![
        program.to_owned(),
        "-S".to_owned(),
        control.display().to_string(),
        "-O".to_owned(),
        request.to_owned(),
    ];
    argv.extend(connection_options(conn, opts));
    argv.push(conn.address.clone());
    argv
}

/// A command on the node through the master. `remote` is one shell command line.
pub fn remote(
    program: &str,
    conn: &Connection,
    opts: &SshOptions,
    control: &Path,
    remote: &str,
) -> Vec<String> {
    let mut argv = vec![
        program.to_owned(),
        "-S".to_owned(),
        control.display().to_string(),
        "-o".to_owned(),
        "ControlMaster=no".to_owned(),
    ];
    argv.extend(connection_options(conn, opts));
    argv.extend([conn.address.clone(), "--".to_owned(), remote.to_owned()]);
    argv
}

/// `sudo -n [-u USER] ` when the node wants privilege escalation (`ansible_become`) and the
/// login is not already that user; empty otherwise. sudo must not ask for a password (`-n`
/// makes it fail instead of waiting for one).
pub fn become_prefix(conn: &Connection) -> String {
    if !conn.needs_sudo() {
        return String::new();
    }
    match conn.become_user.as_deref() {
        None | Some("root") => "sudo -n ".to_owned(),
        Some(user) => format!("sudo -n -u {} ", quote(user)),
    }
}

/// The shell command that runs the agent on the node. A copied agent (`copied`: its
/// directory and SHA-256) is checked again in the same command that runs it, so what runs
/// is what was copied (checked when it arrived, and again just before it starts, which
/// leaves only the login user's own processes a window); its directory is removed when the
/// agent exits, however it exits, and the agent's exit code is kept.
pub fn agent_command(conn: &Connection, agent: &str, copied: Option<(&str, &str)>) -> String {
    let run = format!("{}{} node", become_prefix(conn), quote(agent));
    match copied {
        Some((dir, sha256)) => {
            let dir = quote(dir);
            // The digest is hexadecimal (ours), the path quoted: nothing here is the node's.
            let sha256: String = sha256.chars().filter(char::is_ascii_hexdigit).collect();
            format!(
                "printf '%s  %s\\n' {sha256} {agent} | sha256sum -c --status || \
                 {{ echo 'the copied agent changed after it was checked' >&2; rm -rf {dir}; \
                 exit 97; }}; {run}; rc=$?; rm -rf {dir}; exit $rc",
                agent = quote(agent)
            )
        }
        None => run,
    }
}

/// The one shell command that copies the agent (the first `size` bytes of its input) into a
/// new private directory, checks its SHA-256, runs it as the node agent (the rest of the
/// input is the request and then the stop signal) and removes the directory when it ends,
/// keeping its exit code. One session instead of four: the node's shell reads exactly
/// `size` bytes with `head -c`, and what runs is what was checked, in the same command.
/// An x86_64 or aarch64 node of the other architecture is refused before anything is
/// copied to disk (exit 95); a failed `mktemp` or a write that fails (a full disk) is exit
/// 96, an agent that arrived short or with a wrong digest exit 97, each saying which.
pub fn copy_and_run_command(conn: &Connection, size: usize, sha256: &str) -> String {
    let sha256: String = sha256.chars().filter(char::is_ascii_hexdigit).collect();
    let arch = std::env::consts::ARCH;
    format!(
        "m=$(uname -m); case $m in x86_64|aarch64) [ \"$m\" = {arch} ] || {{ echo \"this node \
         is a $m machine and the agent is built for {arch}; install an agent for $m and set \
         fleet.agent\" >&2; exit 95; }};; esac; umask 077; d=$(mktemp -d {MKTEMP_TEMPLATE}) || \
         {{ echo 'cannot make a private directory in /tmp' >&2; exit 96; }}; a=\"$d/{AGENT_NAME}\"; \
         head -c {size} > \"$a\" || {{ rm -rf \"$d\"; echo 'cannot write the agent in /tmp on \
         the node (is its disk full?)' >&2; exit 96; }}; n=$(wc -c < \"$a\"); [ \"$n\" -eq {size} ] \
         || {{ rm -rf \"$d\"; echo \"only $n of the agent's {size} bytes arrived (the connection \
         ended early)\" >&2; exit 97; }}; printf '%s  %s\\n' {sha256} \"$a\" | sha256sum -c --status \
         || {{ rm -rf \"$d\"; echo 'the agent that arrived is not the one sent (its SHA-256 \
         differs)' >&2; exit 97; }}; chmod 700 \"$a\"; {become}\"$a\" node; rc=$?; rm -rf \"$d\"; \
         exit $rc",
        become = become_prefix(conn),
    )
}

/// The shell command that runs `AGENT ARGS` on the node for
/// [`Transport::spawn_agent`](nfvi_harness::fleet::Transport::spawn_agent), tied to its
/// standard input: neither ssh without a terminal nor sshd signals a command whose input
/// closes, so the command does it itself. The program runs in the background with its input
/// from /dev/null and its output on the session's; a watcher reads the session's input (kept
/// as fd 3) to its end and then sends the program SIGTERM (sudo relays it). The shell waits
/// for the program, whichever way it ends, stops the watcher, removes the copied agent's
/// directory `dir` and exits with the program's code. Only the program's own PID is
/// signalled, from the shell that started it.
pub fn spawn_command(prefix: &str, agent: &str, args: &[String], dir: Option<&str>) -> String {
    let mut run = format!("{prefix}{}", quote(agent));
    for arg in args {
        run.push(' ');
        run.push_str(&quote(arg));
    }
    let remove = dir.map_or_else(String::new, |d| format!("rm -rf {}; ", quote(d)));
    format!(
        "exec 3<&0; (exec {run}) </dev/null 3<&- & p=$!; \
         {{ while read -r l; do :; done <&3; kill -TERM $p 2>/dev/null; }} </dev/null >/dev/null 2>&1 & w=$!; \
         exec 3<&-; wait $p; rc=$?; kill $w 2>/dev/null; {remove}exit $rc"
    )
}

/// The privilege prefix of a command on a node that is the jump host itself: `sudo -n `
/// when the inventory asks for become and this process is not already the user it names.
pub fn local_become_prefix(conn: &Connection, root: bool) -> String {
    if !conn.become_root {
        return String::new();
    }
    match conn.become_user.as_deref() {
        None | Some("root") if root => String::new(),
        None | Some("root") => "sudo -n ".to_owned(),
        Some(user) => format!("sudo -n -u {} ", quote(user)),
    }
}

/// Makes the agent's private directory on the node, and says the node's machine type first.
pub const MKTEMP: &str = "uname -m && umask 077 && mktemp -d /tmp/nfvi-verify.XXXXXXXXXX";

/// The template of the agent's private directory on a node.
const MKTEMP_TEMPLATE: &str = "/tmp/nfvi-verify.XXXXXXXXXX";

/// Writes the agent binary (on standard input) into `dir`, makes it executable by its owner
/// only and prints its SHA-256.
pub fn install_command(dir: &str) -> String {
    let path = quote(&format!("{dir}/{AGENT_NAME}"));
    format!("cat > {path} && chmod 700 {path} && sha256sum {path}")
}

/// Removes the agent's directory.
pub fn remove_command(dir: &str) -> String {
    format!("rm -rf {}", quote(dir))
}

/// Asks an installed agent its version.
pub fn version_command(path: &str) -> String {
    format!("{} --version", quote(path))
}

/// Whether `dir` is what [`MKTEMP`] makes: `/tmp/nfvi-verify.` and ten letters or digits.
/// Anything else the node answers is refused, never passed to a shell.
pub fn is_agent_dir(dir: &str) -> bool {
    dir.strip_prefix("/tmp/nfvi-verify.")
        .is_some_and(|rest| rest.len() == 10 && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The local command for a node that is the jump host itself (`ansible_connection=local`).
pub fn local_agent(conn: &Connection, agent: &Path, root: bool) -> Vec<String> {
    let mut argv = Vec::new();
    if conn.become_root {
        match conn.become_user.as_deref() {
            None | Some("root") if root => {}
            None | Some("root") => argv.extend(["sudo".to_owned(), "-n".to_owned()]),
            Some(user) => argv.extend(["sudo", "-n", "-u", user].map(str::to_owned)),
        }
    }
    argv.extend([agent.display().to_string(), "node".to_owned()]);
    argv
}

/// Where the agent comes from, for messages.
pub fn describe_agent(source: &AgentSource) -> String {
    match source {
        AgentSource::Copy => "a copy of this nfvi-verify binary".to_owned(),
        AgentSource::Installed(path) => format!("the installed agent {}", path.display()),
    }
}

fn quote(s: &str) -> String {
    // Inventories and the target refuse control characters; should a NUL still get here it
    // is dropped and the rest quoted, never passed on unquoted.
    let clean = s.replace('\0', "");
    shlex::try_quote(&clean).map_or_else(|_| "''".to_owned(), |q| q.into_owned())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn conn() -> Connection {
        Connection {
            name: "compute01".into(),
            address: "198.19.10.12".into(),
            ..Default::default()
        }
    }

    fn opts() -> SshOptions {
        SshOptions {
            accept_new_host_keys: false,
            parallel: 4,
            agent: AgentSource::Copy,
            connect_timeout_secs: 10,
            expected_version: "nfvi-verify 0.1.0".into(),
            program: "ssh".into(),
            agent_binary: None,
        }
    }

    const BASE: &str = "-o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=10 \
                        -o ServerAliveInterval=5 -o ServerAliveCountMax=3";

    #[test]
    fn connection_options_follow_the_inventory() {
        let key = Connection {
            key_file: Some(PathBuf::from("/home/ops/.ssh/id_ed25519")),
            ..conn()
        };
        let everything = Connection {
            port: Some(2222),
            user: Some("kolla".into()),
            key_file: Some(PathBuf::from("/k")),
            common_args: vec!["-o".into(), "ProxyJump=bastion".into()],
            extra_args: vec!["-4".into()],
            ..conn()
        };
        for (c, accept_new, want) in [
            (conn(), false, BASE.to_owned()),
            (
                conn(),
                true,
                BASE.replace(
                    "StrictHostKeyChecking=yes",
                    "StrictHostKeyChecking=accept-new",
                ),
            ),
            (
                Connection {
                    port: Some(2222),
                    ..conn()
                },
                false,
                format!("{BASE} -p 2222"),
            ),
            (
                Connection {
                    user: Some("kolla".into()),
                    ..conn()
                },
                false,
                format!("{BASE} -l kolla"),
            ),
            (
                key,
                false,
                format!("{BASE} -i /home/ops/.ssh/id_ed25519 -o IdentitiesOnly=yes"),
            ),
            (
                everything,
                false,
                format!(
                    "{BASE} -p 2222 -l kolla -i /k -o IdentitiesOnly=yes -o ProxyJump=bastion -4"
                ),
            ),
        ] {
            let o = SshOptions {
                accept_new_host_keys: accept_new,
                ..opts()
            };
            assert_eq!(connection_options(&c, &o).join(" "), want);
        }
    }

    #[test]
    fn master_control_and_remote_command_lines() {
        let c = Connection {
            user: Some("kolla".into()),
            ..conn()
        };
        let ctl = Path::new("/tmp/nfvi-ssh-x/n0");
        assert_eq!(
            master("ssh", &c, &opts(), ctl).join(" "),
            format!(
                "ssh -M -N -o ControlPath=/tmp/nfvi-ssh-x/n0 -o ControlPersist=no {BASE} -l kolla \
                 198.19.10.12"
            )
        );
        assert_eq!(
            control("ssh", &c, &opts(), ctl, "check").join(" "),
            format!("ssh -S /tmp/nfvi-ssh-x/n0 -O check {BASE} -l kolla 198.19.10.12")
        );
        let argv = remote("ssh", &c, &opts(), ctl, "echo hi; exit 3");
        assert_eq!(
            argv.join(" "),
            format!(
                "ssh -S /tmp/nfvi-ssh-x/n0 -o ControlMaster=no {BASE} -l kolla 198.19.10.12 -- \
                 echo hi; exit 3"
            )
        );
        // The remote command stays one word of argv.
        assert_eq!(argv.last().map(String::as_str), Some("echo hi; exit 3"));
    }

    #[test]
    fn the_agent_runs_with_become_and_cleans_its_directory() {
        let dir = "/tmp/nfvi-verify.AbC123xyZ0";
        let agent = format!("{dir}/nfvi-verify");
        for (c, want) in [
            (
                conn(),
                format!("{agent} node; rc=$?; rm -rf {dir}; exit $rc"),
            ),
            (
                Connection {
                    become_root: true,
                    user: Some("kolla".into()),
                    ..conn()
                },
                format!("sudo -n {agent} node; rc=$?; rm -rf {dir}; exit $rc"),
            ),
            (
                Connection {
                    become_root: true,
                    user: Some("root".into()),
                    ..conn()
                },
                format!("{agent} node; rc=$?; rm -rf {dir}; exit $rc"),
            ),
            (
                Connection {
                    become_root: true,
                    become_user: Some("ops admin".into()),
                    ..conn()
                },
                format!("sudo -n -u 'ops admin' {agent} node; rc=$?; rm -rf {dir}; exit $rc"),
            ),
        ] {
            let sha = "ab12";
            let check = format!(
                "printf '%s  %s\\n' {sha} {agent} | sha256sum -c --status || {{ echo 'the \
                 copied agent changed after it was checked' >&2; rm -rf {dir}; exit 97; }}; "
            );
            assert_eq!(
                agent_command(&c, &agent, Some((dir, sha))),
                format!("{check}{want}")
            );
        }
        // Only hexadecimal digits of the digest reach the command line.
        assert!(
            agent_command(&conn(), &agent, Some((dir, "ab;rm -rf /")))
                .starts_with(&format!("printf '%s  %s\\n' abf {agent}"))
        );
        // An installed agent is not removed, and its path is quoted.
        assert_eq!(
            agent_command(&conn(), "/opt/nfvi tools/nfvi-verify", None),
            "'/opt/nfvi tools/nfvi-verify' node"
        );
        assert_eq!(
            install_command(dir),
            format!("cat > {agent} && chmod 700 {agent} && sha256sum {agent}")
        );
        assert_eq!(remove_command(dir), format!("rm -rf {dir}"));
        assert_eq!(
            version_command("/usr/local/bin/nfvi-verify"),
            "/usr/local/bin/nfvi-verify --version"
        );
    }

    #[test]
    fn spawned_commands_are_quoted_tied_to_their_input_and_clean_their_directory() {
        let dir = "/tmp/nfvi-verify.AbC123xyZ0";
        let args = ["probe", "serve", "--bind", "198.19.25.11:40000", "it's"].map(str::to_owned);
        let cmd = spawn_command(
            &become_prefix(&Connection {
                become_root: true,
                user: Some("kolla".into()),
                ..conn()
            }),
            &format!("{dir}/nfvi-verify"),
            &args,
            Some(dir),
        );
        assert_eq!(
            cmd,
            format!(
                "exec 3<&0; (exec sudo -n {dir}/nfvi-verify probe serve --bind \
                 198.19.25.11:40000 \"it's\") </dev/null 3<&- & p=$!; {{ while read -r l; do :; \
                 done <&3; kill -TERM $p 2>/dev/null; }} </dev/null >/dev/null 2>&1 & w=$!; \
                 exec 3<&-; wait $p; rc=$?; kill $w 2>/dev/null; rm -rf {dir}; exit $rc"
            )
        );
        // An installed agent: nothing to remove.
        let cmd = spawn_command("", "/opt/nfvi tools/nfvi-verify", &args[..1], None);
        assert!(
            cmd.starts_with("exec 3<&0; (exec '/opt/nfvi tools/nfvi-verify' probe) "),
            "{cmd}"
        );
        assert!(cmd.ends_with("kill $w 2>/dev/null; exit $rc"), "{cmd}");
        let become_root = Connection {
            become_root: true,
            ..conn()
        };
        assert_eq!(local_become_prefix(&conn(), false), "");
        assert_eq!(local_become_prefix(&become_root, false), "sudo -n ");
        assert_eq!(local_become_prefix(&become_root, true), "");
    }

    #[test]
    fn only_directories_mktemp_makes_are_accepted() {
        assert!(is_agent_dir("/tmp/nfvi-verify.AbC123xyZ0"));
        for bad in [
            "",
            "/tmp/nfvi-verify.",
            "/tmp/nfvi-verify.short",
            "/tmp/nfvi-verify.AbC123xyZ0/..",
            "/tmp/nfvi-verify.AbC12; rm -rf /",
            "/var/tmp/nfvi-verify.AbC123xyZ0",
            "/tmp/nfvi-verify.AbC123xyZé",
        ] {
            assert!(!is_agent_dir(bad), "{bad}");
        }
    }

    #[test]
    fn a_local_node_runs_the_agent_directly() {
        let exe = Path::new("/usr/bin/nfvi-verify");
        assert_eq!(
            local_agent(&conn(), exe, false),
            ["/usr/bin/nfvi-verify", "node"]
        );
        let become_root = Connection {
            become_root: true,
            ..conn()
        };
        assert_eq!(
            local_agent(&become_root, exe, false),
            ["sudo", "-n", "/usr/bin/nfvi-verify", "node"]
        );
        assert_eq!(
            local_agent(&become_root, exe, true),
            ["/usr/bin/nfvi-verify", "node"]
        );
    }
    #[test]
    fn a_copied_agent_that_changed_after_its_check_does_not_run() {
        use std::os::unix::fs::PermissionsExt;
        let sh = |cmd: &str| {
            std::process::Command::new("sh")
                .args(["-c", cmd])
                .output()
                .unwrap()
        };
        for tampered in [false, true] {
            let dir = tempfile::tempdir().unwrap().keep();
            let agent = dir.join("nfvi-verify");
            std::fs::write(&agent, "#!/bin/sh\necho ran \"$1\"\n").unwrap();
            std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o700)).unwrap();
            let digest =
                ring::digest::digest(&ring::digest::SHA256, &std::fs::read(&agent).unwrap());
            let sha: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
            if tampered {
                std::fs::write(&agent, "#!/bin/sh\necho planted\n").unwrap();
            }
            let (d, a) = (dir.display().to_string(), agent.display().to_string());
            let out = sh(&agent_command(&conn(), &a, Some((&d, &sha))));
            let stdout = String::from_utf8_lossy(&out.stdout);
            if tampered {
                assert_eq!(out.status.code(), Some(97));
                assert!(!stdout.contains("planted"), "{stdout}");
            } else {
                assert!(out.status.success(), "{out:?}");
                assert_eq!(stdout.trim(), "ran node");
            }
            assert!(!dir.exists(), "the directory is removed either way");
        }
    }
    #[test]
    fn one_session_copies_checks_and_runs_the_agent_with_the_rest_of_its_input() {
        use std::io::Write;
        let agent = b"#!/bin/sh\nread -r request\necho \"ran $1 from $0 with $request\"\n".to_vec();
        let digest = ring::digest::digest(&ring::digest::SHA256, &agent);
        let sha: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        let run = |sha: &str| {
            let mut child = std::process::Command::new("sh")
                .args(["-c", &copy_and_run_command(&conn(), agent.len(), sha)])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(&agent).unwrap();
            stdin.write_all(b"{\"request\":1}\n").unwrap();
            drop(stdin);
            child.wait_with_output().unwrap()
        };
        let out = run(&sha);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{out:?}");
        assert!(
            stdout.starts_with("ran node from /tmp/nfvi-verify."),
            "{stdout}"
        );
        assert!(
            stdout.trim_end().ends_with(r#"with {"request":1}"#),
            "{stdout}"
        );
        let path = stdout.split_whitespace().nth(3).unwrap();
        let dir = std::path::Path::new(path).parent().unwrap();
        assert!(!dir.exists(), "{} is removed", dir.display());
        // Another digest: nothing runs.
        let out = run(&"0".repeat(64));
        assert_eq!(out.status.code(), Some(97), "{out:?}");
        assert!(out.stdout.is_empty());
        assert!(String::from_utf8_lossy(&out.stderr).contains("is not the one sent"));
        // The connection ends halfway through the agent: nothing runs, and it says so.
        let mut child = std::process::Command::new("sh")
            .args(["-c", &copy_and_run_command(&conn(), agent.len(), &sha)])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&agent[..agent.len() / 2]).unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(97), "{out:?}");
        assert!(out.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "only {} of the agent's {} bytes arrived",
                agent.len() / 2,
                agent.len()
            )),
            "{stderr}"
        );
    }
}
