//! The loaded, validated reference model.

pub mod files;

use std::fmt;

use indexmap::{IndexMap, IndexSet};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{Location, ModelError, ModelErrorKind};

/// An Anuket requirement ID such as `ra2.ntw.011`, `ra2.k8s.012#2` or `int.api.01@ra1`.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(transparent)]
pub struct RequirementId(String);

/// Why a string is not a requirement ID.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct RequirementIdError(&'static str);

impl RequirementId {
    /// Parses and validates an ID: dot-separated lowercase segments of `[a-z0-9-]`, at least
    /// two of them, then an optional `#N` use index and an optional `@document` qualifier.
    pub fn parse(s: &str) -> Result<Self, RequirementIdError> {
        let (rest, document) = match s.split_once('@') {
            Some((rest, doc)) => (rest, Some(doc)),
            None => (s, None),
        };
        if let Some(doc) = document
            && !matches!(doc, "rm" | "ra1" | "ra2")
        {
            return Err(RequirementIdError(
                "the @ qualifier must be one of @rm, @ra1, @ra2",
            ));
        }
        let (base, index) = match rest.split_once('#') {
            Some((base, index)) => (base, Some(index)),
            None => (rest, None),
        };
        if let Some(index) = index
            && (index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(RequirementIdError("the # use index must be a number"));
        }
        let segments: Vec<&str> = base.split('.').collect();
        if segments.len() < 2 {
            return Err(RequirementIdError(
                "expected dot-separated segments such as `ra2.ntw.011`",
            ));
        }
        let segment_ok = |seg: &&str| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        if !segments.iter().all(segment_ok) {
            return Err(RequirementIdError(
                "segments may only hold lowercase letters, digits and `-`",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// The ID as written, qualifiers included.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The ID without its `@document` qualifier (what the Anuket document prints, plus any
    /// `#N` index).
    pub fn unqualified(&self) -> &str {
        self.0.split_once('@').map_or(&self.0, |(base, _)| base)
    }
}

impl fmt::Display for RequirementId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How binding a requirement is. Ordered from weakest to strongest.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// Optional.
    May,
    /// Recommended: a failure is a warning unless the run is strict.
    Should,
    /// Required: a failure makes the NFVI non-conformant.
    Must,
}

impl Level {
    /// The lowercase name used in data files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::May => "may",
            Level::Should => "should",
            Level::Must => "must",
        }
    }
}

/// Which deployments a requirement applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// Every profile: basic and network-intensive.
    Basic,
    /// Only the network-intensive (high-performance) profile.
    NetworkIntensive,
    /// Only where the feature it talks about is deployed (a CNI multiplexer, AF_XDP, PTP).
    Conditional,
}

impl Profile {
    /// The kebab-case name used in data files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Basic => "basic",
            Profile::NetworkIntensive => "network-intensive",
            Profile::Conditional => "conditional",
        }
    }
}

/// The Anuket document a requirement comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Document {
    /// Reference Model.
    Rm,
    /// Reference Architecture 1 (OpenStack).
    Ra1,
    /// Reference Architecture 2 (Kubernetes).
    Ra2,
}

impl Document {
    /// The lowercase name used in data files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Document::Rm => "rm",
            Document::Ra1 => "ra1",
            Document::Ra2 => "ra2",
        }
    }
}

/// A verification area; every check belongs to exactly one. The set is open: an area is
/// named by its ID (the first segment of its check IDs), and a new area needs no change
/// here. The constants name the areas the embedded suites know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Area(&'static str);

#[allow(non_upper_case_globals)]
impl Area {
    /// Host readiness of NFVI nodes.
    pub const Host: Area = Area("host");
    /// CNI plugin conformance.
    pub const Cni: Area = Area("cni");
    /// Data-path semantics and latency.
    pub const Datapath: Area = Area("datapath");
    /// Docker networking.
    pub const Docker: Area = Area("docker");
    /// Kolla containers, registry and OpenStack APIs.
    pub const Kolla: Area = Area("kolla");
    /// Kubernetes API checks.
    pub const K8s: Area = Area("k8s");

    /// The areas the embedded suites know, in report order; other areas follow them.
    pub const ALL: [Area; 6] = [
        Area::Host,
        Area::Cni,
        Area::Datapath,
        Area::Docker,
        Area::Kolla,
        Area::K8s,
    ];

    /// An area named `id`: lowercase letters, digits and dashes.
    pub const fn new(id: &'static str) -> Self {
        Area(id)
    }

