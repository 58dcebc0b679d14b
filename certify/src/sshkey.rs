//! OpenSSH keys: public keys (`.pub` lines, allowed_signers entries, the key inside a
//! signature) and unencrypted `openssh-key-v1` private keys, for Ed25519, ECDSA P-256/P-384
//! and RSA, backed by `ring`.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use ring::signature::{self, KeyPair as _};

use crate::wire::{Reader, WireError, Writer};

/// A key or signature that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A passphrase protects the private key.
    #[error(
        "the private key is passphrase-protected ({cipher}); nfvi-verify reads unencrypted keys only. \
         Sign the bundle with `ssh-keygen -Y sign -n nfvi-verify -f KEY FILE` (it asks for the \
         passphrase or uses ssh-agent): `nfvi-verify verify` accepts that signature"
    )]
    Encrypted {
        /// The cipher named in the key file.
        cipher: String,
    },
    /// Not the format expected.
    #[error("{0}")]
    Format(String),
    /// A key type this build does not handle.
    #[error(
        "unsupported key type `{0}` (supported: ssh-ed25519, ecdsa-sha2-nistp256, ecdsa-sha2-nistp384, ssh-rsa)"
    )]
    Unsupported(String),
    /// The wire encoding is broken.
    #[error(transparent)]
    Wire(#[from] WireError),
}

/// An ECDSA curve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    /// NIST P-256, signed with SHA-256.
    P256,
    /// NIST P-384, signed with SHA-384.
    P384,
}

impl Curve {
    fn ssh_name(self) -> &'static str {
        match self {
            Curve::P256 => "nistp256",
            Curve::P384 => "nistp384",
        }
    }
    fn scalar_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
        }
    }
}

/// A public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKey {
    /// `ssh-ed25519`.
    Ed25519([u8; 32]),
    /// `ecdsa-sha2-nistp256` / `-nistp384`: the uncompressed point.
    Ecdsa {
        /// The curve.
        curve: Curve,
        /// `04 || x || y`.
        point: Vec<u8>,
    },
    /// `ssh-rsa`: exponent and modulus, big-endian without leading zeros.
    Rsa {
        /// Public exponent.
        e: Vec<u8>,
        /// Modulus.
        n: Vec<u8>,
    },
}

impl PublicKey {
    /// Parses a public key blob (the base64 part of a `.pub` line, decoded).
    pub fn from_blob(blob: &[u8]) -> Result<Self, KeyError> {
        let mut r = Reader::new(blob);
        let key = Self::read(&mut r)?;
        r.finish()?;
        Ok(key)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, KeyError> {
        let kind = r.text()?;
        match kind {
            "ssh-ed25519" => {
                let pk: [u8; 32] = r
                    .string()?
                    .try_into()
                    .map_err(|_| KeyError::Format("an Ed25519 key is not 32 bytes".into()))?;
                Ok(Self::Ed25519(pk))
            }
            "ecdsa-sha2-nistp256" | "ecdsa-sha2-nistp384" => {
                let curve = if kind.ends_with("256") {
                    Curve::P256
                } else {
                    Curve::P384
                };
                if r.text()? != curve.ssh_name() {
                    return Err(KeyError::Format(
                        "the ECDSA curve does not match the key type".into(),
                    ));
                }
                let point = r.string()?.to_vec();
                if point.len() != 1 + 2 * curve.scalar_len() || point[0] != 4 {
                    return Err(KeyError::Format(
                        "an ECDSA point is not uncompressed".into(),
                    ));
                }
                Ok(Self::Ecdsa { curve, point })
            }
            "ssh-rsa" => {
                let e = r.mpint()?.to_vec();
                let n = r.mpint()?.to_vec();
                Ok(Self::Rsa { e, n })
            }
            other => Err(KeyError::Unsupported(other.chars().take(64).collect())),
        }
    }

    /// The key type as OpenSSH names it.
    pub fn key_type(&self) -> &'static str {
        match self {
            Self::Ed25519(_) => "ssh-ed25519",
            Self::Ecdsa {
                curve: Curve::P256, ..
            } => "ecdsa-sha2-nistp256",
            Self::Ecdsa {
                curve: Curve::P384, ..
            } => "ecdsa-sha2-nistp384",
            Self::Rsa { .. } => "ssh-rsa",
        }
    }

