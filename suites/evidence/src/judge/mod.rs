//! The pure judges: from what the evidence says (and, for identity, what the cluster says) to
//! an outcome. No I/O here; each is table-tested.

pub mod bench;
pub mod e2e;
pub mod tempest;
pub mod trust;
