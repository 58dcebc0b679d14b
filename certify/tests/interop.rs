//! Interoperation with the real OpenSSH `ssh-keygen`, both directions: signatures
//! nfvi-certify makes are accepted by `ssh-keygen -Y verify`, and signatures `ssh-keygen -Y
//! sign` makes are accepted by nfvi-certify; a wrong namespace and a changed byte are
//! refused by both. Without ssh-keygen the tests skip, except under CI=true.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nfvi_certify::allowed_signers::AllowedSigners;
use nfvi_certify::sshkey::{PrivateKey, PublicKey};
use nfvi_certify::sshsig::{self, NAMESPACE, Signature};

fn have_ssh_keygen() -> bool {
    let ok = Command::new("ssh-keygen")
        .arg("-?")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true: ssh-keygen (openssh-client) is needed"
        );
        eprintln!("SKIP: ssh-keygen is not installed (apt-get install openssh-client)");
    }
    ok
}

struct Keys {
    dir: tempfile::TempDir,
}

impl Keys {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Makes a key with `ssh-keygen -t TYPE -N ''` and returns its path.
    fn make(&self, name: &str, args: &[&str]) -> PathBuf {
        let path = self.dir.path().join(name);
        let out = Command::new("ssh-keygen")
            .args(["-q", "-N", "", "-C", name, "-f"])
            .arg(&path)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        path
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

fn pub_line(key: &Path) -> String {
    let mut p = key.as_os_str().to_owned();
    p.push(".pub");
    std::fs::read_to_string(p).unwrap().trim().to_owned()
}

/// `ssh-keygen -Y verify …`: (exit success, stdout + stderr).
fn keygen_verify(
    signers: &Path,
    identity: &str,
    ns: &str,
    sig: &Path,
    data: &Path,
) -> (bool, String) {
    let out = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(signers)
        .args(["-I", identity, "-n", ns, "-s"])
        .arg(sig)
        .stdin(std::fs::File::open(data).unwrap())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

const KINDS: &[(&str, &[&str])] = &[
    ("ed25519", &["-t", "ed25519"]),
    ("ecdsa256", &["-t", "ecdsa", "-b", "256"]),
    ("ecdsa384", &["-t", "ecdsa", "-b", "384"]),
    ("rsa", &["-t", "rsa", "-b", "3072"]),
];

#[test]
fn ssh_keygen_accepts_what_nfvi_certify_signs() {
    if !have_ssh_keygen() {
        return;
    }
    let k = Keys::new();
    let data = k.file("bundle.tar.gz", b"\x1f\x8b pretend bundle bytes\n");
    let mut flipped = std::fs::read(&data).unwrap();
    flipped[5] ^= 1;
    let flipped = k.file("flipped", &flipped);
    for (name, args) in KINDS {
        let key = k.make(name, args);
        let signers = k.file(
            &format!("{name}.allowed"),
            format!("reviewer@example.com {}\n", pub_line(&key)).as_bytes(),
        );
        let private = PrivateKey::from_openssh(&std::fs::read_to_string(&key).unwrap()).unwrap();
        let armored = sshsig::sign(
            &private,
            NAMESPACE,
            &mut std::fs::File::open(&data).unwrap(),
        )
        .unwrap();
        let sig = k.file(&format!("{name}.sig"), armored.as_bytes());
        // The armor is byte-for-byte what ssh-keygen writes for the same kind of key (70 columns).
        let theirs = Command::new("ssh-keygen")
            .args(["-Y", "sign", "-n", NAMESPACE, "-f"])
            .arg(&key)
            .stdin(std::fs::File::open(&data).unwrap())
            .output()
            .unwrap();
        let theirs = String::from_utf8(theirs.stdout).unwrap();
        let shape = |s: &str| s.lines().map(str::len).collect::<Vec<_>>();
        if *name == "ed25519" || *name == "rsa" {
            assert_eq!(
                shape(&armored),
                shape(&theirs),
                "{name}: armor differs\n{armored}\n{theirs}"
            );
        }

        let (ok, out) = keygen_verify(&signers, "reviewer@example.com", NAMESPACE, &sig, &data);
        assert!(ok, "{name}: ssh-keygen refused our signature: {out}");
        assert!(
            out.contains(&format!("Good \"{NAMESPACE}\" signature")),
            "{out}"
        );
        let (ok, out) = keygen_verify(&signers, "reviewer@example.com", "file", &sig, &data);
        assert!(!ok, "{name}: wrong namespace accepted: {out}");
        let (ok, out) = keygen_verify(&signers, "reviewer@example.com", NAMESPACE, &sig, &flipped);
        assert!(!ok, "{name}: a changed byte was accepted: {out}");
    }
}

#[test]
fn nfvi_certify_accepts_what_ssh_keygen_signs() {
    if !have_ssh_keygen() {
        return;
    }
    let k = Keys::new();
    let data = k.file("bundle.tar.gz", b"\x1f\x8b pretend bundle bytes\n");
    let mut flipped_bytes = std::fs::read(&data).unwrap();
    flipped_bytes[5] ^= 1;
    for (name, args) in KINDS {
        let key = k.make(name, args);
        for (ns, hash) in [
            (NAMESPACE, "sha512"),
            (NAMESPACE, "sha256"),
            ("file", "sha512"),
        ] {
            let out = Command::new("ssh-keygen")
                .args([
                    "-Y",
                    "sign",
                    "-n",
                    ns,
                    "-O",
                    &format!("hashalg={hash}"),
                    "-f",
                ])
                .arg(&key)
                .stdin(std::fs::File::open(&data).unwrap())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let sig = Signature::from_armored(&String::from_utf8(out.stdout).unwrap()).unwrap();
            let public = PublicKey::from_openssh(&pub_line(&key)).unwrap();
            assert_eq!(sig.public_key, public, "{name}");
            let result = sig.verify(NAMESPACE, &mut std::fs::read(&data).unwrap().as_slice());
            if ns == NAMESPACE {
                result.unwrap_or_else(|e| panic!("{name} {hash}: {e}"));
                assert!(
                    sig.verify(NAMESPACE, &mut flipped_bytes.as_slice())
                        .is_err(),
                    "{name}: changed byte accepted"
                );
                let signers = AllowedSigners::parse(&format!(
                    "reviewer@example.com namespaces=\"nfvi-verify\" {}",
                    pub_line(&key)
                ))
                .unwrap();
                let who = signers
                    .authorize(
                        &sig.public_key.blob(),
                        Some("reviewer@example.com"),
                        NAMESPACE,
                        chrono::Utc::now(),
                    )
                    .unwrap();
                assert_eq!(who[0].line, 1);
            } else {
                assert!(result.is_err(), "{name}: wrong namespace accepted");
            }
        }
        // A passphrase-protected key: a clear refusal naming ssh-keygen -Y sign.
        let enc = k.dir.path().join(format!("{name}-enc"));
        std::fs::copy(&key, &enc).unwrap();
        let st = Command::new("ssh-keygen")
            .args(["-q", "-p", "-P", "", "-N", "not-a-real-passphrase", "-f"])
            .arg(&enc)
            .status()
            .unwrap();
        assert!(st.success());
        let e = PrivateKey::from_openssh(&std::fs::read_to_string(&enc).unwrap())
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("ssh-keygen -Y sign -n nfvi-verify"),
            "{e}"
        );
    }
}