    /// The blob.
    pub fn blob(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.string(self.key_type().as_bytes());
        match self {
            Self::Ed25519(pk) => {
                w.string(pk);
            }
            Self::Ecdsa { curve, point } => {
                w.string(curve.ssh_name().as_bytes()).string(point);
            }
            Self::Rsa { e, n } => {
                w.mpint(e).mpint(n);
            }
        }
        w.into_inner()
    }

    /// `SHA256:<base64>`, as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.blob())
    }

    /// The `.pub` line without comment.
    pub fn to_openssh(&self) -> String {
        format!("{} {}", self.key_type(), STANDARD.encode(self.blob()))
    }

    /// Parses `TYPE BASE64 [COMMENT]`.
    pub fn from_openssh(line: &str) -> Result<Self, KeyError> {
        let mut parts = line.split_whitespace();
        let (Some(kind), Some(b64)) = (parts.next(), parts.next()) else {
            return Err(KeyError::Format(
                "a public key line is `TYPE BASE64 [COMMENT]`".into(),
            ));
        };
        let blob = STANDARD
            .decode(b64)
            .map_err(|_| KeyError::Format("the public key is not base64".into()))?;
        let key = Self::from_blob(&blob)?;
        if key.key_type() != kind {
            return Err(KeyError::Format(format!(
                "the line says `{kind}` but holds a {} key",
                key.key_type()
            )));
        }
        Ok(key)
    }

    /// Verifies an SSH signature blob (`string algorithm, string signature`) over `data`.
    /// Every failure is the same error: which part did not match is not said.
    pub fn verify(&self, sig_blob: &[u8], data: &[u8]) -> Result<(), BadSignature> {
        let mut r = Reader::new(sig_blob);
        let alg = r.text().map_err(|_| BadSignature)?;
        let sig = r.string().map_err(|_| BadSignature)?;
        if !r.is_empty() {
            return Err(BadSignature);
        }
        match (self, alg) {
            (Self::Ed25519(pk), "ssh-ed25519") => {
                signature::UnparsedPublicKey::new(&signature::ED25519, pk).verify(data, sig)
            }
            (Self::Ecdsa { curve, point }, _) if alg == self.key_type() => {
                let mut r = Reader::new(sig);
                let rr = r.mpint().map_err(|_| BadSignature)?;
                let ss = r.mpint().map_err(|_| BadSignature)?;
                let len = curve.scalar_len();
                if !r.is_empty() || rr.len() > len || ss.len() > len {
                    return Err(BadSignature);
                }
                let mut fixed = vec![0u8; 2 * len];
                fixed[len - rr.len()..len].copy_from_slice(rr);
                fixed[2 * len - ss.len()..].copy_from_slice(ss);
                let alg = match curve {
                    Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
                    Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
                };
                signature::UnparsedPublicKey::new(alg, point).verify(data, &fixed)
            }
            (Self::Rsa { e, n }, "rsa-sha2-256" | "rsa-sha2-512") => {
                let params = if alg == "rsa-sha2-256" {
                    &signature::RSA_PKCS1_2048_8192_SHA256
                } else {
                    &signature::RSA_PKCS1_2048_8192_SHA512
                };
                // OpenSSH accepts a signature shorter than the modulus (leading zeros cut).
                if sig.len() > n.len() {
                    return Err(BadSignature);
                }
                let mut padded = vec![0u8; n.len() - sig.len()];
                padded.extend_from_slice(sig);
                signature::RsaPublicKeyComponents { n, e }.verify(params, data, &padded)
            }
            _ => return Err(BadSignature),
        }
        .map_err(|_| BadSignature)
    }
}

/// The signature does not verify (the reason is not said).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the signature is not valid")]
pub struct BadSignature;

/// `SHA256:<base64 without padding>` of a key blob.
pub fn fingerprint(blob: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, blob);
    format!("SHA256:{}", STANDARD_NO_PAD.encode(d.as_ref()))
}

enum Signer {
    Ed25519(signature::Ed25519KeyPair),
    Ecdsa(signature::EcdsaKeyPair),
    Rsa(signature::RsaKeyPair),
}

/// An unencrypted OpenSSH private key, ready to sign.
pub struct PrivateKey {
    public: PublicKey,
    signer: Signer,
}

const MAGIC: &[u8] = b"openssh-key-v1\0";
const BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
const END: &str = "-----END OPENSSH PRIVATE KEY-----";

