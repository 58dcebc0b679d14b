//! Loading and validating the data files.

use indexmap::{IndexMap, IndexSet};
use toml::Spanned;

use crate::embedded::{EMBEDDED_REQUIREMENT_FILES, EMBEDDED_SUITE_FILES};
use crate::error::{Location, ModelError, ModelErrorKind};
use crate::model::files::{RequirementsFile, SuiteFile};
use crate::model::{ReferenceModel, Requirement, RequirementId, Suite};

/// One data file: a name for messages and its text.
#[derive(Clone, Debug)]
pub struct Source {
    /// The file name used in error messages.
    pub file: String,
    /// The TOML text.
    pub text: String,
}

impl Source {
    /// A source from a name and text.
    pub fn new(file: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            text: text.into(),
        }
    }

    fn location(&self, offset: usize) -> Location {
        Location::from_offset(&self.file, &self.text, offset)
    }

    fn at<T>(&self, spanned: &Spanned<T>) -> Location {
        self.location(spanned.span().start)
    }

    fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, ModelError> {
        toml::from_str(&self.text).map_err(|e| ModelError {
            location: self.location(e.span().map_or(0, |s| s.start)),
            kind: ModelErrorKind::Syntax(e.message().trim_end().to_owned()),
        })
    }
}

/// Loads the model compiled into the binary.
pub fn load_embedded() -> Result<ReferenceModel, ModelError> {
    let to_sources = |files: &[(&str, &str)]| -> Vec<Source> {
        files
            .iter()
            .map(|(f, t)| Source::new(format!("reference-model/{f}"), *t))
            .collect()
    };
    load_sources(
        &to_sources(EMBEDDED_REQUIREMENT_FILES),
        &to_sources(EMBEDDED_SUITE_FILES),
    )
}

/// Loads and validates a model from requirement catalogue files and suite files.
pub fn load_sources(
    requirement_files: &[Source],
    suite_files: &[Source],
) -> Result<ReferenceModel, ModelError> {
    let mut requirements: IndexMap<RequirementId, Requirement> = IndexMap::new();
    let mut related_refs = Vec::new();
    for source in requirement_files {
        let file: RequirementsFile = source.parse()?;
        for entry in file.requirement {
            let at = source.at(&entry.id);
            let id = parse_id(&entry.id, source)?;
            if let Some(first) = requirements.get(&id) {
                return Err(ModelError {
                    location: at,
                    kind: ModelErrorKind::DuplicateRequirement {
                        id: id.to_string(),
                        first: first.defined_at.to_string(),
                    },
                });
            }
            let mut related = Vec::with_capacity(entry.related.len());
            for r in &entry.related {
                related.push(parse_id(r, source)?);
                related_refs.push((r.get_ref().clone(), source.at(r)));
            }
            requirements.insert(
                id.clone(),
                Requirement {
                    id,
                    document: file.document,
                    level: entry.level,
                    profile: entry.profile,
                    summary: entry.summary.trim().to_owned(),
                    source: entry.source,
                    note: entry.note,
                    untestable: entry.untestable,
                    related,
                    defined_at: at,
                },
            );
        }
    }
    let mut model = ReferenceModel {
        requirements,
        suites: IndexMap::new(),
    };
    for (id, at) in related_refs {
        model
            .resolve(&id)
            .map_err(|kind| ModelError { location: at, kind })?;
    }

    let mut raw: IndexMap<String, (SuiteFile, &Source)> = IndexMap::new();
    for source in suite_files {
        let file: SuiteFile = source.parse()?;
        let name = file.name.get_ref().clone();
        if let Some((first, first_src)) = raw.get(&name) {
            return Err(ModelError {
                location: source.at(&file.name),
                kind: ModelErrorKind::DuplicateSuite {
                    name,
                    first: first_src.at(&first.name).to_string(),
                },
            });
        }
        raw.insert(name, (file, source));
    }
    let mut suites = IndexMap::new();
    for name in raw.keys() {
        let suite = build_suite(&model, &raw, name, &mut Vec::new())?;
        suites.insert(name.clone(), suite);
    }
    model.suites = suites;
    Ok(model)
}

fn parse_id(id: &Spanned<String>, source: &Source) -> Result<RequirementId, ModelError> {
    RequirementId::parse(id.get_ref()).map_err(|e| ModelError {
        location: source.at(id),
        kind: ModelErrorKind::InvalidId {
            id: id.get_ref().clone(),
            reason: e.to_string(),
        },
    })
}

