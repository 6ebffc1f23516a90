//! The model catalog (DOMAIN.md §4): a model on a platform is pending review, approved for
//! specific accounts, regions and actions, or revoked. Approving a model opens the door; a
//! Business Request is what lets a workload walk through it. One aggregate per model.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::error::{DomainError, FieldViolation, Violations};
use crate::request::CatalogStanding;
use crate::vocabulary::{ApprovalScope, ModelId, Platform};

/// What may be asked of a catalog entry.
#[derive(Debug, Clone, PartialEq)]
pub enum CatalogCommand {
    /// Put a model up for review.
    ListForReview {
        /// Where it runs.
        platform: Platform,
        /// Which model.
        model_id: ModelId,
        /// Who.
        by: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Approve it for a scope (from pending or revoked).
    Approve {
        /// The scope.
        scope: ApprovalScope,
        /// Who.
        by: String,
        /// Why.
        rationale: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Extend an approval to further accounts, regions or actions.
    AddScope {
        /// What to add.
        scope: ApprovalScope,
        /// Who.
        by: String,
        /// Why.
        rationale: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Withdraw the approval. Workloads already approved keep their history; new
    /// approvals are refused.
    Revoke {
        /// Who.
        by: String,
        /// Why.
        rationale: String,
        /// When.
        at: DateTime<Utc>,
    },
}

/// What a catalog entry records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum CatalogEvent {
    /// Listed, pending review.
    ModelListedForReview {
        /// Where it runs.
        platform: Platform,
        /// Which model.
        model_id: ModelId,
        /// Who.
        by: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Approved for a scope.
    ModelApproved {
        /// The scope.
        scope: ApprovalScope,
        /// Who.
        by: String,
        /// Why.
        rationale: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The approval extended.
    ModelScopeAdded {
        /// What was added (only what was new).
        added: ApprovalScope,
        /// Who.
        by: String,
        /// Why.
        rationale: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The approval withdrawn.
    ModelRevoked {
        /// Who.
        by: String,
        /// Why.
        rationale: String,
        /// When.
        at: DateTime<Utc>,
    },
}

/// Where a model stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelStatus {
    /// Not in the catalog.
    #[default]
    Unlisted,
    /// Waiting for review.
    PendingReview,
    /// Approved for `scope`.
    Approved,
    /// Approval withdrawn.
    Revoked,
}

impl ModelStatus {
    fn name(self) -> &'static str {
        match self {
            Self::Unlisted => "not in the catalog",
            Self::PendingReview => "pending review",
            Self::Approved => "approved",
            Self::Revoked => "revoked",
        }
    }
}

/// A model's catalog entry folded from its events.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CatalogEntry {
    /// Where it stands.
    pub status: ModelStatus,
    /// The platform (set when listed).
    pub platform: Option<Platform>,
    /// The model (set when listed).
    pub model_id: Option<ModelId>,
    /// The approved scope (empty unless approved).
    pub scope: ApprovalScope,
    last_revocation: Option<String>,
}

impl CatalogEntry {
    /// What a Business Request review needs to know.
    pub fn standing(&self) -> CatalogStanding {
        match self.status {
            ModelStatus::Approved => CatalogStanding::Approved(self.scope.clone()),
            other => CatalogStanding::NotApproved(other.name()),
        }
    }
}

/// The rules of a scope an approval names, for an API to report beside its parse errors.
pub fn scope_violations(scope: &ApprovalScope) -> Vec<FieldViolation> {
    let mut v = Violations::default();
    check_scope(&mut v, scope);
    v.into_vec()
}

fn check_scope(v: &mut Violations, scope: &ApprovalScope) {
    if scope.accounts.is_empty() {
        v.add("scope.account_ids", "name at least one account");
    }
    if scope.regions.is_empty() {
        v.add("scope.regions", "name at least one region");
    }
    if scope.actions.is_empty() {
        v.add("scope.actions", "name at least one action");
    }
}

impl Aggregate for CatalogEntry {
    type Command = CatalogCommand;
    type Event = CatalogEvent;
    type Error = DomainError;

    fn decide(&self, command: &CatalogCommand) -> Result<Vec<CatalogEvent>, DomainError> {
        let illegal =
            |action| DomainError::IllegalTransition { aggregate: "catalog model", state: self.status.name(), action };
        match command {
            CatalogCommand::ListForReview { platform, model_id, by, at } => match self.status {
                ModelStatus::Unlisted => Ok(vec![CatalogEvent::ModelListedForReview {
                    platform: *platform,
                    model_id: model_id.clone(),
                    by: by.clone(),
                    at: *at,
                }]),
                _ if self.platform == Some(*platform) && self.model_id.as_ref() == Some(model_id) => Ok(vec![]),
                _ => Err(illegal("list")),
            },
            CatalogCommand::Approve { scope, by, rationale, at } => {
                let mut v = Violations::default();
                v.require_rationale(rationale);
                check_scope(&mut v, scope);
                v.into_result()?;
                match self.status {
                    ModelStatus::PendingReview | ModelStatus::Revoked => Ok(vec![CatalogEvent::ModelApproved {
                        scope: scope.clone(),
                        by: by.clone(),
                        rationale: rationale.clone(),
                        at: *at,
                    }]),
                    ModelStatus::Approved if self.scope == *scope => Ok(vec![]),
                    _ => Err(illegal("approve")),
                }
            }
            CatalogCommand::AddScope { scope, by, rationale, at } => {
                let mut v = Violations::default();
                v.require_rationale(rationale);
                v.into_result()?;
                if self.status != ModelStatus::Approved {
                    return Err(illegal("add scope to"));
                }
                let added = ApprovalScope {
                    accounts: scope.accounts.difference(&self.scope.accounts).cloned().collect(),
                    regions: scope.regions.difference(&self.scope.regions).cloned().collect(),
                    actions: scope.actions.difference(&self.scope.actions).copied().collect(),
                };
                if added == ApprovalScope::default() {
                    return Ok(vec![]);
                }
                Ok(vec![CatalogEvent::ModelScopeAdded { added, by: by.clone(), rationale: rationale.clone(), at: *at }])
            }
            CatalogCommand::Revoke { by, rationale, at } => {
                let mut v = Violations::default();
                v.require_rationale(rationale);
                v.into_result()?;
                match self.status {
                    ModelStatus::Approved | ModelStatus::PendingReview => {
                        Ok(vec![CatalogEvent::ModelRevoked { by: by.clone(), rationale: rationale.clone(), at: *at }])
                    }
                    ModelStatus::Revoked if self.last_revocation.as_deref() == Some(rationale) => Ok(vec![]),
                    _ => Err(illegal("revoke")),
                }
            }
        }
    }

    fn evolve(mut self, event: &CatalogEvent) -> Self {
        match event {
            CatalogEvent::ModelListedForReview { platform, model_id, .. } => {
                self.status = ModelStatus::PendingReview;
                self.platform = Some(*platform);
                self.model_id = Some(model_id.clone());
            }
            CatalogEvent::ModelApproved { scope, .. } => {
                self.status = ModelStatus::Approved;
                self.scope = scope.clone();
            }
            CatalogEvent::ModelScopeAdded { added, .. } => self.scope = self.scope.extended_by(added),
            CatalogEvent::ModelRevoked { rationale, .. } => {
                self.status = ModelStatus::Revoked;
                self.scope = ApprovalScope::default();
                self.last_revocation = Some(rationale.clone());
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::spec::given;
    use crate::vocabulary::{AccountId, InvokeAction, Region};

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-02T09:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn scope(regions: &[&str]) -> ApprovalScope {
        ApprovalScope {
            accounts: [AccountId::parse("123456789012").unwrap()].into(),
            regions: regions.iter().map(|r| Region::parse(r).unwrap()).collect(),
            actions: [InvokeAction::InvokeModel].into(),
        }
    }

    fn listed() -> CatalogEvent {
        CatalogEvent::ModelListedForReview {
            platform: Platform::AmazonBedrock,
            model_id: ModelId::parse("anthropic.claude-3-haiku-20240307-v1:0").unwrap(),
            by: "fl-ana".into(),
            at: at(),
        }
    }

    fn approved(regions: &[&str]) -> CatalogEvent {
        CatalogEvent::ModelApproved { scope: scope(regions), by: "fl-ana".into(), rationale: "vetted".into(), at: at() }
    }

    #[test]
    fn a_model_is_listed_approved_extended_and_revoked() {
        let e = given::<CatalogEntry>(&[listed()])
            .when(CatalogCommand::Approve {
                scope: scope(&["us-east-1"]),
                by: "fl-ana".into(),
                rationale: "vetted".into(),
                at: at(),
            })
            .unwrap();
        assert_eq!(e, vec![approved(&["us-east-1"])]);

        let e = given::<CatalogEntry>(&[listed(), approved(&["us-east-1"])])
            .when(CatalogCommand::AddScope {
                scope: scope(&["us-east-1", "us-west-2"]),
                by: "fl-ana".into(),
                rationale: "DR region".into(),
                at: at(),
            })
            .unwrap();
        let [CatalogEvent::ModelScopeAdded { added, .. }] = e.as_slice() else { panic!("{e:?}") };
        assert_eq!(added.regions.len(), 1, "only what is new is recorded");
        assert!(added.accounts.is_empty());

        let entry = CatalogEntry::fold(&[listed(), approved(&["us-east-1"]), e[0].clone()]);
        assert_eq!(entry.scope.regions.len(), 2);
        assert!(matches!(entry.standing(), CatalogStanding::Approved(_)));

        let e = given::<CatalogEntry>(&[listed(), approved(&["us-east-1"])])
            .when(CatalogCommand::Revoke { by: "fl-ana".into(), rationale: "EOL".into(), at: at() })
            .unwrap();
        let revoked = CatalogEntry::fold(&[listed(), approved(&["us-east-1"]), e[0].clone()]);
        assert_eq!(revoked.standing(), CatalogStanding::NotApproved("revoked"));
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        let err = given::<CatalogEntry>(&[listed()])
            .when(CatalogCommand::Approve {
                scope: ApprovalScope::default(),
                by: "fl".into(),
                rationale: "".into(),
                at: at(),
            })
            .unwrap_err();
        let DomainError::Invalid(v) = err else { panic!() };
        let fields: Vec<_> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, vec!["rationale", "scope.account_ids", "scope.regions", "scope.actions"]);

        let err = given::<CatalogEntry>(&[listed()])
            .when(CatalogCommand::AddScope {
                scope: scope(&["us-west-2"]),
                by: "fl".into(),
                rationale: "x".into(),
                at: at(),
            })
            .unwrap_err();
        assert_eq!(err.to_string(), "cannot add scope to a catalog model that is pending review");
        assert_eq!(CatalogEntry::default().standing(), CatalogStanding::NotApproved("not in the catalog"));
    }
}
