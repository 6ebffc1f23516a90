//! Gateway mapping rules (DOMAIN.md §13 "Gateways and shared roles"). An LLM gateway calls
//! Bedrock through one role for many workloads, so the role names nobody; its session names
//! (`assumed-role/llm-gateway/gw-user-1`) or its principal tags (`iamPrincipal/team`) still
//! do. The FinOps Lead records a rule — "this role's sessions matching this pattern, or
//! carrying this tag value, are this workload's" — and attribution charges the matching
//! lines to the workload from the rule's effective day, ahead of any claim of the whole
//! role. A rule is a decision like any other: recorded with who, when and why, honoured as
//! of its time, ended (never edited) by retiring it from a day on.
//!
//! A rule's id is derived from what it says ([`GatewayRuleSpec::rule_id`]), so recording
//! the same rule twice is the same rule, and a retried request writes nothing.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::error::{DomainError, FieldViolation, Violations};
use crate::vocabulary::AccountId;

/// Longest session pattern (a role session name is at most 64 characters).
pub const MAX_SESSION_PATTERN_CHARS: usize = 64;
/// Longest principal tag key after `iamPrincipal/` (IAM allows 128).
pub const MAX_TAG_KEY_CHARS: usize = 128;
/// Longest principal tag value (IAM allows 256).
pub const MAX_TAG_VALUE_CHARS: usize = 256;

/// Which of a role's calls a rule takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum SessionMatcher {
    /// Sessions whose name matches a glob (`*` any run, `?` one character), e.g.
    /// `gw-user-1*`.
    SessionName {
        /// The glob.
        pattern: String,
    },
    /// Calls whose principal carries the tag `iamPrincipal/{key}` with this value.
    PrincipalTag {
        /// The key, without the `iamPrincipal/` prefix.
        key: String,
        /// The value, exactly.
        value: String,
    },
}

impl SessionMatcher {
    fn violations(&self, v: &mut Violations) {
        let session_char = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
        match self {
            Self::SessionName { pattern } => {
                let n = pattern.chars().count();
                if n == 0
                    || n > MAX_SESSION_PATTERN_CHARS
                    || !pattern.chars().all(|c| session_char(c) || c == '*' || c == '?')
                {
                    v.add(
                        "session_pattern",
                        format!(
                            "`{pattern}` must be 1–{MAX_SESSION_PATTERN_CHARS} characters of what a session name holds \
                             (A-Z a-z 0-9 + = , . @ _ -) and the wildcards * ?"
                        ),
                    );
                } else if pattern.chars().all(|c| c == '*') {
                    v.add("session_pattern", "`*` alone would take every session of the role: claim the role instead");
                }
            }
            Self::PrincipalTag { key, value } => {
                // IAM tag keys and values: letters, digits, spaces and _ . : / = + - @.
                let tag_char = |c: char| c.is_alphanumeric() || " _.:/=+-@".contains(c);
                let key_n = key.chars().count();
                if key_n == 0 || key_n > MAX_TAG_KEY_CHARS || !key.chars().all(tag_char) {
                    v.add(
                        "principal_tag",
                        format!("the key `{key}` must be 1–{MAX_TAG_KEY_CHARS} characters of letters, digits, spaces and _ . : / = + - @"),
                    );
                }
                if key.starts_with("iamPrincipal/") {
                    v.add("principal_tag", "give the key without its `iamPrincipal/` prefix");
                }
                if value.chars().count() > MAX_TAG_VALUE_CHARS || !value.chars().all(tag_char) {
                    v.add(
                        "principal_tag",
                        format!("the value `{value}` must be at most {MAX_TAG_VALUE_CHARS} characters of letters, digits, spaces and _ . : / = + - @"),
                    );
                }
            }
        }
    }
}

impl fmt::Display for SessionMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SessionName { pattern } => write!(f, "sessions `{pattern}`"),
            Self::PrincipalTag { key, value } => write!(f, "principal tag iamPrincipal/{key}={value}"),
        }
    }
}

/// What a rule says: which calls of which role are which workload's, from which day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayRuleSpec {
    /// The role's account.
    pub account: AccountId,
    /// The shared role (its name, as in `assumed-role/{role}/…`).
    pub role_name: String,
    /// Which of its calls.
    pub matcher: SessionMatcher,
    /// The workload charged.
    pub workload_id: Uuid,
    /// The first usage day the rule charges (inclusive).
    pub effective_from: NaiveDate,
}

/// Names rules by what they say.
const RULE_NAMESPACE: Uuid = Uuid::from_u128(0x6761_7465_7761_792d_7275_6c65_2d69_6473);

