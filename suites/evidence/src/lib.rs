//! Evidence from other tools: results that Kubernetes e2e conformance runs (ginkgo JUnit with
//! its e2e.log, conformance submission directories, Sonobuoy results tarballs), kube-bench and
//! Tempest (subunit v2 or subunit2junitxml JUnit) produced on the same NFVI, judged against the
//! requirements they verify, each result with its provenance (tool, version, file, SHA-256,
//! members read, time of the run, the cluster it records and whether that was compared).
//!
//! Reading is apart from judging: [`ingest`] detects each file's kind by content and parses it
//! with bounded sizes, depth and memory (hostile input is an error naming the file and the
//! position, never a panic); [`judge`] holds the pure judges; the checks gather, refuse stale
//! evidence or evidence of another cluster, and judge.

#![warn(missing_docs)]

mod area;
mod checks;
pub mod ingest;
pub mod judge;
pub mod model;
pub mod upstream;

pub use area::{EvidenceArea, EvidenceConfig};
