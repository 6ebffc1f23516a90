//! Which roles are broad and which are dedicated (DOMAIN.md §6 rules 3 and 5). The
//! patterns decide where money goes — a broad role's spend is Unattributed Spend whoever
//! claims it, an unclaimed dedicated role's is an Unclaimed AI Allocation — so setting them
//! is a FinOps Lead decision, recorded with its rationale and honoured as of its time. The
//! configuration file only seeds the defaults used before any decision.
//!
//! Patterns are globs over the role name: `*` any run of characters, `?` one character.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::error::{DomainError, Violations};

/// Longest pattern.
pub const MAX_PATTERN_CHARS: usize = 128;
/// Most patterns of one kind.
pub const MAX_PATTERNS: usize = 100;

/// Broad and dedicated role patterns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolePatterns {
    /// Broad shared roles: their spend is "Unattributed Spend" whoever claims them.
    pub broad: Vec<String>,
    /// Dedicated roles besides the generated ones: unclaimed, their spend is "Unclaimed
    /// AI Allocation".
    pub dedicated: Vec<String>,
}

impl Default for RolePatterns {
    fn default() -> Self {
        Self {
            broad: ["*AdministratorAccess*", "*PowerUserAccess*", "AWSReservedSSO_*Admin*"].map(String::from).to_vec(),
            dedicated: vec!["finops-ai-*".to_owned()],
        }
    }
}

impl RolePatterns {
    /// Every rule, all violations at once: each pattern 1–128 characters of what an IAM
    /// role name may hold (`[A-Za-z0-9+=,.@_-]`) plus the wildcards `*` and `?`, at most
    /// 100 of a kind, none repeated, and a pattern of `*` alone refused (it would make
    /// every role broad, or dedicated).
    pub fn violations(&self) -> Vec<crate::FieldViolation> {
        let mut v = Violations::default();
        for (field, patterns) in [("broad", &self.broad), ("dedicated", &self.dedicated)] {
            if patterns.len() > MAX_PATTERNS {
                v.add(field, format!("{} patterns; at most {MAX_PATTERNS}", patterns.len()));
            }
            for (i, p) in patterns.iter().enumerate() {
                let allowed = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-*?".contains(c);
                if p.is_empty() || p.chars().count() > MAX_PATTERN_CHARS || !p.chars().all(allowed) {
                    v.add(
                        format!("{field}[{i}]"),
                        format!("`{p}` must be 1–{MAX_PATTERN_CHARS} characters of A-Z a-z 0-9 + = , . @ _ - and the wildcards * ?"),
                    );
                } else if p.chars().all(|c| c == '*') {
                    v.add(format!("{field}[{i}]"), format!("`{p}` would match every role"));
                } else if patterns[..i].contains(p) {
                    v.add(format!("{field}[{i}]"), format!("`{p}` is listed twice"));
                }
            }
        }
        v.into_vec()
    }
}

/// The recorded patterns (one aggregate for the organisation).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RolePatternPolicy {
    /// The patterns in force; `None` until the FinOps Lead first sets them (the
    /// configured defaults apply until then).
    pub patterns: Option<RolePatterns>,
}

/// What may be asked of it.
#[derive(Debug, Clone, PartialEq)]
pub enum RolePatternCommand {
    /// Replace the patterns.
    Set {
        /// The new patterns.
        patterns: RolePatterns,
        /// Who.
        by: String,
        /// Why (required).
        rationale: String,
        /// When.
        at: DateTime<Utc>,
    },
}

/// What it records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum RolePatternEvent {
    /// The patterns were set; they apply to every answer as of this event on.
    RolePatternsSet {
        /// The patterns.
        patterns: RolePatterns,
        /// Who.
        by: String,
        /// Why.
        rationale: String,
        /// When.
        at: DateTime<Utc>,
    },
}

impl Aggregate for RolePatternPolicy {
    type Command = RolePatternCommand;
    type Event = RolePatternEvent;
    type Error = DomainError;

    fn decide(&self, command: &RolePatternCommand) -> Result<Vec<RolePatternEvent>, DomainError> {
        let RolePatternCommand::Set { patterns, by, rationale, at } = command;
        if self.patterns.as_ref() == Some(patterns) {
            return Ok(vec![]);
        }
        let mut violations = patterns.violations();
        violations.extend(crate::error::rationale_violations(rationale));
        if !violations.is_empty() {
            return Err(DomainError::Invalid(violations));
        }
        Ok(vec![RolePatternEvent::RolePatternsSet {
            patterns: patterns.clone(),
            by: by.clone(),
            rationale: rationale.clone(),
            at: *at,
        }])
    }

    fn evolve(mut self, event: &RolePatternEvent) -> Self {
        let RolePatternEvent::RolePatternsSet { patterns, .. } = event;
        self.patterns = Some(patterns.clone());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::spec::given;

    fn set(broad: &[&str], dedicated: &[&str], rationale: &str) -> RolePatternCommand {
        RolePatternCommand::Set {
            patterns: RolePatterns {
                broad: broad.iter().map(|s| s.to_string()).collect(),
                dedicated: dedicated.iter().map(|s| s.to_string()).collect(),
            },
            by: "fl-ana".into(),
            rationale: rationale.into(),
            at: DateTime::parse_from_rfc3339("2026-11-10T09:00:00Z").unwrap().with_timezone(&Utc),
        }
    }

    #[test]
    fn the_finops_lead_sets_patterns_with_a_reason_and_every_fault_is_named() {
        let events = given::<RolePatternPolicy>(&[])
            .when(set(&["*Admin*"], &["team-ai-*"], "gateway roles are shared"))
            .unwrap();
        assert_eq!(RolePatternPolicy::fold(&events).patterns.unwrap().dedicated, vec!["team-ai-*"]);
        let err = given::<RolePatternPolicy>(&[]).when(set(&["*", "a b"], &["x", "x"], "")).unwrap_err();
        let DomainError::Invalid(v) = err else { panic!() };
        assert_eq!(
            v.iter().map(|v| v.field.as_str()).collect::<Vec<_>>(),
            vec!["broad[0]", "broad[1]", "dedicated[1]", "rationale"]
        );
    }
}
