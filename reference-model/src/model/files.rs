//! The on-disk shape of the data files. These types are what the JSON Schemas under
//! `reference-model/schemas/` are generated from.

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use super::{Area, Document, Level, Profile};

/// A requirement catalogue file (`data/requirements/*.toml`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequirementsFile {
    /// The Anuket document every requirement in this file comes from.
    pub document: Document,
    /// The requirements.
    #[serde(default)]
    pub requirement: Vec<RequirementEntry>,
}

/// One requirement as written in a catalogue file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequirementEntry {
    /// The Anuket ID, disambiguated with `#N` (same ID used twice in one document) or
    /// `@document` (same ID in two documents) where needed.
    #[schemars(with = "String")]
    pub id: Spanned<String>,
    /// must, should or may.
    pub level: Level,
    /// Which profile the requirement applies to.
    pub profile: Profile,
    /// A one-sentence summary in this project's words.
    pub summary: String,
    /// The chapter of the Anuket document it comes from.
    pub source: String,
    /// Anything a reader needs to know about how the ID is used here.
    #[serde(default)]
    pub note: Option<String>,
    /// Why no software test can verify it (an operator policy, a process, a design choice),
    /// when that is so: the traceability matrix shows the reason instead of "untested".
    #[serde(default)]
    pub untestable: Option<String>,
    /// IDs of requirements in other documents that say the same thing.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub related: Vec<Spanned<String>>,
}

/// A suite definition file (`data/suites/*.toml`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SuiteFile {
    /// The name users pass to `--suite`.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// A human title, shown in reports.
    pub title: String,
    /// The suite version, shown on the badge.
    pub version: String,
    /// What the suite verifies.
    pub description: String,
    /// Suites whose areas, checks and requirements this one takes over.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub include: Vec<Spanned<String>>,
    /// Every check of these areas is part of the suite.
    #[serde(default)]
    pub areas: Vec<Area>,
    /// Every check of every area is part of the suite, areas added after this file too.
    #[serde(default)]
    pub all_areas: bool,
    /// Further checks, by exact ID.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub checks: Vec<Spanned<String>>,
    /// Checks left out, by exact ID.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub exclude: Vec<Spanned<String>>,
    /// Requirements whose failure makes the run non-conformant.
    #[schemars(with = "Vec<String>")]
    pub mandatory: Vec<Spanned<String>>,
    /// Requirements that are traced and reported but never decide the verdict.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub optional: Vec<Spanned<String>>,
    /// Requirements no waiver may excuse: globs over requirement IDs (`*` any run, `?` one
    /// character). A waiver that would cover a check of one of them does not apply, and the
    /// run is not certifiable.
    #[serde(default)]
    pub unwaivable: Vec<String>,
}
