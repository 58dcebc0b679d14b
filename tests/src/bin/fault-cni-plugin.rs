//! A faulty CNI plugin for the tests: it wraps a real plugin and breaks one rule of the spec.
//! Installed as a symlink named like the plugin it impersonates (say `bridge`), it reads its
//! fault from `<link>.fault` and the real plugin's path from `<link>.real` next to the link.
//!
//! Faults: `del-not-idempotent` (the second DEL of an attachment fails), `del-noop` (DEL
//! succeeds without doing anything), `wrong-result` (ADD results carry `ips[].version` and an
//! out-of-range interface index), `error-exit-0` (failures exit 0), `garbage` (a log line
//! before the JSON on stdout), `huge` (64 MiB of output), `hang` (ADD never returns).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn main() {
    let me = PathBuf::from(std::env::args_os().next().expect("argv0"));
    let side = |ext: &str| {
        std::fs::read_to_string(me.with_extension(ext))
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let (fault, real) = (side("fault"), side("real"));
    let command = std::env::var("CNI_COMMAND").unwrap_or_default();
    let mut stdin = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut stdin);

    match (fault.as_str(), command.as_str()) {
        ("hang", "ADD") => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
        ("huge", "ADD") => {
            let chunk = vec![b'x'; 1 << 20];
            let mut out = std::io::stdout().lock();
            for _ in 0..64 {
                if out.write_all(&chunk).is_err() {
                    break;
                }
            }
            std::process::exit(0);
        }
        ("del-noop", "DEL") => std::process::exit(0),
        ("del-not-idempotent", "DEL") => {
            let key = format!(
                "{}-{}",
                std::env::var("CNI_CONTAINERID").unwrap_or_default(),
                std::env::var("CNI_IFNAME").unwrap_or_default()
            );
            let marker = me.with_extension(format!("deleted-{key}"));
            if marker.exists() {
                println!("{{\"cniVersion\":\"1.0.0\",\"code\":999,\"msg\":\"already deleted\"}}");
                std::process::exit(1);
            }
            let _ = std::fs::write(&marker, b"");
        }
        _ => {}
    }

    let mut child = Command::new(&real)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the real plugin {real}: {e}"));
    child.stdin.take().expect("stdin").write_all(&stdin).ok();
    let out = child.wait_with_output().expect("real plugin output");
    let mut stdout = out.stdout;
    let mut code = out.status.code().unwrap_or(1);
    match (fault.as_str(), command.as_str()) {
        ("wrong-result", "ADD") if code == 0 => {
            if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&stdout) {
                if let Some(ips) = v["ips"].as_array_mut() {
                    for ip in ips {
                        ip["version"] = "4".into();
                        ip["interface"] = 42.into();
                    }
                }
                stdout = serde_json::to_vec(&v).expect("json");
            }
        }
        ("error-exit-0", _) if code != 0 => code = 0,
        ("garbage", "ADD") => {
            let mut with_log = b"starting plugin\n".to_vec();
            with_log.extend(stdout);
            stdout = with_log;
        }
        _ => {}
    }
    std::io::stdout().write_all(&stdout).ok();
    std::process::exit(code);
}
