//! Certification bundles: OpenSSH keys (public and private), SSHSIG armor and blobs,
//! allowed_signers files and their patterns and times, the manifest, tar.gz reading, and
//! the redaction pass (whose property: a planted secret never survives).

use std::collections::BTreeSet;
use std::sync::LazyLock;

use nfvi_certify::allowed_signers::{AllowedSigners, match_pattern_list, parse_time};
use nfvi_certify::archive::{Limits, read_selected, read_strict, write_tar_gz};
use nfvi_certify::redact::{redact, scan_binary};
use nfvi_certify::sshkey::{PrivateKey, PublicKey};
use nfvi_certify::sshsig::Signature;
use nfvi_fuzz::proptest::prelude::*;
use nfvi_fuzz::{DEFAULT_CASES, bytes, config, seeds, text};

const PUBLIC: &[&str] = &[
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAwZeMeZ8/r+pLj1AbHmrWfj2r9oWjDj+NMr8XagvS0i alice",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEN0M3pZN8kUGcRiZ0fIKKwgIsyZWjbfZkNYGSuy9Ybw",
];

/// Real keys and a real signature from ssh-keygen when it is installed (throwaway keys made
/// per run, never written into the repository); the public seeds above otherwise.
struct Real {
    private: Vec<Vec<u8>>,
    public: Vec<Vec<u8>>,
    signatures: Vec<Vec<u8>>,
}

static REAL: LazyLock<Real> = LazyLock::new(|| {
    let mut real = Real {
        private: Vec::new(),
        public: seeds(PUBLIC),
        signatures: Vec::new(),
    };
    let Ok(dir) = tempfile::tempdir() else {
        return real;
    };
    let data = dir.path().join("data");
    std::fs::write(&data, b"results").expect("scratch file");
    for (t, bits) in [("ed25519", ""), ("ecdsa", "256"), ("rsa", "2048")] {
        let key = dir.path().join(t);
        let mut keygen = std::process::Command::new("ssh-keygen");
        keygen
            .args(["-q", "-t", t, "-N", "", "-C", "fuzz", "-f"])
            .arg(&key);
        if !bits.is_empty() {
            keygen.args(["-b", bits]);
        }
        if !keygen.output().is_ok_and(|o| o.status.success()) {
            continue;
        }
        let sign = std::process::Command::new("ssh-keygen")
            .args(["-Y", "sign", "-n", "nfvi-verify", "-f"])
            .arg(&key)
            .arg(&data)
            .output();
        if sign.is_ok_and(|o| o.status.success()) {
            real.signatures
                .push(std::fs::read(dir.path().join("data.sig")).expect("signature"));
            let _ = std::fs::remove_file(dir.path().join("data.sig"));
        }
        real.private.push(std::fs::read(&key).expect("key"));
        real.public
            .push(std::fs::read(key.with_extension("pub")).expect("public key"));
    }
    if real.private.is_empty() {
        real.private = seeds(&[
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZWQyNTUxOQAAACAMGXjHmfP6/qS49QGx5q1n49q/aFow4/jTK/F2oL0tIgAAAIg=\n-----END OPENSSH PRIVATE KEY-----\n",
        ]);
    }
    if real.signatures.is_empty() {
        real.signatures = seeds(&[
            "-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAgDBl4x5nz+v6kuPUBseatZ+Pav2haMOP40yvxdqC9LSIAAAALbmZ2aS12ZXJpZnkAAAAAAAAABnNoYTUxMgAAAFMAAAALc3NoLWVkMjU1MTkAAABA\n-----END SSH SIGNATURE-----\n",
        ]);
    }
    real
});

/// The base64 blob inside an armored or one-line form, decoded (for the blob parsers).
fn blob_of(seed: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(seed);
    if let Ok(k) = PublicKey::from_openssh(text.trim()) {
        return k.blob();
    }
    use base64::Engine as _;
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .unwrap_or_default()
}

const SIGNERS: &[&str] = &[
    "alice@example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAwZeMeZ8/r+pLj1AbHmrWfj2r9oWjDj+NMr8XagvS0i\n",
    "*@example.com,!bob@example.com namespaces=\"nfvi-verify,file\",valid-after=\"20240101\",valid-before=\"20991231235959Z\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEN0M3pZN8kUGcRiZ0fIKKwgIsyZWjbfZkNYGSuy9Ybw comment\n# comment\n\n",
    "\"quoted principal\" cert-authority ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAwZeMeZ8/r+pLj1AbHmrWfj2r9oWjDj+NMr8XagvS0i\n",
];

