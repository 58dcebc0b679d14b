//! The Anuket reference model as nfvi-verify uses it: the requirement catalogue (RM, RA1,
//! RA2 and security IDs, each with level, profile, summary and source chapter) and the suite
//! definitions (`rc1`, `rc2`, one per area, `all`), both kept as TOML data files under `data/`.
//!
//! The data is embedded in the binary, so a bare `nfvi-verify` needs nothing on disk, and it
//! is validated on load: unknown keys, duplicate IDs, unknown requirement IDs and unknown
//! suites are rejected with the file and line where they occur. Whether a suite names checks
//! that exist is known only to the harness, which calls [`ReferenceModel::validate_checks`].

#![warn(missing_docs)]

mod embedded;
mod error;
mod load;
mod model;

pub use embedded::{EMBEDDED_REQUIREMENT_FILES, EMBEDDED_SUITE_FILES};
pub use error::{Location, ModelError, ModelErrorKind};
pub use load::{Source, load_embedded, load_sources};
pub use model::{
    Area, Document, Level, Profile, ReferenceModel, Requirement, RequirementId, RequirementIdError,
    Suite, files::RequirementsFile, files::SuiteFile,
};
