//! Decision trails (issue 14 item 2): one resource's events as people read them — when,
//! who (identity and role), what happened in words, and why. The same words wherever a
//! trail is shown: `HistoryService`, a gap's and a gateway rule's own history, the CLI.

use chrono::{DateTime, Utc};
use finops_domain::alerts::AlertEvent;
use finops_domain::catalog::CatalogEvent;
use finops_domain::gateway_rules::GatewayRuleEvent;
use finops_domain::investigations::InvestigationEvent;
use finops_domain::kill_switch::{ControlEvent, Enforcement};
use finops_domain::org::OrgEvent;
use finops_domain::request::{RequestEvent, UseCase};
use finops_domain::role_patterns::RolePatternEvent;
use finops_domain::spaces::ClaimEvent;
use finops_domain::spend_cards::{CardEvent, DisputeOutcome, RollupEvent};
use finops_domain::tasks::TaskEvent;
use finops_domain::vocabulary::{MonthlyAmount, dollars};
use finops_domain::workload::WorkloadEvent;
use finops_eventlog::RecordedEvent;
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// One entry of a trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// When it was recorded.
    pub at: DateTime<Utc>,
    /// The event type.
    pub event: String,
    /// Its id.
    pub event_id: Uuid,
    /// Who decided (a process carrying out a person's decision names the person).
    pub who: String,
    /// In which role.
    pub role: String,
    /// What happened.
    pub what: String,
    /// Why (empty when nothing says).
    pub why: String,
    /// The request it belongs to.
    pub correlation_id: Option<Uuid>,
    /// The event that caused it.
    pub causation_id: Option<Uuid>,
    /// Its global position (0 before it is sealed).
    pub position: u64,
    /// Its version within its stream.
    pub stream_version: u64,
}

/// `event` as a trail entry.
pub fn entry(event: &RecordedEvent) -> HistoryEntry {
    let (what, why, decider) = describe(event);
    let (who, role) = decider.unwrap_or_else(|| (event.metadata.actor_id.clone(), event.metadata.actor_role.clone()));
    // The event's own reason first; else the one the request carried.
    let why = if why.is_empty() { event.metadata.rationale.clone().unwrap_or_default() } else { why };
    HistoryEntry {
        at: event.metadata.recorded_at,
        event: event.event_type.clone(),
        event_id: event.event_id,
        who,
        role,
        what,
        why,
        correlation_id: event.metadata.correlation_id,
        causation_id: event.metadata.causation_id,
        position: event.position.map_or(0, |p| p.0),
        stream_version: event.stream_version,
    }
}

fn decode<E: DeserializeOwned>(event: &RecordedEvent) -> Option<E> {
    event.payload.decode::<E>().ok()
}

/// What the event says, why, and — where the event names a person other than its recorder —
/// who decided, in which role.
type Described = (String, String, Option<(String, String)>);

fn describe(event: &RecordedEvent) -> Described {
    let stream = event.stream_id.as_str();
    let plain = |(what, why): (String, String)| (what, why, None);
    let described = if stream.starts_with("business-request-") {
        decode::<RequestEvent>(event).map(|e| plain(request(&e)))
    } else if stream.starts_with("task-") {
        decode::<TaskEvent>(event).map(|e| plain(task(&e)))
    } else if stream.starts_with("catalog-") {
        decode::<CatalogEvent>(event).map(|e| plain(catalog(&e)))
    } else if stream.starts_with("claim-") {
        decode::<ClaimEvent>(event).map(|e| plain(claim(&e)))
    } else if stream.starts_with("workload-") {
        decode::<WorkloadEvent>(event).map(|e| plain(workload(&e)))
    } else if stream == "organisation" {
        decode::<OrgEvent>(event).map(|e| plain(organisation(&e)))
    } else if stream == "role-patterns" {
        decode::<RolePatternEvent>(event).map(|e| plain(role_patterns(&e)))
    } else if stream.starts_with("threshold-alerts-") {
        decode::<AlertEvent>(event).map(|e| plain(alert(&e)))
    } else if stream.starts_with("investigation-") {
        decode::<InvestigationEvent>(event).map(|e| investigation(&e))
    } else if stream.starts_with("kill-switch-") {
        decode::<ControlEvent>(event).map(|e| kill_switch(&e))
    } else if stream.starts_with("spend-card-") {
        decode::<CardEvent>(event).map(|e| card(&e))
    } else if stream.starts_with("spend-rollup-") {
        decode::<RollupEvent>(event).map(|e| rollup(&e))
    } else if stream.starts_with("gateway-rule-") {
        decode::<GatewayRuleEvent>(event).map(|e| plain(gateway_rule(&e)))
    } else if stream.starts_with(crate::GapLifecycle::PREFIX) {
        decode::<finops_domain::gaps::GapEvent>(event).map(|e| {
            let (what, why) = crate::gaps::describe(&e);
            let decider = crate::gaps::decider(&e).map(|d| (d.by.clone(), d.role.clone()));
            (what, why, decider)
        })
    } else {
        None
    };
    // An event this build cannot read still has a place in the trail, by its type.
    described.unwrap_or_else(|| (event.event_type.clone(), String::new(), None))
}

