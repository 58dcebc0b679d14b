//! `nfvspy`: a recording IPAM plugin built into the nfvi-verify binary. When the binary is
//! invoked under the name `nfvspy` (a symlink the CNI area creates in a private plugin
//! directory), it records the CNI_* environment and stdin it received, optionally writes a
//! marker to stderr and fails ADD with a chosen code, and otherwise delegates to the plugin
//! named in `ipam.delegate` (default `host-local`) found on CNI_PATH, with the same
//! environment and stdin. It lets the assertions observe what a main plugin passes to its
//! delegate (CNI-ADD-005), whether it cleans up after a failing delegate (CNI-ADD-006), and
//! whether it forwards the delegate's stderr (CNI-ADD-016).

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

/// The name the binary answers to as the spy plugin.
pub const SPY_NAME: &str = "nfvspy";

/// Runs the spy (the binary was started as `nfvspy`); returns its exit code.
pub(crate) fn run() -> i32 {
    let mut stdin = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut stdin);
    let conf: Value = serde_json::from_slice(&stdin).unwrap_or(Value::Null);
    let ipam = &conf["ipam"];
    let command = std::env::var("CNI_COMMAND").unwrap_or_default();
    let env: serde_json::Map<String, Value> = std::env::vars()
        .filter(|(k, _)| k.starts_with("CNI_"))
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    if let Some(path) = ipam["record"].as_str()
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        let line = json!({"env": env, "stdin": String::from_utf8_lossy(&stdin)});
        let _ = writeln!(f, "{line}");
    }
    if let Some(marker) = ipam["stderrMarker"].as_str() {
        eprintln!("{marker} {command}");
    }
    if command == "ADD"
        && let Some(code) = ipam["fail"]["code"].as_u64()
    {
        let err = json!({"cniVersion": conf["cniVersion"], "code": code, "msg": ipam["fail"]["msg"].as_str().unwrap_or("nfvspy: failing on purpose")});
        println!("{err}");
        return 1;
    }
    let delegate = ipam["delegate"].as_str().unwrap_or("host-local");
    let cni_path = std::env::var("CNI_PATH").unwrap_or_default();
    let Some(bin) = cni_path
        .split(':')
        .map(|d| Path::new(d).join(delegate))
        .find(|p| p.is_file())
    else {
        println!(
            "{}",
            json!({"code": 5, "msg": format!("nfvspy: delegate {delegate} not found on CNI_PATH")})
        );
        return 1;
    };
    let child = Command::new(bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn();
    let Ok(mut child) = child else {
        println!(
            "{}",
            json!({"code": 5, "msg": "nfvspy: cannot start the delegate"})
        );
        return 1;
    };
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(&stdin);
    }
    child.wait().ok().and_then(|s| s.code()).unwrap_or(1)
}