fn build_suite(
    model: &ReferenceModel,
    raw: &IndexMap<String, (SuiteFile, &Source)>,
    name: &str,
    stack: &mut Vec<String>,
) -> Result<Suite, ModelError> {
    let (file, source) = &raw[name];
    stack.push(name.to_owned());
    let resolve_all = |ids: &[Spanned<String>]| -> Result<IndexSet<RequirementId>, ModelError> {
        ids.iter()
            .map(|id| {
                model
                    .resolve(id.get_ref())
                    .map(|r| r.id.clone())
                    .map_err(|kind| ModelError {
                        location: source.at(id),
                        kind,
                    })
            })
            .collect()
    };
    let spanned_list = |ids: &[Spanned<String>]| -> Vec<(String, Location)> {
        ids.iter()
            .map(|c| (c.get_ref().clone(), source.at(c)))
            .collect()
    };
    let mut suite = Suite {
        name: name.to_owned(),
        title: file.title.clone(),
        version: file.version.clone(),
        description: file.description.trim().to_owned(),
        areas: file.areas.clone(),
        all_areas: file.all_areas,
        checks: spanned_list(&file.checks),
        exclude: spanned_list(&file.exclude),
        mandatory: resolve_all(&file.mandatory)?,
        optional: resolve_all(&file.optional)?,
        unwaivable: file.unwaivable.clone(),
        defined_at: source.at(&file.name),
    };
    if let Some(both) = suite.mandatory.intersection(&suite.optional).next() {
        let at = file
            .optional
            .iter()
            .find(|o| o.get_ref() == both.as_str())
            .map(|o| source.at(o));
        return Err(ModelError {
            location: at.unwrap_or_else(|| suite.defined_at.clone()),
            kind: ModelErrorKind::MandatoryAndOptional {
                suite: name.to_owned(),
                id: both.to_string(),
            },
        });
    }
    for inc in &file.include {
        let included = inc.get_ref();
        let why = if stack.iter().any(|s| s == included) {
            Some("which forms a cycle")
        } else if !raw.contains_key(included) {
            Some("which does not exist")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(ModelError {
                location: source.at(inc),
                kind: ModelErrorKind::BadInclude {
                    suite: name.to_owned(),
                    included: included.clone(),
                    why,
                },
            });
        }
        let other = build_suite(model, raw, included, stack)?;
        suite.all_areas |= other.all_areas;
        for area in other.areas {
            if !suite.areas.contains(&area) {
                suite.areas.push(area);
            }
        }
        suite.checks.extend(other.checks);
        suite.exclude.extend(other.exclude);
        suite.mandatory.extend(other.mandatory);
        suite.optional.extend(other.optional);
        suite.unwaivable.extend(other.unwaivable);
    }
    // A requirement mandatory in any included suite is mandatory in the union.
    let mandatory = suite.mandatory.clone();
    suite.optional.retain(|id| !mandatory.contains(id));
    suite.areas.sort();
    stack.pop();
    Ok(suite)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQS: &str = r#"
document = "ra2"

[[requirement]]
id = "ra2.ntw.011"
level = "must"
profile = "basic"
summary = "s"
source = "RA2 ch4"
"#;

    fn suite(body: &str) -> Source {
        Source::new("suites/x.toml", body)
    }

    fn load(reqs: &str, suites: &[Source]) -> Result<ReferenceModel, ModelError> {
        load_sources(&[Source::new("reqs.toml", reqs)], suites)
    }

    const SUITE_HEAD: &str = "name = \"x\"\ntitle = \"t\"\nversion = \"v\"\ndescription = \"d\"\n";

    #[test]
    fn the_embedded_model_loads() {
        let model = load_embedded().unwrap();
        assert!(model.requirements().len() > 100);
        for name in [
            "rc1", "rc2", "host", "cni", "datapath", "docker", "kolla", "k8s", "all",
        ] {
            assert!(model.suite(name).is_some(), "suite {name} missing");
        }
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_line() {
        let bad = REQS.replace(
            "source = \"RA2 ch4\"",
            "source = \"RA2 ch4\"\ncolour = \"red\"",
        );
        let err = load(&bad, &[]).unwrap_err();
        assert_eq!(
            (err.location.file.as_str(), err.location.line),
            ("reqs.toml", 10)
        );
        assert!(err.to_string().contains("unknown field `colour`"), "{err}");
    }

    #[test]
    fn duplicate_ids_are_rejected() {
        let twice = format!("{REQS}\n{}", REQS.replace("document = \"ra2\"", ""));
        let err = load(&twice, &[]).unwrap_err();
        assert!(
            matches!(err.kind, ModelErrorKind::DuplicateRequirement { .. }),
            "{err}"
        );
        assert_eq!(err.location.line, 15);
        assert!(
            err.to_string().contains("first defined at reqs.toml:5"),
            "{err}"
        );
    }

    #[test]
    fn suites_naming_unknown_requirements_are_rejected() {
        let s = suite(&format!(
            "{SUITE_HEAD}mandatory = [\n  \"ra2.ntw.011\",\n  \"ra2.ntw.999\",\n]\n"
        ));
        let err = load(REQS, &[s]).unwrap_err();
        assert_eq!(err.location.line, 7);
        assert!(
            err.to_string()
                .contains("unknown requirement id `ra2.ntw.999`"),
            "{err}"
        );
    }

    #[test]
    fn ambiguous_bare_ids_suggest_the_qualified_ones() {
        let model = load_embedded().unwrap();
        let err = model.resolve("int.api.01").unwrap_err().to_string();
        assert!(
            err.contains("int.api.01@ra2") && err.contains("int.api.01@ra1"),
            "{err}"
        );
        let err = model.resolve("ra2.k8s.012").unwrap_err().to_string();
        assert!(
            err.contains("ra2.k8s.012#1") && err.contains("ra2.k8s.012#2"),
            "{err}"
        );
    }

    #[test]
    fn unknown_checks_in_a_suite_are_rejected() {
        let s = suite(&format!(
            "{SUITE_HEAD}checks = [\"host.kernel.nope\"]\nmandatory = []\n"
        ));
        let model = load(REQS, &[s]).unwrap();
        let err = model
            .validate_checks(["host.kernel.version"].into_iter())
            .unwrap_err();
        assert_eq!(err.location.line, 5);
        assert!(
            err.to_string()
                .contains("names check `host.kernel.nope`, which does not exist")
        );
        assert!(err.to_string().contains("host.kernel.version"), "{err}");
    }

    #[test]
    fn include_cycles_and_missing_includes_are_rejected() {
        let s = suite(&format!("{SUITE_HEAD}include = [\"x\"]\nmandatory = []\n"));
        let err = load(REQS, &[s]).unwrap_err();
        assert!(err.to_string().contains("which forms a cycle"), "{err}");
        let s = suite(&format!("{SUITE_HEAD}include = [\"y\"]\nmandatory = []\n"));
        let err = load(REQS, &[s]).unwrap_err();
        assert!(err.to_string().contains("which does not exist"), "{err}");
    }

    #[test]
    fn the_all_suite_is_the_union_of_rc1_and_rc2() {
        let model = load_embedded().unwrap();
        let all = model.suite("all").unwrap();
        for name in ["rc1", "rc2"] {
            let s = model.suite(name).unwrap();
            assert!(
                s.mandatory.iter().all(|id| all.mandatory.contains(id)),
                "{name}"
            );
        }
        assert_eq!(all.areas.len(), 9);
        assert!(all.all_areas, "the all suite takes areas added later too");
    }

    #[test]
    fn every_catalogue_id_of_the_reference_notes_is_present() {
        // The IDs the shared reference notes list; kept here so that dropping one fails.
        let model = load_embedded().unwrap();
        for id in [
            "gen.cnt.03",
            "ra2.k8s.001",
            "ra2.k8s.005",
            "ra2.k8s.012#1",
            "ra2.k8s.012#2",
            "ra2.k8s.024",
            "int.api.01@ra2",
            "ra2.crt.002",
            "ra2.stg.010",
            "ra2.k8s.021",
            "inf.ntw.03",
            "ra2.ntw.001",
            "inf.ntw.08",
            "ra2.ntw.002",
            "e.cap.004",
            "ra2.ntw.016",
            "inf.ntw.13",
            "inf.ntw.14",
            "ra2.ntw.011",
            "ra2.ntw.008",
            "e.cap.013",
            "ra2.ch.003",
            "inf.ntw.04",
            "ra2.ch.007",
            "ra2.k8s.010",
            "ra2.ntw.013",
            "ra2.k8s.014",
            "infra.net.cfg.004",
            "inf.ntw.15",
            "ra2.ntw.018",
            "ra2.ntw.022",
            "ra2.ntw.019",
            "inf.ntw.16",
            "ra2.k8s.017",
            "ra2.ntw.023",
            "e.cap.027",
            "ra2.ch.019",
            "e.cap.025",
            "ra2.ch.001",
            "i.cap.018",
            "infra.com.cfg.004",
            "ra2.k8s.006",
            "e.cap.007",
            "ra2.k8s.009",
            "e.cap.006",
            "ra2.k8s.007",
            "ra2.k8s.008",
            "i.cap.014",
            "ra2.k8s.011",
            "ra2.ch.018",
            "ra2.ch.011",
            "ra2.ch.012",
            "e.cap.001",
            "e.cap.002",
            "sec.std.001",
            "sec.sys.001",
            "sec.sys.007",
            "sec.sys.021",
            "sec.ci.008",
            "sec.img.002",
            "sec.mon.008",
            "ra2.app.030",
            "ra2.app.031",
            "ra2.app.041",
            "ra2.app.015",
            "ra2.app.016",
            "gen.ost.01",
            "int.api.10@ra1",
            "inf.nw.16",
            "inf.stg.01",
            "inf.stg.02",
            "req.inf.ntw.01",
            "design.cicd.005",
            "auto.cicd.015",
        ] {
            assert!(
                model.requirement(id).is_some(),
                "{id} missing from the catalogue"
            );
        }
    }
}