    /// An area read from a file: one of [`Self::ALL`], or a new name. New names are kept
    /// for the rest of the process, once each, and at most [`Self::MAX_NEW`] of them: area
    /// names are few, and a hostile file cannot make the process keep more.
    pub fn named(id: &str) -> Result<Self, String> {
        if let Some(known) = Self::ALL.iter().find(|a| a.0 == id) {
            return Ok(*known);
        }
        Self::check_name(id)?;
        static NEW: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
        let mut new = NEW
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(kept) = new.iter().find(|n| **n == id) {
            return Ok(Area(kept));
        }
        if new.len() >= Self::MAX_NEW {
            return Err(format!(
                "area `{id}`: more than {} area names this build does not know",
                Self::MAX_NEW
            ));
        }
        let kept: &'static str = Box::leak(id.to_owned().into_boxed_str());
        new.push(kept);
        Ok(Area(kept))
    }

    /// How many area names beyond [`Self::ALL`] one process accepts from files.
    pub const MAX_NEW: usize = 64;

    /// Whether `id` is a well-formed area name: lowercase letters, digits and dashes,
    /// starting with a letter, at most 64 bytes.
    pub fn check_name(id: &str) -> Result<(), String> {
        let valid = id.len() <= 64
            && id.starts_with(|c: char| c.is_ascii_lowercase())
            && id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if valid {
            Ok(())
        } else {
            Err(format!(
                "`{id}` is not an area name: lowercase letters, digits and dashes, starting with a letter"
            ))
        }
    }

    /// The lowercase name used in data files, check IDs and reports.
    pub fn as_str(self) -> &'static str {
        self.0
    }

    /// Report order: the known areas first, in [`Self::ALL`]'s order, then by name.
    fn rank(self) -> (usize, &'static str) {
        let known = Self::ALL.iter().position(|a| *a == self);
        (known.unwrap_or(Self::ALL.len()), self.0)
    }
}

impl PartialOrd for Area {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Area {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank().cmp(&other.rank())
    }
}

impl Serialize for Area {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for Area {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let id = String::deserialize(d)?;
        Area::named(&id).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Area {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Area".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A verification area: the first segment of its check IDs (host, cni, datapath, docker, kolla, k8s, or an area added since).",
            "type": "string",
            "pattern": "^[a-z][a-z0-9-]*$"
        })
    }
}

impl fmt::Display for Area {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One requirement of the catalogue.
#[derive(Clone, Debug)]
pub struct Requirement {
    /// The ID.
    pub id: RequirementId,
    /// The document it comes from.
    pub document: Document,
    /// must, should or may.
    pub level: Level,
    /// Which profile it applies to.
    pub profile: Profile,
    /// One sentence in this project's words.
    pub summary: String,
    /// The source chapter.
    pub source: String,
    /// A note about how the ID is used, if any.
    pub note: Option<String>,
    /// Why no software test can verify it, when that is so.
    pub untestable: Option<String>,
    /// Equivalent requirements in other documents.
    pub related: Vec<RequirementId>,
    /// Where the requirement is defined.
    pub defined_at: Location,
}

/// A suite, with its includes already merged in.
#[derive(Clone, Debug)]
pub struct Suite {
    /// The name users pass to `--suite`.
    pub name: String,
    /// A human title.
    pub title: String,
    /// The suite version, shown on the badge.
    pub version: String,
    /// What the suite verifies.
    pub description: String,
    /// Every check of these areas is in the suite.
    pub areas: Vec<Area>,
    /// Every check of every area is in the suite, whatever its area.
    pub all_areas: bool,
    /// Further checks by ID, with where they are named.
    pub checks: Vec<(String, Location)>,
    /// Checks left out by ID, with where they are named.
    pub exclude: Vec<(String, Location)>,
    /// Requirements that decide the verdict.
    pub mandatory: IndexSet<RequirementId>,
    /// Requirements that are traced but never decide the verdict.
    pub optional: IndexSet<RequirementId>,
    /// Globs over requirement IDs that no waiver may excuse.
    pub unwaivable: Vec<String>,
    /// Where the suite is defined.
    pub defined_at: Location,
}

/// Whether a suite's entry names check `id`: the ID itself, or a family of IDs by a prefix
/// ending in `*` (`cni.fuzz.*`).
fn id_matches(entry: &str, id: &str) -> bool {
    match entry.strip_suffix('*') {
        Some(prefix) => id.starts_with(prefix),
        None => entry == id,
    }
}

impl Suite {
    /// Whether a check of `area` with `id` belongs to the suite.
    pub fn contains(&self, area: Area, id: &str) -> bool {
        let named = self.checks.iter().any(|(c, _)| id_matches(c, id));
        let excluded = self.exclude.iter().any(|(c, _)| id_matches(c, id));
        (self.all_areas || self.areas.contains(&area) || named) && !excluded
    }

