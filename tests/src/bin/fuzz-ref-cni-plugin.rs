//! A reference CNI plugin for the fuzzing tests: it follows the contract the `cni-fuzz`
//! campaign judges, whatever it is given, so a campaign against it must find nothing; and
//! it breaks that contract on purpose, for chosen input shapes, so a campaign must find and
//! shrink each fault. It creates nothing, so it cannot leave anything behind unless told to.
//!
//! Installed as a symbolic link named like the plugin it stands for (`tuning`), it reads a
//! comma-separated list of faults from `<link>.fault` next to the link:
//! - `panic`: a Go-like panic (stack trace on stderr, exit 2, nothing on stdout) when
//!   `prevResult.ips[].interface` indexes past `prevResult.interfaces`;
//! - `no-json`: a plain-text line on stdout instead of the error object for an unsupported
//!   `cniVersion`;
//! - `leak`: an ADD without `mtu` creates a veth pair in the namespace the plugin runs in
//!   and never removes it.

use std::io::Read;
use std::path::PathBuf;

use serde_json::{Value, json};

const SUPPORTED: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0"];

fn fail(code: u32, msg: &str) -> ! {
    println!(
        "{}",
        json!({"cniVersion": "1.0.0", "code": code, "msg": msg})
    );
    std::process::exit(1);
}

fn main() {
    let me = PathBuf::from(std::env::args_os().next().expect("argv0"));
    let faults = std::fs::read_to_string(me.with_extension("fault")).unwrap_or_default();
    let fault = |f: &str| faults.split(',').any(|x| x.trim() == f);
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut stdin = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut stdin);

    let Some(command) = var("CNI_COMMAND") else {
        fail(4, "required env variable CNI_COMMAND missing");
    };
    let conf: Option<Value> = serde_json::from_slice(&stdin).ok();
    if command == "VERSION" {
        let asked = conf
            .as_ref()
            .and_then(|c| c["cniVersion"].as_str())
            .unwrap_or("1.0.0");
        let echoed = if SUPPORTED.contains(&asked) {
            asked
        } else {
            "1.0.0"
        };
        println!(
            "{}",
            json!({"cniVersion": echoed, "supportedVersions": SUPPORTED})
        );
        return;
    }
    if !matches!(command.as_str(), "ADD" | "DEL" | "CHECK") {
        fail(4, &format!("unknown CNI_COMMAND: {command}"));
    }
    let mut needed = vec!["CNI_CONTAINERID", "CNI_IFNAME"];
    if command != "DEL" {
        needed.push("CNI_NETNS");
    }
    if let Some(missing) = needed.iter().find(|k| var(k).is_none()) {
        fail(4, &format!("required env variable {missing} missing"));
    }
    let Some(conf) = conf.filter(Value::is_object) else {
        fail(6, "cannot decode the network configuration");
    };
    let version = conf["cniVersion"].as_str().unwrap_or_default();
    if !SUPPORTED.contains(&version) {
        if fault("no-json") {
            println!("unsupported version {version:?}");
            std::process::exit(1);
        }
        fail(1, &format!("incompatible CNI version {version:?}"));
    }
    if conf["name"].as_str().is_none_or(str::is_empty) {
        fail(7, "the network configuration has no name");
    }
    let prev = &conf["prevResult"];
    let interfaces = prev["interfaces"].as_array().map_or(0, Vec::len) as u64;
    let out_of_range = prev["ips"].as_array().is_some_and(|ips| {
        ips.iter()
            .any(|ip| ip["interface"].as_u64().is_some_and(|i| i >= interfaces))
    });
    if fault("panic") && out_of_range {
        eprintln!(
            "panic: runtime error: index out of range [{interfaces}] with length {interfaces}\n\ngoroutine 1 [running]:\nmain.cmdAdd(0xc0000a6000)\n\tplugins/ref/main.go:42 +0x1d\nexit status 2"
        );
        std::process::exit(2);
    }
    if command == "ADD" {
        if fault("leak") && conf.get("mtu").is_none() {
            let id = std::process::id();
            let _ = std::process::Command::new("ip")
                .args([
                    "link",
                    "add",
                    &format!("nfvlk{id}"),
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &format!("nfvlp{id}"),
                ])
                .status();
        }
        println!("{}", json!({"cniVersion": version}));
    }
}