/// A monthly amount in words.
pub fn amount(m: &MonthlyAmount) -> String {
    match m {
        MonthlyAmount::Dollars(c) => format!("{c}/month"),
        MonthlyAmount::Tokens(t) => format!("{} tokens/month", t.total()),
    }
}

fn list<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    items.into_iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

fn request(e: &RequestEvent) -> (String, String) {
    match e {
        RequestEvent::BusinessRequestSubmitted { product_id, details, .. } => (
            format!(
                "submitted `{}` ({}{}) for product {product_id}",
                details.workload_name,
                match details.use_case {
                    UseCase::Coding { .. } => "coding",
                    UseCase::Operations { .. } => "operations",
                },
                if details.priority { ", priority" } else { "" },
            ),
            String::new(),
        ),
        RequestEvent::BusinessRequestResubmitted { details, revision, .. } => {
            (format!("resubmitted `{}` as revision {revision}", details.workload_name), String::new())
        }
        RequestEvent::BusinessRequestApproved { review, workload_id, role_name, rationale, .. } => (
            format!(
                "approved: {} on {} in {} {}, confirmed estimate {}; workload {workload_id}, role {role_name}",
                review.model_id,
                review.platform.as_str(),
                review.account,
                review.region,
                amount(&review.confirmed_estimate),
            ),
            rationale.clone(),
        ),
        RequestEvent::BusinessRequestRejected { rationale, .. } => ("rejected".to_owned(), rationale.clone()),
        RequestEvent::BusinessRequestWithdrawn { reason, .. } => {
            ("withdrawn".to_owned(), reason.clone().unwrap_or_default())
        }
        RequestEvent::ApprovalScopeExtended { accounts, regions, rationale, .. } => (
            format!("approval scope extended: accounts [{}], regions [{}]", list(accounts), list(regions)),
            rationale.clone(),
        ),
    }
}

fn task(e: &TaskEvent) -> (String, String) {
    match e {
        TaskEvent::TaskCreated { plan, .. } => (
            format!(
                "created: {}, {} steps, for workload {} (request {})",
                serde_json::to_value(plan.kind).ok().and_then(|k| k.as_str().map(str::to_owned)).unwrap_or_default(),
                plan.steps.len(),
                plan.workload_id,
                plan.request_id
            ),
            plan.approval_rationale.clone(),
        ),
        TaskEvent::TaskStepCompleted { step, note, .. } => {
            (format!("step {} completed", step + 1), note.clone().unwrap_or_default())
        }
        TaskEvent::TaskImplemented { note, .. } => ("marked implemented".to_owned(), note.clone().unwrap_or_default()),
    }
}

fn catalog(e: &CatalogEvent) -> (String, String) {
    match e {
        CatalogEvent::ModelListedForReview { platform, model_id, .. } => {
            (format!("listed for review: {model_id} on {}", platform.as_str()), String::new())
        }
        CatalogEvent::ModelApproved { scope, rationale, .. } => (
            format!("approved for accounts [{}], regions [{}]", list(&scope.accounts), list(&scope.regions)),
            rationale.clone(),
        ),
        CatalogEvent::ModelScopeAdded { added, rationale, .. } => (
            format!("scope added: accounts [{}], regions [{}]", list(&added.accounts), list(&added.regions)),
            rationale.clone(),
        ),
        CatalogEvent::ModelRevoked { rationale, .. } => ("revoked".to_owned(), rationale.clone()),
    }
}