impl PrivateKey {
    /// Parses the text of an OpenSSH private key file.
    pub fn from_openssh(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        if text.starts_with("-----BEGIN") && !text.starts_with(BEGIN) {
            return Err(KeyError::Format(
                "not an OpenSSH private key (a PEM key; convert it with `ssh-keygen -p -f KEY`, which rewrites it in the OpenSSH format)".into(),
            ));
        }
        let body = text
            .strip_prefix(BEGIN)
            .and_then(|t| t.strip_suffix(END))
            .ok_or_else(|| {
                KeyError::Format(format!(
                    "not an OpenSSH private key (no `{BEGIN}` … `{END}`)"
                ))
            })?;
        let b64: String = body.split_whitespace().collect();
        let bin = STANDARD
            .decode(b64)
            .map_err(|_| KeyError::Format("the private key is not base64".into()))?;
        let rest = bin
            .strip_prefix(MAGIC)
            .ok_or_else(|| KeyError::Format("not an openssh-key-v1 key".into()))?;
        let mut r = Reader::new(rest);
        let cipher = r.text()?;
        let kdf = r.text()?;
        let _kdf_options = r.string()?;
        if cipher != "none" || kdf != "none" {
            return Err(KeyError::Encrypted {
                cipher: cipher.chars().take(40).collect(),
            });
        }
        if r.u32()? != 1 {
            return Err(KeyError::Format(
                "the key file must hold exactly one key".into(),
            ));
        }
        let public = PublicKey::from_blob(r.string()?)?;
        let private = r.string()?;
        let mut p = Reader::new(private);
        if p.u32()? != p.u32()? {
            return Err(KeyError::Format(
                "the key's check integers differ (corrupt, or encrypted)".into(),
            ));
        }
        let kind = p.text()?;
        if kind != public.key_type() {
            return Err(KeyError::Format(
                "the private key's type differs from its public key".into(),
            ));
        }
        let rejected = |what: &str| {
            KeyError::Format(format!(
                "the {what} key was rejected (corrupt or unsupported size)"
            ))
        };
        let signer = match &public {
            PublicKey::Ed25519(pk) => {
                if p.string()? != pk {
                    return Err(KeyError::Format(
                        "the private section's public key differs".into(),
                    ));
                }
                let both = p.string()?;
                if both.len() != 64 || &both[32..] != pk {
                    return Err(KeyError::Format(
                        "an Ed25519 private key is not 64 bytes".into(),
                    ));
                }
                Signer::Ed25519(
                    signature::Ed25519KeyPair::from_seed_and_public_key(&both[..32], pk)
                        .map_err(|_| rejected("Ed25519"))?,
                )
            }
            PublicKey::Ecdsa { curve, point } => {
                let _curve_name = p.text()?;
                if p.string()? != point.as_slice() {
                    return Err(KeyError::Format(
                        "the private section's public key differs".into(),
                    ));
                }
                let d = p.mpint()?;
                let len = curve.scalar_len();
                if d.len() > len {
                    return Err(rejected("ECDSA"));
                }
                let mut scalar = vec![0u8; len - d.len()];
                scalar.extend_from_slice(d);
                let alg = match curve {
                    Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
                };
                let rng = ring::rand::SystemRandom::new();
                Signer::Ecdsa(
                    signature::EcdsaKeyPair::from_private_key_and_public_key(
                        alg, &scalar, point, &rng,
                    )
                    .map_err(|_| rejected("ECDSA"))?,
                )
            }
            PublicKey::Rsa { e, n } => {
                if p.mpint()? != n.as_slice() || p.mpint()? != e.as_slice() {
                    return Err(KeyError::Format(
                        "the private section's public key differs".into(),
                    ));
                }
                let d = p.mpint()?;
                let iqmp = p.mpint()?;
                let pp = p.mpint()?;
                let q = p.mpint()?;
                // ring takes the CRT exponents, which OpenSSH does not store.
                let dp = bigmod(d, &minus_one(pp));
                let dq = bigmod(d, &minus_one(q));
                let components = ring::rsa::KeyPairComponents {
                    public_key: ring::rsa::PublicKeyComponents {
                        n: n.as_slice(),
                        e: e.as_slice(),
                    },
                    d,
                    p: pp,
                    q,
                    dP: dp.as_slice(),
                    dQ: dq.as_slice(),
                    qInv: iqmp,
                };
                Signer::Rsa(
                    signature::RsaKeyPair::from_components(&components)
                        .map_err(|_| rejected("RSA"))?,
                )
            }
        };
        let _comment = p.string()?;
        // Padding 1, 2, 3, … up to the cipher's block size.
        for (i, b) in p.rest().iter().enumerate() {
            if usize::from(*b) != i + 1 {
                return Err(KeyError::Format("bad padding in the private key".into()));
            }
        }
        if let Signer::Ed25519(k) = &signer {
            debug_assert_eq!(k.public_key().as_ref().len(), 32);
        }
        Ok(Self { public, signer })
    }