    /// Whether the suite lists `id` at all (mandatory or optional).
    pub fn covers(&self, id: &RequirementId) -> bool {
        self.mandatory.contains(id) || self.optional.contains(id)
    }
}

/// The validated requirement catalogue and suites.
#[derive(Clone, Debug)]
pub struct ReferenceModel {
    pub(crate) requirements: IndexMap<RequirementId, Requirement>,
    pub(crate) suites: IndexMap<String, Suite>,
}

impl ReferenceModel {
    /// Every requirement, in catalogue order.
    pub fn requirements(&self) -> impl ExactSizeIterator<Item = &Requirement> {
        self.requirements.values()
    }

    /// The requirement with exactly this ID.
    pub fn requirement(&self, id: &str) -> Option<&Requirement> {
        self.requirements
            .iter()
            .find(|(k, _)| k.as_str() == id)
            .map(|(_, v)| v)
    }

    /// Every suite, in the order of the data files.
    pub fn suites(&self) -> impl ExactSizeIterator<Item = &Suite> {
        self.suites.values()
    }

    /// The suite with this name.
    pub fn suite(&self, name: &str) -> Option<&Suite> {
        self.suites.get(name)
    }

    /// Resolves an ID as a user or a check wrote it. An exact match wins; otherwise a
    /// suggestion names the qualified IDs it could mean (`int.api.01` means `int.api.01@ra1`
    /// or `int.api.01@ra2`).
    pub fn resolve(&self, id: &str) -> Result<&Requirement, ModelErrorKind> {
        if let Some(req) = self.requirement(id) {
            return Ok(req);
        }
        let candidates: Vec<&str> = self
            .requirements
            .keys()
            .filter(|k| k.unqualified() == id || k.unqualified().split('#').next() == Some(id))
            .map(RequirementId::as_str)
            .collect();
        let hint = if candidates.is_empty() {
            String::new()
        } else {
            format!(
                "; the ID is ambiguous, write one of: {}",
                candidates.join(", ")
            )
        };
        Err(ModelErrorKind::UnknownRequirement {
            id: id.to_owned(),
            hint,
        })
    }

    /// Checks that every check a suite names exists. `check_exists` answers for the harness's
    /// registry; `all_checks` is used for "did you mean" hints.
    pub fn validate_checks<'a>(
        &self,
        all_checks: impl Iterator<Item = &'a str> + Clone,
    ) -> Result<(), ModelError> {
        for suite in self.suites.values() {
            // Only the checks a suite names to run: excluding a check this build does not
            // register excludes nothing, and harmlessly so.
            // A pattern (`cni.fuzz.*`) names a family, which a build may or may not have.
            for (check, at) in suite.checks.iter().filter(|(c, _)| !c.ends_with('*')) {
                // A check of an area this build does not register (a harness built with some
                // areas only) cannot be told from a typo; those of registered areas can.
                let area = check.split('.').next().unwrap_or_default();
                let area_built = all_checks
                    .clone()
                    .any(|c| c.split('.').next() == Some(area));
                if area_built && !all_checks.clone().any(|c| c == check) {
                    let near: Vec<&str> = all_checks
                        .clone()
                        .filter(|c| {
                            let prefix = check.rsplit_once('.').map_or(check.as_str(), |p| p.0);
                            c.starts_with(prefix)
                        })
                        .take(5)
                        .collect();
                    let hint = if near.is_empty() {
                        String::new()
                    } else {
                        format!("; checks with a similar ID: {}", near.join(", "))
                    };
                    return Err(ModelError {
                        location: at.clone(),
                        kind: ModelErrorKind::UnknownCheck {
                            suite: suite.name.clone(),
                            check: check.clone(),
                            hint,
                        },
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirement_ids_are_validated() {
        for ok in [
            "ra2.ntw.011",
            "ra2.k8s.012#2",
            "int.api.01@ra1",
            "infra.com.cfg.004",
        ] {
            assert!(RequirementId::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ra2",
            "RA2.ntw.011",
            "ra2..011",
            "ra2.k8s.012#",
            "int.api.01@ra3",
            "a b.c",
        ] {
            assert!(RequirementId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unqualified_strips_the_document() {
        let id = RequirementId::parse("int.api.01@ra1").unwrap();
        assert_eq!(id.unqualified(), "int.api.01");
    }

    #[test]
    fn levels_order_from_may_to_must() {
        assert!(Level::May < Level::Should && Level::Should < Level::Must);
    }
}