impl GatewayRuleSpec {
    /// The rule's id: the same rule recorded twice is one rule.
    pub fn rule_id(&self) -> Uuid {
        let matcher = match &self.matcher {
            SessionMatcher::SessionName { pattern } => format!("session/{pattern}"),
            SessionMatcher::PrincipalTag { key, value } => format!("tag/{key}={value}"),
        };
        Uuid::new_v5(
            &RULE_NAMESPACE,
            format!(
                "{}/{}/{matcher}/{}/{}",
                self.account.as_str(),
                self.role_name,
                self.workload_id,
                self.effective_from
            )
            .as_bytes(),
        )
    }

    /// Every fault, all at once.
    pub fn violations(&self) -> Vec<FieldViolation> {
        let mut v = Violations::default();
        let role_char = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
        if self.role_name.is_empty() || self.role_name.len() > 64 || !self.role_name.chars().all(role_char) {
            v.add("role_name", format!("`{}` is not an IAM role name", self.role_name));
        }
        self.matcher.violations(&mut v);
        if self.workload_id.is_nil() {
            v.add("workload", "is required: the workload the matching calls are charged to");
        }
        v.into_vec()
    }
}

/// A rule's life: recorded, then perhaps retired from a day on.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GatewayRule {
    /// What it says; `None` before it is recorded.
    pub spec: Option<GatewayRuleSpec>,
    /// The last usage day it charges, once retired.
    pub effective_until: Option<NaiveDate>,
}

/// What may be asked of a rule.
#[derive(Debug, Clone, PartialEq)]
pub enum GatewayRuleCommand {
    /// Record it (the FinOps Lead).
    Record {
        /// What it says.
        spec: GatewayRuleSpec,
        /// Who.
        by: String,
        /// Why (required).
        rationale: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Stop it charging after a day (the FinOps Lead).
    Retire {
        /// The last usage day it still charges.
        effective_until: NaiveDate,
        /// Who.
        by: String,
        /// Why (required).
        rationale: String,
        /// When.
        at: DateTime<Utc>,
    },
}

/// What a rule records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum GatewayRuleEvent {
    /// The rule was recorded; attribution honours it as of this event.
    GatewayRuleRecorded {
        /// The rule's id.
        rule_id: Uuid,
        /// What it says.
        spec: GatewayRuleSpec,
        /// Who.
        by: String,
        /// Why.
        rationale: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The rule charges nothing after `effective_until`.
    GatewayRuleRetired {
        /// The last usage day it charges.
        effective_until: NaiveDate,
        /// Who.
        by: String,
        /// Why.
        rationale: String,
        /// When.
        at: DateTime<Utc>,
    },
}

impl GatewayRule {
    fn state(&self) -> &'static str {
        match (&self.spec, self.effective_until) {
            (None, _) => "not recorded",
            (Some(_), None) => "in force",
            (Some(_), Some(_)) => "retired",
        }
    }
}

impl Aggregate for GatewayRule {
    type Command = GatewayRuleCommand;
    type Event = GatewayRuleEvent;
    type Error = DomainError;

    fn decide(&self, command: &GatewayRuleCommand) -> Result<Vec<GatewayRuleEvent>, DomainError> {
        match command {
            GatewayRuleCommand::Record { spec, by, rationale, at } => {
                if self.spec.as_ref() == Some(spec) && self.effective_until.is_none() {
                    return Ok(vec![]);
                }
                if self.spec.is_some() {
                    return Err(DomainError::IllegalTransition {
                        aggregate: "gateway rule",
                        state: self.state(),
                        action: "record",
                    });
                }
                let mut violations = spec.violations();
                violations.extend(crate::error::rationale_violations(rationale));
                if !violations.is_empty() {
                    return Err(DomainError::Invalid(violations));
                }
                Ok(vec![GatewayRuleEvent::GatewayRuleRecorded {
                    rule_id: spec.rule_id(),
                    spec: spec.clone(),
                    by: by.clone(),
                    rationale: rationale.clone(),
                    at: *at,
                }])
            }
            GatewayRuleCommand::Retire { effective_until, by, rationale, at } => {
                let Some(spec) = &self.spec else {
                    return Err(DomainError::IllegalTransition {
                        aggregate: "gateway rule",
                        state: self.state(),
                        action: "retire",
                    });
                };
                match self.effective_until {
                    Some(until) if until == *effective_until => return Ok(vec![]),
                    Some(_) => {
                        return Err(DomainError::IllegalTransition {
                            aggregate: "gateway rule",
                            state: self.state(),
                            action: "retire",
                        });
                    }
                    None => {}
                }
                let mut v = Violations::default();
                if *effective_until < spec.effective_from.pred_opt().unwrap_or(spec.effective_from) {
                    v.add(
                        "effective_until",
                        format!(
                            "{effective_until} is before the rule's first day {} less one (retire from its start: the day before it)",
                            spec.effective_from
                        ),
                    );
                }
                v.require_rationale(rationale);
                v.into_result()?;
                Ok(vec![GatewayRuleEvent::GatewayRuleRetired {
                    effective_until: *effective_until,
                    by: by.clone(),
                    rationale: rationale.clone(),
                    at: *at,
                }])
            }
        }
    }

