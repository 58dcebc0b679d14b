//! Hostile arguments and files for every command that reads input: whatever comes in, the
//! binary answers with one of its documented exit codes and never panics (exit 101, or
//! "panicked at" on stderr). Every case is one that stops before anything touches the NFVI.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

/// Files of every kind a command reads, made hostile.
fn corpus(dir: &Path) -> Vec<(String, std::path::PathBuf)> {
    let mut files = Vec::new();
    let mut add = |name: &str, bytes: Vec<u8>| {
        files.push((name.to_owned(), write_file(dir, name, bytes)));
    };
    add("empty", Vec::new());
    add("nul-bytes", vec![0; 4096]);
    add(
        "invalid-utf8",
        vec![0xff, 0xfe, 0xc3, 0x28, b'\n', 0xa0, 0xa1],
    );
    add("binary", (0..=255u8).cycle().take(70_000).collect());
    add("long-line", vec![b'a'; 2 << 20]);
    add(
        "deep-toml",
        format!("a = {}1{}", "[".repeat(50_000), "]".repeat(50_000)).into_bytes(),
    );
    add(
        "deep-json",
        format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
    );
    add(
        "json-not-results",
        br#"{"schema_version": 5, "checks": [{"id": 1}]}"#.to_vec(),
    );
    add(
        "json-huge-number",
        br#"{"schema_version": 99999999999999999999999999}"#.to_vec(),
    );
    add(
        "toml-wrong-types",
        b"name = 1\n[cni]\npaths = \"x\"\n[datapath]\nrounds = -1\n".to_vec(),
    );
    add(
        "waivers-odd",
        b"[[waiver]]\nchecks = [\"\xe2\x80\xae*\"]\nreason = \"r\"\nowner = \"o\"\nexpires = 9999-12-31\nnode = \"\"\n".to_vec(),
    );
    add(
        "xml-doctype",
        b"<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY b \"c\">]><testsuites>&b;</testsuites>"
            .to_vec(),
    );
    add(
        "gzip-garbage",
        [&[0x1f, 0x8b, 8, 0][..], &[0xAA; 512][..]].concat(),
    );
    add(
        "sshsig-garbage",
        b"-----BEGIN SSH SIGNATURE-----\n////\n-----END SSH SIGNATURE-----\n".to_vec(),
    );
    add(
        "allowed-signers-odd",
        b"* namespaces=\"\" ssh-ed25519 AAAA\n\"unterminated ssh-rsa AAAAB3\n".to_vec(),
    );
    files.push(("a-directory".to_owned(), dir.to_owned()));
    files.push(("missing".to_owned(), dir.join("does-not-exist")));
    files
}

fn assert_no_panic(args: &[String]) {
    let out = nfvi()
        .args(args)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    assert!(
        matches!(code, Some(0..=3)),
        "{args:?}: exit {code:?}\n{stderr}"
    );
    assert!(!stderr.contains("panicked at"), "{args:?}: {stderr}");
}