proptest! {
    #![proptest_config(config(DEFAULT_CASES))]

    #[test]
    fn fuzz_sshkey_public(t in text(REAL.public.clone())) {
        if let Ok(k) = PublicKey::from_openssh(&t) {
            prop_assert_eq!(PublicKey::from_openssh(&k.to_openssh()).ok(), Some(k));
        }
    }

    #[test]
    fn fuzz_sshkey_blob(b in bytes(REAL.public.iter().map(|s| blob_of(s)).collect())) {
        if let Ok(k) = PublicKey::from_blob(&b) {
            prop_assert_eq!(PublicKey::from_blob(&k.blob()).ok(), Some(k));
        }
    }

    /// Private keys: a key that parses signs data its public half verifies.
    #[test]
    fn fuzz_sshkey_private(t in text(REAL.private.clone())) {
        if let Ok(k) = PrivateKey::from_openssh(&t)
            && let Ok(sig) = k.sign(b"data")
        {
            prop_assert!(k.public().verify(&sig, b"data").is_ok());
        }
    }

    #[test]
    fn fuzz_sshsig_armor(t in text(REAL.signatures.clone())) {
        if let Ok(s) = Signature::from_armored(&t) {
            let _ = s.algorithm();
            let _ = s.verify("nfvi-verify", &mut &b"results"[..]);
        }
    }

    #[test]
    fn fuzz_sshsig_blob(b in bytes(REAL.signatures.iter().map(|s| blob_of(s)).collect())) {
        if let Ok(s) = Signature::from_blob(&b) {
            let _ = s.verify("nfvi-verify", &mut &b"results"[..]);
        }
    }

    #[test]
    fn fuzz_allowed_signers(t in text(seeds(SIGNERS))) {
        if let Ok(a) = AllowedSigners::parse(&t) {
            for k in &REAL.public {
                let blob = blob_of(k);
                let now = chrono::Utc::now();
                let _ = a.authorize(&blob, Some("alice@example.com"), "nfvi-verify", now);
                let _ = a.authorize(&blob, None, "nfvi-verify", now);
            }
        }
    }

    #[test]
    fn fuzz_allowed_signers_patterns(s in text(seeds(&["alice@example.com", "bob"])), list in text(seeds(&["*@example.com,!bob*", "a?ice@*,x"]))) {
        let _ = match_pattern_list(&s, &list);
        let _ = nfvi_certify::allowed_signers::match_pattern(&s, &list);
    }

    #[test]
    fn fuzz_allowed_signers_time(t in text(seeds(&["20240101", "202401011230", "20240101123059", "20991231235959Z"]))) {
        let _ = parse_time(&t);
    }

    #[test]
    fn fuzz_manifest(v in nfvi_fuzz::json(vec![serde_json::json!({
        "bundle_format": 1, "run_id": "r", "verdict": "conformant",
        "tool": {"name": "nfvi-verify", "version": "0.1.0", "git_sha": "0", "bundler_sha256": "0", "bundler_version": "1"},
        "suite": {"name": "rc2", "version": "1"}, "reference_model_sha256": "00",
        "members": [{"path": "results.json", "sha256": "00", "size": 1, "binary": true}],
        "evidence": [{"original_path": "/e", "original_sha256": "00", "archive_members": [], "bundle_members": ["e"]}],
        "redactions": [{"member": "m", "line": 1, "kind": "password"}],
    })])) {
        let _ = serde_json::from_value::<nfvi_certify::manifest::Manifest>(v);
    }

    /// Redaction: whatever surrounds it, a secret on a line of its own is gone afterwards,
    /// and the pass never panics on any text (or on a binary member).
    #[test]
    fn fuzz_redact(
        t in text(seeds(&[
            "{\"env\": {\"OS_PASSWORD\": \"a\\\"b\"}, \"url\": \"https://u:p@h/\"}\n",
            "export OS_PASSWORD='x'\\''y'\nAuthorization: Bearer abc.def.ghi\n",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n",
            "token: |\n  multi\n  line\npassword: >-\n  folded\n",
        ])),
        at in any::<prop::sample::Index>(),
        form in 0usize..5,
    ) {
        let (out, _) = redact("m", &t);
        prop_assert!(!out.is_empty() || t.is_empty());
        let _ = scan_binary("m", t.as_bytes());
        const PLANT: &str = "Xq7PlantedSecret9";
        let line = [
            format!("password={PLANT}\n"),
            format!("\"password\": \"{PLANT}\"\n"),
            format!("export OS_PASSWORD='{PLANT}'\n"),
            format!("Authorization: Bearer {PLANT}\n"),
            format!("url: https://user:{PLANT}@example.com/\n"),
        ][form].clone();
        let starts: Vec<usize> = std::iter::once(0)
            .chain(t.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let p = starts[at.index(starts.len())];
        let planted = format!("{}{line}{}", &t[..p], &t[p..]);
        let (out, found) = redact("m", &planted);
        prop_assert!(!out.contains(PLANT), "planted secret survived in:\n{out}");
        prop_assert!(!found.is_empty());
    }
}

proptest! {
    // Inflating and reading archives is slower: fewer cases.
    #![proptest_config(config(96))]

    /// tar.gz reading: mutated gzip streams, and valid gzip of mutated tar streams (headers,
    /// sizes, names, trailing blocks), under small limits.
    #[test]
    fn fuzz_archive(raw in bytes(vec![TAR_GZ.clone()]), tar in bytes(vec![TAR.clone()])) {
        let limits = Limits { member: 2048, total: 8192, entries: 16 };
        let gz = gzip(&tar);
        for input in [&raw, &gz] {
            if let Ok(members) = read_strict(&input[..], &limits) {
                let total: usize = members.iter().map(|(_, b)| b.len()).sum();
                prop_assert!(members.len() <= 16 && total <= 8192);
            }
            let wanted: BTreeSet<String> = ["results.json", "./manifest.json", "plugins/sonobuoy.yaml"]
                .iter().map(|s| (*s).to_owned()).collect();
            let _ = read_selected(&input[..], &wanted, &limits);
        }
    }
}

static MEMBERS: LazyLock<Vec<(String, Vec<u8>)>> = LazyLock::new(|| {
    vec![
        ("manifest.json".into(), b"{\"format\":1}".to_vec()),
        ("results.json".into(), b"{\"schema_version\":6}".to_vec()),
        ("plugins/sonobuoy.yaml".into(), b"name: e2e\n".to_vec()),
    ]
});
static TAR_GZ: LazyLock<Vec<u8>> =
    LazyLock::new(|| write_tar_gz(&MEMBERS, 1_700_000_000).expect("tar.gz"));
static TAR: LazyLock<Vec<u8>> = LazyLock::new(|| {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&TAR_GZ[..])
        .read_to_end(&mut out)
        .expect("gunzip");
    out
});

fn gzip(b: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).expect("gzip");
    e.finish().expect("gzip")
}