    /// The public half.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// Signs `data`, returning the SSH signature blob (RSA: `rsa-sha2-512`).
    pub fn sign(&self, data: &[u8]) -> Result<Vec<u8>, KeyError> {
        let rng = ring::rand::SystemRandom::new();
        let failed = || KeyError::Format("signing failed".into());
        let mut w = Writer::default();
        match &self.signer {
            Signer::Ed25519(k) => {
                w.string(b"ssh-ed25519").string(k.sign(data).as_ref());
            }
            Signer::Ecdsa(k) => {
                let sig = k.sign(&rng, data).map_err(|_| failed())?;
                let (r, s) = sig.as_ref().split_at(sig.as_ref().len() / 2);
                let mut inner = Writer::default();
                inner.mpint(r).mpint(s);
                w.string(self.public.key_type().as_bytes())
                    .string(&inner.into_inner());
            }
            Signer::Rsa(k) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA512, &rng, data, &mut sig)
                    .map_err(|_| failed())?;
                w.string(b"rsa-sha2-512").string(&sig);
            }
        }
        Ok(w.into_inner())
    }
}

/// `x - 1` for an odd big-endian `x` (an RSA prime).
fn minus_one(x: &[u8]) -> Vec<u8> {
    let mut v = x.to_vec();
    for b in v.iter_mut().rev() {
        if *b > 0 {
            *b -= 1;
            break;
        }
        *b = 0xff;
    }
    v
}

/// `a mod m` for big-endian magnitudes, bit by bit (runs once per key load; `m` non-zero).
fn bigmod(a: &[u8], m: &[u8]) -> Vec<u8> {
    let m: Vec<u8> = m.iter().copied().skip_while(|b| *b == 0).collect();
    let mut r = vec![0u8; m.len() + 1];
    let mut mm = vec![0u8; 1];
    mm.extend_from_slice(&m);
    for byte in a {
        for bit in (0..8).rev() {
            // r = 2r + bit
            let mut carry = (byte >> bit) & 1;
            for x in r.iter_mut().rev() {
                let next = *x >> 7;
                *x = (*x << 1) | carry;
                carry = next;
            }
            if r.as_slice() >= mm.as_slice() {
                let mut borrow = 0i16;
                for (x, y) in r.iter_mut().rev().zip(mm.iter().rev()) {
                    let d = i16::from(*x) - i16::from(*y) - borrow;
                    borrow = i16::from(d < 0);
                    *x = d.rem_euclid(256) as u8;
                }
            }
        }
    }
    let zeros = r.iter().take_while(|b| **b == 0).count();
    r[zeros..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_modulo_matches_small_numbers() {
        for a in [0u64, 1, 255, 256, 65535, 1 << 40, 0xdead_beef_cafe] {
            for m in [1u64, 2, 3, 255, 257, 65521, 1 << 33] {
                let got = bigmod(&a.to_be_bytes(), &m.to_be_bytes());
                let want = a % m;
                let mut g = [0u8; 8];
                g[8 - got.len()..].copy_from_slice(&got);
                assert_eq!(u64::from_be_bytes(g), want, "{a} mod {m}");
            }
        }
        assert_eq!(minus_one(&[1, 0, 1]), [1, 0, 0]);
    }

    #[test]
    fn non_openssh_and_encrypted_keys_are_refused_clearly() {
        let e = PrivateKey::from_openssh(
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----",
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("PEM"), "{e}");
        let mut w = Writer::default();
        w.string(b"aes256-ctr").string(b"bcrypt").string(b"").u32(1);
        let mut bin = MAGIC.to_vec();
        bin.extend(w.into_inner());
        let text = format!("{BEGIN}\n{}\n{END}\n", STANDARD.encode(bin));
        let e = PrivateKey::from_openssh(&text).err().unwrap();
        assert!(matches!(e, KeyError::Encrypted { .. }));
        assert!(
            e.to_string().contains("ssh-keygen -Y sign -n nfvi-verify"),
            "{e}"
        );
    }
}
