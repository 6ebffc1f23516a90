//! Schema evolution on read: an event stored at an older schema version is lifted, one
//! version at a time, into the current shape. Stored rows are never rewritten, so the hash
//! chain keeps covering exactly what was written.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{EventLogError, Result};

/// Lifts a payload from one schema version to the next; `Err` carries the reason.
pub type UpcastStep = Arc<dyn Fn(serde_json::Value) -> std::result::Result<serde_json::Value, String> + Send + Sync>;

/// The registered upcasting steps, by event type and the version they lift from (looked
/// up by the borrowed type name: every event read asks).
#[derive(Clone, Default)]
pub struct Upcasters {
    steps: HashMap<String, HashMap<u32, UpcastStep>>,
}

impl std::fmt::Debug for Upcasters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut keys: Vec<(&String, &u32)> =
            self.steps.iter().flat_map(|(t, steps)| steps.keys().map(move |v| (t, v))).collect();
        keys.sort();
        f.debug_struct("Upcasters").field("steps", &keys).finish()
    }
}

impl Upcasters {
    /// No steps: every event is read as stored.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the step that lifts `event_type` from `from_version` to `from_version + 1`.
    pub fn register(
        mut self,
        event_type: impl Into<String>,
        from_version: u32,
        step: impl Fn(serde_json::Value) -> std::result::Result<serde_json::Value, String> + Send + Sync + 'static,
    ) -> Self {
        self.steps.entry(event_type.into()).or_default().insert(from_version, Arc::new(step));
        self
    }

    /// Whether a step lifts `event_type` stored at `version` (the payload must then be
    /// parsed and lifted when read).
    pub fn lifts(&self, event_type: &str, version: u32) -> bool {
        self.steps.get(event_type).is_some_and(|steps| steps.contains_key(&version))
    }

    /// Applies every registered step from `version` on; returns the payload and the version
    /// it ends at.
    pub fn upcast(
        &self,
        event_type: &str,
        version: u32,
        mut payload: serde_json::Value,
    ) -> Result<(u32, serde_json::Value)> {
        let mut current = version;
        let steps = self.steps.get(event_type);
        while let Some(step) = steps.and_then(|s| s.get(&current)) {
            payload = step(payload).map_err(|reason| EventLogError::Upcast {
                event_type: event_type.to_owned(),
                from: current,
                reason,
            })?;
            current += 1;
        }
        Ok((current, payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn steps_chain_until_the_current_version() {
        let up = Upcasters::new()
            .register("Approved", 1, |mut p| {
                p["region"] = json!("us-east-1");
                Ok(p)
            })
            .register("Approved", 2, |mut p| {
                p["scope"] = json!("account");
                Ok(p)
            });
        let (v, p) = up.upcast("Approved", 1, json!({})).unwrap();
        assert_eq!(v, 3);
        assert_eq!(p, json!({"region": "us-east-1", "scope": "account"}));
        let (v, _) = up.upcast("Rejected", 1, json!({})).unwrap();
        assert_eq!(v, 1, "types without steps are read as stored");
    }

    #[test]
    fn a_failing_step_names_type_and_version() {
        let up = Upcasters::new().register("Approved", 1, |_| Err("no region".into()));
        let err = up.upcast("Approved", 1, json!({})).unwrap_err();
        assert!(err.to_string().contains("`Approved` from schema version 1: no region"), "{err}");
    }
}