fn claim(e: &ClaimEvent) -> (String, String) {
    match e {
        ClaimEvent::ResourceClaimed { resource, workload_id, effective_from, .. } => {
            (format!("{} claimed for workload {workload_id} from {effective_from}", resource.key()), String::new())
        }
        ClaimEvent::ResourceReserved { resource, workload_id, .. } => {
            (format!("{} reserved for workload {workload_id}", resource.key()), String::new())
        }
        ClaimEvent::ResourceReassigned { resource, from_workload, to_workload, effective_from, rationale, .. } => (
            format!(
                "{} reassigned from {} to workload {to_workload} from {effective_from}",
                resource.key(),
                from_workload.map_or_else(|| "nobody".to_owned(), |w| format!("workload {w}")),
            ),
            rationale.clone(),
        ),
        ClaimEvent::ResourceReleased { workload_id, effective_until, rationale, .. } => {
            (format!("released by workload {workload_id} after {effective_until}"), rationale.clone())
        }
    }
}

fn workload(e: &WorkloadEvent) -> (String, String) {
    match e {
        WorkloadEvent::WorkloadBudgetChanged { budget_id, effective_from, rationale, .. } => {
            (format!("charges budget {budget_id} from {effective_from}"), rationale.clone())
        }
        WorkloadEvent::WorkloadEstimateSet { estimate, .. } => {
            (format!("estimate set: {}", amount(&estimate.monthly)), String::new())
        }
        WorkloadEvent::BusinessCaseDeclared { case, .. } => (
            format!(
                "business case declared: saving {}/year, revenue {}/year",
                case.annual_cost_saving.map_or_else(|| "none".to_owned(), |c| c.to_string()),
                case.annual_revenue_driving.map_or_else(|| "none".to_owned(), |c| c.to_string()),
            ),
            String::new(),
        ),
    }
}

fn organisation(e: &OrgEvent) -> (String, String) {
    let what = match e {
        OrgEvent::PortfolioAdded { portfolio, .. } => {
            format!("portfolio `{}` added, owned by {}", portfolio.name, portfolio.owner)
        }
        OrgEvent::ProductAdded { product, .. } => {
            format!("product `{}` added, owned by {}", product.name, product.owner)
        }
        OrgEvent::AccountRegistered { account, name, .. } => format!("account {account} registered as `{name}`"),
        OrgEvent::BudgetMapped { budget, .. } => {
            format!(
                "budget `{}` mapped to account {} (cost centre {})",
                budget.name, budget.account, budget.cost_centre
            )
        }
    };
    (what, String::new())
}

fn role_patterns(e: &RolePatternEvent) -> (String, String) {
    match e {
        RolePatternEvent::RolePatternsSet { rationale, .. } => ("role patterns set".to_owned(), rationale.clone()),
    }
}

/// A card event in words; the person behind a sign-off is named (not the recorder).
fn card(e: &CardEvent) -> Described {
    let person = |d: &finops_domain::gaps::Decider| Some((d.by.clone(), d.role.clone()));
    match e {
        CardEvent::SpendCardIssued { version, figures, reason, .. } => (
            format!(
                "version {version} issued for the week of {}: actual {} against an estimate of {}",
                figures.week,
                dollars(figures.actual_cents()),
                dollars(figures.estimate_cents)
            ),
            reason.clone(),
            None,
        ),
        CardEvent::SpendCardAccepted { version, decider } => {
            (format!("version {version} accepted"), decider.rationale.clone(), person(decider))
        }
        CardEvent::SpendCardDisputed { version, lines, decider } => {
            (format!("version {version} disputed: {}", lines.join(", ")), decider.rationale.clone(), person(decider))
        }
        CardEvent::SpendCardDisputeResolved { version, outcome, decider } => (
            match outcome {
                DisputeOutcome::Upheld => format!("dispute of version {version} resolved: figures upheld"),
                DisputeOutcome::Adjusted { cents } => {
                    format!("dispute of version {version} resolved: charge adjusted to {}", dollars(*cents))
                }
            },
            decider.rationale.clone(),
            person(decider),
        ),
    }
}

/// A threshold alert event in words.
fn alert(e: &AlertEvent) -> (String, String) {
    match e {
        AlertEvent::EstimateThresholdCrossed { crossing, webhook_id, .. } => (
            format!(
                "{} crossed {} % of its estimate for {}: {} of {} through {} (webhook {webhook_id})",
                crossing.workload,
                crossing.threshold_percent,
                crossing.period,
                dollars(crossing.month_to_date_cents),
                dollars(crossing.estimate_cents),
                crossing.through
            ),
            String::new(),
        ),
        AlertEvent::WebhookDeliveryAttempted { webhook_id, endpoint, attempt, delivered, detail, .. } => (
            format!(
                "webhook {webhook_id} to {endpoint}, attempt {attempt}: {} ({detail})",
                if *delivered { "delivered" } else { "not delivered" }
            ),
            String::new(),
        ),
    }
}

