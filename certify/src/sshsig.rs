//! OpenSSH signatures (`ssh-keygen -Y sign`, PROTOCOL.sshsig, version 1): made with an
//! unencrypted OpenSSH private key, checked against the public key they carry, which the
//! caller then looks up in an allowed_signers file.

use std::io::Read;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::sshkey::{BadSignature, KeyError, PrivateKey, PublicKey};
use crate::wire::{Reader, Writer};

/// The namespace of every nfvi-verify signature (`ssh-keygen -n nfvi-verify`).
pub const NAMESPACE: &str = "nfvi-verify";

const MAGIC: &[u8] = b"SSHSIG";
const BEGIN: &str = "-----BEGIN SSH SIGNATURE-----";
const END: &str = "-----END SSH SIGNATURE-----";
/// ssh-keygen wraps the armored base64 at 70 columns (`sshbuf_dtob64(…, 1)`).
const WRAP: usize = 70;
/// No real signature comes near this (RSA 8192: about 1.1 KiB).
const MAX_ARMORED: usize = 64 * 1024;

/// The hash of the message inside the signed data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlg {
    /// `sha256`.
    Sha256,
    /// `sha512`, ssh-keygen's default and what nfvi-verify signs with.
    Sha512,
}

impl HashAlg {
    /// The name in the blob.
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha256 => "sha256",
            HashAlg::Sha512 => "sha512",
        }
    }

    fn ring(self) -> &'static ring::digest::Algorithm {
        match self {
            HashAlg::Sha256 => &ring::digest::SHA256,
            HashAlg::Sha512 => &ring::digest::SHA512,
        }
    }

    /// The digest of everything `input` yields.
    pub fn digest_reader(self, input: &mut dyn Read) -> std::io::Result<Vec<u8>> {
        let mut cx = ring::digest::Context::new(self.ring());
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = input.read(&mut buf)?;
            if n == 0 {
                break;
            }
            cx.update(&buf[..n]);
        }
        Ok(cx.finish().as_ref().to_vec())
    }
}

