//! Certification bundles: everything a reviewer needs to check a run in one signed file.
//!
//! * [`bundle`] packs a run's directory (results, reports, log, target, waivers, the evidence
//!   it ingested and the reference model of the binary) into a deterministic tar.gz with a
//!   manifest of SHA-256 hashes, after [`redact`] removed secrets, and signs it with an
//!   OpenSSH key ([`sshsig`], the `ssh-keygen -Y sign` format, namespace `nfvi-verify`).
//! * [`verify`] checks the signature against an [`allowed_signers`] file, every member's
//!   hash, and recomputes the verdict from the raw results with the bundle's own model.

#![warn(missing_docs)]

pub mod allowed_signers;
pub mod archive;
pub mod bundle;
pub mod manifest;
pub mod redact;
pub mod rejudge;
pub mod sshkey;
pub mod sshsig;
pub mod verify;
mod wire;

pub use wire::WireError;
