//! The set of checks this build has, validated against the reference model.

use std::collections::HashMap;
use std::sync::Arc;

use nfvi_reference_model::ReferenceModel;

use crate::check::Check;

/// A registered check that is inconsistent with the model or with another check.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Two checks share an ID.
    #[error("check `{id}` is declared twice ({first} and {second})")]
    Duplicate {
        /// The ID.
        id: String,
        /// First declaration (file:line).
        first: String,
        /// Second declaration.
        second: String,
    },
    /// A check covers a requirement the catalogue does not have.
    #[error("{at}: check `{check}` covers {reason}")]
    UnknownRequirement {
        /// Where the check is declared.
        at: String,
        /// The check.
        check: String,
        /// The model's message.
        reason: String,
    },
    /// A check ID does not start with its area.
    #[error("{at}: check `{check}` must start with its area `{area}.`")]
    WrongArea {
        /// Where the check is declared.
        at: String,
        /// The check.
        check: String,
        /// The area.
        area: String,
    },
    /// A check's area has a name results files could not be read back with.
    #[error("{at}: check `{check}`: {reason}")]
    BadAreaName {
        /// Where the check is declared.
        at: String,
        /// The check.
        check: String,
        /// What is wrong with the name.
        reason: String,
    },
    /// A suite names a check that does not exist.
    #[error(transparent)]
    Model(#[from] nfvi_reference_model::ModelError),
}

/// Every check of this build.
#[derive(Clone, Default)]
pub struct Registry {
    checks: Vec<Arc<dyn Check>>,
}

impl Registry {
    /// Builds and validates a registry: unique IDs, IDs prefixed by their area, covered
    /// requirements known to the model, and every check a suite names present.
    pub fn new(checks: Vec<Arc<dyn Check>>, model: &ReferenceModel) -> Result<Self, RegistryError> {
        let mut seen: HashMap<&str, &Arc<dyn Check>> = HashMap::new();
        for check in &checks {
            let meta = check.meta();
            let at = meta.declared_at.to_string();
            if let Some(first) = seen.insert(&meta.id, check) {
                return Err(RegistryError::Duplicate {
                    id: meta.id.clone(),
                    first: first.meta().declared_at.to_string(),
                    second: at,
                });
            }
            if let Err(reason) = nfvi_reference_model::Area::check_name(meta.area.as_str()) {
                return Err(RegistryError::BadAreaName {
                    at,
                    check: meta.id.clone(),
                    reason,
                });
            }
            if !meta.id.starts_with(&format!("{}.", meta.area)) {
                return Err(RegistryError::WrongArea {
                    at,
                    check: meta.id.clone(),
                    area: meta.area.to_string(),
                });
            }
            for id in &meta.covers {
                model
                    .resolve(id)
                    .map_err(|e| RegistryError::UnknownRequirement {
                        at: at.clone(),
                        check: meta.id.clone(),
                        reason: e.to_string(),
                    })?;
            }
        }
        model.validate_checks(checks.iter().map(|c| c.meta().id.as_str()))?;
        Ok(Self { checks })
    }

    /// Every check, in registration order.
    pub fn checks(&self) -> &[Arc<dyn Check>] {
        &self.checks
    }

    /// The check with this ID.
    pub fn get(&self, id: &str) -> Option<&Arc<dyn Check>> {
        self.checks.iter().find(|c| c.meta().id == id)
    }
}