    fn evolve(mut self, event: &GatewayRuleEvent) -> Self {
        match event {
            GatewayRuleEvent::GatewayRuleRecorded { spec, .. } => self.spec = Some(spec.clone()),
            GatewayRuleEvent::GatewayRuleRetired { effective_until, .. } => {
                self.effective_until = Some(*effective_until);
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::spec::given;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-20T09:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    fn spec(matcher: SessionMatcher) -> GatewayRuleSpec {
        GatewayRuleSpec {
            account: AccountId::parse("111111111111").unwrap(),
            role_name: "llm-gateway".into(),
            matcher,
            workload_id: Uuid::from_u128(7),
            effective_from: day(1),
        }
    }

    fn sessions(pattern: &str) -> SessionMatcher {
        SessionMatcher::SessionName { pattern: pattern.into() }
    }

    fn record(spec: GatewayRuleSpec, rationale: &str) -> GatewayRuleCommand {
        GatewayRuleCommand::Record { spec, by: "fl-ana".into(), rationale: rationale.into(), at: at() }
    }

    fn retire(until: NaiveDate) -> GatewayRuleCommand {
        GatewayRuleCommand::Retire {
            effective_until: until,
            by: "fl-ana".into(),
            rationale: "tenant moved".into(),
            at: at(),
        }
    }

    #[test]
    fn the_finops_lead_records_a_rule_once_and_its_id_is_what_it_says() {
        let s = spec(sessions("gw-user-1*"));
        let events = given::<GatewayRule>(&[]).when(record(s.clone(), "tenant 1 is claims triage")).unwrap();
        assert!(
            matches!(&events[..], [GatewayRuleEvent::GatewayRuleRecorded { rule_id, .. }] if *rule_id == s.rule_id())
        );
        let other = spec(SessionMatcher::PrincipalTag { key: "team".into(), value: "ds".into() });
        assert_ne!(s.rule_id(), other.rule_id(), "a different matcher is a different rule");
        assert_eq!(GatewayRule::fold(&events).spec, Some(s));
    }

    #[test]
    fn every_fault_of_a_rule_is_named() {
        let mut bad = spec(sessions("*"));
        bad.role_name = "a role".into();
        bad.workload_id = Uuid::nil();
        let DomainError::Invalid(v) = given::<GatewayRule>(&[]).when(record(bad, " ")).unwrap_err() else { panic!() };
        let fields: Vec<&str> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, vec!["role_name", "session_pattern", "workload", "rationale"]);
        let tag = spec(SessionMatcher::PrincipalTag { key: "iamPrincipal/team".into(), value: "a\nb".into() });
        let DomainError::Invalid(v) = given::<GatewayRule>(&[]).when(record(tag, "x")).unwrap_err() else { panic!() };
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v[0].description.contains("without its `iamPrincipal/` prefix"));
    }

    #[test]
    fn a_rule_is_retired_from_a_day_once_and_never_recorded_again() {
        let s = spec(sessions("gw-user-1*"));
        let history = given::<GatewayRule>(&[]).when(record(s.clone(), "tenant 1")).unwrap();
        let retired = given::<GatewayRule>(&history).when(retire(day(15))).unwrap();
        let all: Vec<_> = history.iter().chain(&retired).cloned().collect();
        assert_eq!(GatewayRule::fold(&all).effective_until, Some(day(15)));
        assert_eq!(
            given::<GatewayRule>(&all).when(retire(day(20))).unwrap_err(),
            DomainError::IllegalTransition { aggregate: "gateway rule", state: "retired", action: "retire" }
        );
        assert_eq!(
            given::<GatewayRule>(&all).when(record(s, "again")).unwrap_err(),
            DomainError::IllegalTransition { aggregate: "gateway rule", state: "retired", action: "record" }
        );
        assert!(matches!(
            given::<GatewayRule>(&[]).when(retire(day(3))),
            Err(DomainError::IllegalTransition { state: "not recorded", .. })
        ));
        let DomainError::Invalid(v) =
            given::<GatewayRule>(&history).when(retire(NaiveDate::from_ymd_opt(2026, 10, 1).unwrap())).unwrap_err()
        else {
            panic!()
        };
        assert_eq!(v[0].field, "effective_until");
    }
}
