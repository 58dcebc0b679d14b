//! Errors from loading and validating the reference model.

use std::fmt;

/// A place in a data file: file name and 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file, as given to the loader (a path relative to the crate for embedded data).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` in `text`.
    pub fn from_offset(file: &str, text: &str, offset: usize) -> Self {
        let offset = offset.min(text.len());
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Self {
            file: file.to_owned(),
            line,
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// A reference-model file that cannot be used, and where.
#[derive(Debug, thiserror::Error)]
#[error("{location}: {kind}")]
pub struct ModelError {
    /// Where the problem is.
    pub location: Location,
    /// What the problem is.
    pub kind: ModelErrorKind,
}

/// What is wrong with a reference-model file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelErrorKind {
    /// The file is not valid TOML or does not have the expected shape (includes unknown keys).
    #[error("{0}")]
    Syntax(String),
    /// A requirement ID is not of the form `area.sub.NNN`, optionally with `#N` and `@document`.
    #[error("invalid requirement id `{id}`: {reason}")]
    InvalidId {
        /// The offending ID.
        id: String,
        /// Why it is not valid.
        reason: String,
    },
    /// A requirement ID is defined twice.
    #[error("duplicate requirement id `{id}` (first defined at {first})")]
    DuplicateRequirement {
        /// The duplicated ID.
        id: String,
        /// Where it was first defined.
        first: String,
    },
    /// A suite name is defined twice.
    #[error("duplicate suite `{name}` (first defined at {first})")]
    DuplicateSuite {
        /// The duplicated name.
        name: String,
        /// Where it was first defined.
        first: String,
    },
    /// A reference to a requirement the catalogue does not have.
    #[error("unknown requirement id `{id}`{hint}")]
    UnknownRequirement {
        /// The unknown ID.
        id: String,
        /// A suggestion, starting with "; " when present.
        hint: String,
    },
    /// A suite includes a suite that does not exist, or includes itself.
    #[error("suite `{suite}` includes `{included}`, {why}")]
    BadInclude {
        /// The including suite.
        suite: String,
        /// The included name.
        included: String,
        /// "which does not exist" or "which forms a cycle".
        why: &'static str,
    },
    /// A suite names a check the harness does not have.
    #[error("suite `{suite}` names check `{check}`, which does not exist{hint}")]
    UnknownCheck {
        /// The suite.
        suite: String,
        /// The unknown check ID.
        check: String,
        /// A suggestion, starting with "; " when present.
        hint: String,
    },
    /// A requirement is listed as both mandatory and optional in one suite.
    #[error("requirement `{id}` is listed as both mandatory and optional in suite `{suite}`")]
    MandatoryAndOptional {
        /// The suite.
        suite: String,
        /// The requirement.
        id: String,
    },
}
