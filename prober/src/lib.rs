//! The latency prober and its statistics, shared by the data-path area (namespaces on a
//! node), the Kubernetes area (probe pods) and `nfvi-verify probe` (any two endpoints).
//!
//! [`probe`]: a UDP (or TCP) echo responder and a client that keeps one message in flight,
//! with blocking, busy-spin and paced modes and an HDR histogram. [`stats`]: per-block
//! medians, the Hodges-Lehmann difference of paired rounds with a bootstrap interval, and
//! the noise and SLA judgements built on them.

#![warn(missing_docs)]

pub mod probe;
pub mod stats;