/// An investigation event in words.
fn investigation(e: &InvestigationEvent) -> Described {
    let by = |d: &finops_domain::gaps::Decider| Some((d.by.clone(), d.role.clone()));
    match e {
        InvestigationEvent::InvestigationOpened { firing, .. } => {
            (format!("opened ({}): {}", firing.signal.as_str(), firing.summary), String::new(), None)
        }
        InvestigationEvent::InvestigationAssigned { owner, decider } => {
            (format!("assigned to {owner}"), decider.rationale.clone(), by(decider))
        }
        InvestigationEvent::InvestigationNoted { note, decider } => {
            (format!("noted: {note}"), note.clone(), by(decider))
        }
        InvestigationEvent::InvestigationLinkedToGap { gap, decider } => {
            (format!("linked to {gap}"), decider.rationale.clone(), by(decider))
        }
        InvestigationEvent::InvestigationClosed { decider } => {
            ("closed".to_owned(), decider.rationale.clone(), by(decider))
        }
    }
}

/// A kill-switch event in words: what was asked of AWS, and what came of it.
fn kill_switch(e: &ControlEvent) -> Described {
    let by = |d: &finops_domain::gaps::Decider| Some((d.by.clone(), d.role.clone()));
    let how = |enforcement: &Enforcement| match enforcement {
        Enforcement::Automatic => "run by FinOps Center",
        Enforcement::Manual => "handed over as commands",
    };
    match e {
        ControlEvent::WorkloadSuspended { calls, not_covered, enforcement, decider, .. } => {
            let roles: std::collections::BTreeSet<&str> = calls.iter().map(|c| c.role_name()).collect();
            let mut what = format!(
                "suspended: Bedrock invocation denied to {} ({} IAM calls, {})",
                if roles.is_empty() { "no IAM role".to_owned() } else { list(roles) },
                calls.len(),
                how(enforcement)
            );
            if !not_covered.is_empty() {
                what.push_str(&format!("; not reachable by IAM: {}", not_covered.len()));
            }
            (what, decider.rationale.clone(), by(decider))
        }
        ControlEvent::WorkloadResumed { calls, enforcement, decider, .. } => (
            format!("resumed: the suspension's {} IAM changes removed ({})", calls.len(), how(enforcement)),
            decider.rationale.clone(),
            by(decider),
        ),
        ControlEvent::EnforcementAttempted { decision, attempt, outcomes, .. } => {
            let failed: Vec<&str> = outcomes.iter().filter(|o| !o.ok).map(|o| o.detail.as_str()).collect();
            let what = if failed.is_empty() {
                format!("decision {decision}, attempt {attempt}: every IAM call applied")
            } else {
                format!(
                    "decision {decision}, attempt {attempt}: {} of {} IAM calls failed: {}",
                    failed.len(),
                    outcomes.len(),
                    failed.join("; ")
                )
            };
            (what, String::new(), None)
        }
    }
}

/// A roll-up event in words.
fn rollup(e: &RollupEvent) -> Described {
    match e {
        RollupEvent::SpendRollupApproved { week, cards, total_cents, decider, .. } => (
            format!("roll-up of the week of {week} approved: {} cards, {}", cards.len(), dollars(*total_cents)),
            decider.rationale.clone(),
            Some((decider.by.clone(), decider.role.clone())),
        ),
        RollupEvent::SpendRollupReopened { workload_id, version, .. } => {
            (format!("reopened: workload {workload_id}'s card has version {version}"), String::new(), None)
        }
    }
}

/// A gateway mapping rule's event in words (its own history and its gaps' trails).
pub fn gateway_rule(e: &GatewayRuleEvent) -> (String, String) {
    match e {
        GatewayRuleEvent::GatewayRuleRecorded { spec, rationale, .. } => (
            format!(
                "recorded: {} of {} in {} charged to workload {} from {}",
                spec.matcher,
                spec.role_name,
                spec.account.as_str(),
                spec.workload_id,
                spec.effective_from
            ),
            rationale.clone(),
        ),
        GatewayRuleEvent::GatewayRuleRetired { effective_until, rationale, .. } => {
            (format!("retired after {effective_until}"), rationale.clone())
        }
    }
}