/// A signature that cannot be used, for a reason that may be told (its shape), or because
/// it does not verify (never told which part).
#[derive(Debug, thiserror::Error)]
pub enum SigError {
    /// Not an armored SSH signature.
    #[error("not an SSH signature: {0}")]
    Format(String),
    /// A version this reader does not know.
    #[error("SSH signature version {0}; only version 1 is understood")]
    Version(u32),
    /// Signed for another purpose.
    #[error("the signature's namespace is `{found}`, not `{expected}`")]
    Namespace {
        /// What the signature says.
        found: String,
        /// What was required.
        expected: String,
    },
    /// The key inside cannot be used.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Cryptographically invalid for this message.
    #[error(transparent)]
    Bad(#[from] BadSignature),
    /// The message could not be read.
    #[error("cannot read the signed file")]
    Io(#[source] std::io::Error),
}

/// A parsed SSHSIG.
#[derive(Clone, Debug)]
pub struct Signature {
    /// The key that made it (look it up in allowed_signers before trusting it).
    pub public_key: PublicKey,
    /// The namespace it was made for.
    pub namespace: String,
    reserved: Vec<u8>,
    /// The message hash.
    pub hash: HashAlg,
    blob: Vec<u8>,
}

/// The data the key signs: magic, namespace, reserved, hash name, H(message).
fn signed_data(namespace: &str, reserved: &[u8], hash: HashAlg, digest: &[u8]) -> Vec<u8> {
    let mut w = Writer(MAGIC.to_vec());
    w.string(namespace.as_bytes())
        .string(reserved)
        .string(hash.name().as_bytes())
        .string(digest);
    w.into_inner()
}

/// Signs the message `input` yields, returning the armored signature as ssh-keygen writes it.
pub fn sign(key: &PrivateKey, namespace: &str, input: &mut dyn Read) -> Result<String, SigError> {
    let hash = HashAlg::Sha512;
    let digest = hash.digest_reader(input).map_err(SigError::Io)?;
    let sig = key.sign(&signed_data(namespace, b"", hash, &digest))?;
    let mut w = Writer(MAGIC.to_vec());
    w.u32(1)
        .string(&key.public().blob())
        .string(namespace.as_bytes())
        .string(b"")
        .string(hash.name().as_bytes())
        .string(&sig);
    Ok(armor(&w.into_inner()))
}

fn armor(blob: &[u8]) -> String {
    let b64 = STANDARD.encode(blob);
    let mut out = String::with_capacity(b64.len() + 80);
    out.push_str(BEGIN);
    out.push('\n');
    for chunk in b64.as_bytes().chunks(WRAP) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(END);
    out.push('\n');
    out
}

impl Signature {
    /// Parses an armored signature (the text of a `.sig` file).
    pub fn from_armored(text: &str) -> Result<Self, SigError> {
        if text.len() > MAX_ARMORED {
            return Err(SigError::Format("far too long".into()));
        }
        let body = text
            .trim()
            .strip_prefix(BEGIN)
            .and_then(|t| t.strip_suffix(END))
            .ok_or_else(|| SigError::Format(format!("no `{BEGIN}` … `{END}`")))?;
        let b64: String = body.split_whitespace().collect();
        let blob = STANDARD
            .decode(b64)
            .map_err(|_| SigError::Format("the body is not base64".into()))?;
        Self::from_blob(&blob)
    }

    /// Parses the binary blob.
    pub fn from_blob(blob: &[u8]) -> Result<Self, SigError> {
        let rest = blob
            .strip_prefix(MAGIC)
            .ok_or_else(|| SigError::Format("no SSHSIG magic".into()))?;
        let bad = |e: crate::wire::WireError| SigError::Format(e.to_string());
        let mut r = Reader::new(rest);
        let version = r.u32().map_err(bad)?;
        if version != 1 {
            return Err(SigError::Version(version));
        }
        let public_key = PublicKey::from_blob(r.string().map_err(bad)?)?;
        let namespace = r.text().map_err(bad)?.to_owned();
        if namespace.is_empty() {
            return Err(SigError::Format("empty namespace".into()));
        }
        let reserved = r.string().map_err(bad)?.to_vec();
        let hash = match r.string().map_err(bad)? {
            b"sha256" => HashAlg::Sha256,
            b"sha512" => HashAlg::Sha512,
            other => {
                return Err(SigError::Format(format!(
                    "hash algorithm `{}` (sha256 or sha512 expected)",
                    String::from_utf8_lossy(other)
                        .chars()
                        .take(32)
                        .collect::<String>()
                )));
            }
        };
        let sig = r.string().map_err(bad)?.to_vec();
        r.finish().map_err(bad)?;
        Ok(Self {
            public_key,
            namespace,
            reserved,
            hash,
            blob: sig,
        })
    }

    /// The signature algorithm named inside (`ssh-ed25519`, `rsa-sha2-512`, …).
    pub fn algorithm(&self) -> String {
        Reader::new(&self.blob)
            .text()
            .map(str::to_owned)
            .unwrap_or_default()
    }

    /// Checks the namespace and that the signature is valid for the message `input` yields
    /// under the key it carries. Whether that key may sign is the allowed_signers' question.
    pub fn verify(&self, namespace: &str, input: &mut dyn Read) -> Result<(), SigError> {
        if self.namespace != namespace {
            return Err(SigError::Namespace {
                found: self.namespace.chars().take(64).collect(),
                expected: namespace.to_owned(),
            });
        }
        let digest = self.hash.digest_reader(input).map_err(SigError::Io)?;
        let data = signed_data(&self.namespace, &self.reserved, self.hash, &digest);
        self.public_key.verify(&self.blob, &data)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh key made by `ssh-keygen -t … -N ''` (no key is kept in the tree), or `None`
    /// when ssh-keygen is missing (then the test skips, except under CI=true).
    pub(crate) fn keygen(args: &[&str]) -> Option<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let status = std::process::Command::new("ssh-keygen")
            .args(["-q", "-N", "", "-C", "test", "-f"])
            .arg(&path)
            .args(args)
            .status();
        match status {
            Ok(s) if s.success() => Some(std::fs::read_to_string(&path).unwrap()),
            other => {
                assert_ne!(
                    std::env::var("CI").as_deref(),
                    Ok("true"),
                    "CI=true: ssh-keygen is needed ({other:?})"
                );
                eprintln!("SKIP: ssh-keygen is not available ({other:?})");
                None
            }
        }
    }

    fn keys() -> Option<[String; 4]> {
        Some([
            keygen(&["-t", "ed25519"])?,
            keygen(&["-t", "ecdsa", "-b", "256"])?,
            keygen(&["-t", "ecdsa", "-b", "384"])?,
            keygen(&["-t", "rsa", "-b", "2048"])?,
        ])
    }

    fn round_trip(key_text: &str, want_alg: &str) {
        let key = PrivateKey::from_openssh(key_text).unwrap();
        let msg = b"the bundle bytes";
        let armored = sign(&key, NAMESPACE, &mut &msg[..]).unwrap();
        assert!(armored.lines().all(|l| l.len() <= 70), "{armored}");
        let sig = Signature::from_armored(&armored).unwrap();
        assert_eq!(sig.public_key, *key.public());
        assert_eq!(sig.algorithm(), want_alg);
        sig.verify(NAMESPACE, &mut &msg[..]).unwrap();
        assert!(matches!(
            sig.verify(NAMESPACE, &mut &b"the bundle byteS"[..]),
            Err(SigError::Bad(_))
        ));
        assert!(matches!(
            sig.verify("file", &mut &msg[..]),
            Err(SigError::Namespace { .. })
        ));
    }

    #[test]
    fn signatures_round_trip_for_every_key_type() {
        let Some([ed, p256, p384, rsa]) = keys() else {
            return;
        };
        round_trip(&ed, "ssh-ed25519");
        round_trip(&p256, "ecdsa-sha2-nistp256");
        round_trip(&p384, "ecdsa-sha2-nistp384");
        round_trip(&rsa, "rsa-sha2-512");
    }

    #[test]
    fn a_signature_by_another_key_type_or_ssh_rsa_sha1_is_refused() {
        let Some([ed, _, _, rsa]) = keys() else {
            return;
        };
        let ed = PrivateKey::from_openssh(&ed).unwrap();
        let rsa = PrivateKey::from_openssh(&rsa).unwrap();
        let data = b"x";
        let ed_sig = ed.sign(data).unwrap();
        assert!(rsa.public().verify(&ed_sig, data).is_err());
        // An RSA signature relabelled `ssh-rsa` (SHA-1) is refused.
        let rsa_sig = rsa.sign(data).unwrap();
        let mut r = Reader::new(&rsa_sig);
        r.text().unwrap();
        let raw = r.string().unwrap();
        let mut w = Writer::default();
        w.string(b"ssh-rsa").string(raw);
        assert!(rsa.public().verify(&w.into_inner(), data).is_err());
        assert!(rsa.public().verify(&rsa_sig, data).is_ok());
    }

    #[test]
    fn hostile_blobs_never_panic() {
        let Some([ed, p256, _, rsa]) = keys() else {
            return;
        };
        let mut msg = Vec::new();
        for key in [&ed, &p256, &rsa] {
            let key = PrivateKey::from_openssh(key).unwrap();
            let armored = sign(&key, NAMESPACE, &mut &b"m"[..]).unwrap();
            let body: String = armored
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect();
            let blob = STANDARD.decode(body).unwrap();
            // Every truncation.
            for n in 0..blob.len() {
                assert!(
                    Signature::from_blob(&blob[..n]).is_err(),
                    "truncated at {n} parsed"
                );
            }
            // Every single-byte change, and random bytes (xorshift, fixed seed).
            let mut seed = 0x9e37_79b9_7f4a_7c15u64;
            for i in 0..blob.len() {
                let mut b = blob.clone();
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                b[i] ^= (seed as u8) | 1;
                if let Ok(sig) = Signature::from_blob(&b) {
                    msg.push(sig.verify(NAMESPACE, &mut &b"m"[..]).is_ok());
                }
                let random: Vec<u8> = (0..(seed % 300) as usize)
                    .map(|j| (seed >> (j % 56)) as u8)
                    .collect();
                let _ = Signature::from_blob(&random);
                let _ = PublicKey::from_blob(&random);
            }
            // Huge lengths.
            let mut huge = MAGIC.to_vec();
            huge.extend([0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]);
            assert!(Signature::from_blob(&huge).is_err());
        }
        // A changed byte never yields a signature that still verifies, except in the
        // reserved/ignored parts (none here: every byte is signed or structural).
        assert!(msg.iter().all(|ok| !ok), "a tampered signature verified");
        // Private key text: truncations of a real key.
        let body: String = rsa.lines().filter(|l| !l.starts_with("-----")).collect();
        let bin = STANDARD.decode(body).unwrap();
        for n in 0..bin.len() {
            let text = format!(
                "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
                STANDARD.encode(&bin[..n])
            );
            assert!(
                PrivateKey::from_openssh(&text).is_err(),
                "truncated key at {n} parsed"
            );
        }
    }
}