#[test]
fn no_hostile_file_or_argument_makes_the_binary_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let files = corpus(tmp.path());
    let s = |v: &[&str]| v.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    let mut cases: Vec<Vec<String>> = Vec::new();
    for (_, f) in &files {
        let f = f.display().to_string();
        cases.push(s(&["target", "--check", &f]));
        cases.push(s(&["list", "--target", &f]));
        cases.push(s(&[
            "run",
            "--suite",
            "host",
            "--target",
            &f,
            "--out",
            &out.display().to_string(),
        ]));
        cases.push(s(&[
            "run",
            "--suite",
            "host",
            "--waivers",
            &f,
            "--out",
            &out.display().to_string(),
        ]));
        cases.push(s(&[
            "run",
            "--suite",
            "evidence",
            "--evidence",
            &f,
            "--out",
            &out.display().to_string(),
        ]));
        cases.push(s(&[
            "run",
            "--suite",
            "host",
            "--rerun-failed",
            &f,
            "--out",
            &out.display().to_string(),
        ]));
        cases.push(s(&["run", "--resume", &f]));
        cases.push(s(&[
            "report",
            "--from",
            &f,
            "--html",
            &tmp.path().join("r.html").display().to_string(),
        ]));
        cases.push(s(&["diff", &f, &f]));
        cases.push(s(&[
            "bundle",
            &f,
            "--sign",
            &f,
            "--out",
            &tmp.path().join("b.tgz").display().to_string(),
        ]));
        cases.push(s(&[
            "verify",
            &f,
            "--allowed-signers",
            &f,
            "--signature",
            &f,
        ]));
        cases.push(s(&["list", "--inventory", &f]));
        cases.push(s(&["node", "--request", &f]));
    }
    for value in [
        "",
        "0",
        "-0",
        "1e309",
        "NaN",
        "inf",
        "18446744073709551616",
        "18446744073709551615",
        "1099511627776",
        "4294967296",
        "-1",
        "99999999999999999999999",
        "0.0000000001us",
        "5xs",
        "\u{202e}",
        "%n%n%n",
        "../../../../etc/passwd",
        "*",
        "?*?*?*",
    ] {
        cases.push(s(&["list", "--suite", value]));
        cases.push(s(&["list", "--filter", value]));
        // Parsed in full, then stopped by a filter that matches nothing (exit 2): no run.
        let stop = [
            "--filter",
            "no-such-check-*",
            "--out",
            "/nonexistent/never-written",
        ];
        for (flag, v) in [
            ("--jobs", value),
            ("--timeout", value),
            ("--evidence-max-age", value),
            ("--cni-plugins", value),
            ("--nodes-parallel", value),
        ] {
            let mut args = s(&["run", "--suite", "host", flag, v]);
            args.extend(s(&stop));
            cases.push(args);
        }
        cases.push(s(&[
            "run",
            "--suite",
            value,
            "--out",
            "/nonexistent/never-written",
        ]));
        cases.push(s(&["probe", "ping", "127.0.0.1:9", "--duration", value]));
        cases.push(s(&["probe", "ping", "127.0.0.1:9", "--count", value]));
        cases.push(s(&["probe", "ping", "127.0.0.1:9", "--size", value]));
        cases.push(s(&["probe", "ping", "127.0.0.1:9", "--warmup", value]));
        cases.push(s(&[
            "probe",
            "ping",
            "127.0.0.1:9",
            "--duration",
            "1s",
            "--warmup",
            value,
        ]));
        for flag in ["--rounds", "--block", "--warmup"] {
            cases.push(s(&[
                "probe",
                "compare",
                "127.0.0.1:9",
                "127.0.0.1:10",
                flag,
                value,
            ]));
        }
        cases.push(s(&[
            "probe",
            "ping",
            "127.0.0.1:9",
            "--interval",
            value,
            "--mode",
            "paced",
        ]));
        cases.push(s(&["probe", "compare", value, value]));
        cases.push(s(&[
            "lab",
            "up",
            "--nodes",
            value,
            "--engine",
            "no-such-engine",
        ]));
        cases.push(s(&["verify", value, "--allowed-signers", value]));
    }
    for args in &cases {
        assert_no_panic(args);
    }
}

/// Counts past what the prober can do are refused at the command line (exit 2), naming the
/// flag, the value and the range, before anything is sent or allocated.
#[test]
fn huge_counts_are_refused_naming_the_flag_the_value_and_the_range() {
    let s = |v: &[&str]| v.iter().map(|a| (*a).to_owned()).collect::<Vec<String>>();
    for (args, flag, value, range) in [
        (
            s(&[
                "probe",
                "compare",
                "127.0.0.1:9",
                "127.0.0.1:10",
                "--rounds",
                "1099511627776",
            ]),
            "--rounds",
            "1099511627776",
            "1 to 100000",
        ),
        (
            s(&[
                "probe",
                "ping",
                "127.0.0.1:9",
                "--count",
                "18446744073709551615",
            ]),
            "--count",
            "18446744073709551615",
            "1 to 1000000000",
        ),
        (
            s(&[
                "probe",
                "ping",
                "127.0.0.1:9",
                "--duration",
                "1s",
                "--warmup",
                "18446744073709551615",
            ]),
            "--warmup",
            "18446744073709551615",
            "0 to 1000000000",
        ),
        (
            s(&["probe", "ping", "127.0.0.1:9", "--size", "65508"]),
            "--size",
            "65508",
            "8 to 65507",
        ),
        (
            s(&[
                "run",
                "--suite",
                "host",
                "--jobs",
                "0",
                "--out",
                "/nonexistent/never-written",
            ]),
            "--jobs",
            "0",
            "1 to 256",
        ),
        (
            s(&[
                "run",
                "--suite",
                "host",
                "--timeout",
                "18446744073709551615",
                "--out",
                "/nonexistent/never-written",
            ]),
            "--timeout",
            "18446744073709551615",
            "1 to 604800",
        ),
    ] {
        let out = nfvi()
            .args(&args)
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        for part in [flag, value, range] {
            assert!(stderr.contains(part), "{args:?}: no {part:?} in {stderr}");
        }
    }
}
