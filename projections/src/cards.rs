//! The Weekly Spend Card read models (issue 12): cards by id with every version and the
//! sign-off of the current one, and portfolio roll-ups by id — the approved ones are the
//! chargeback-ready record Finance reads.

use finops_domain::spend_cards::{CardEvent, DisputeOutcome, RollupEvent};
use finops_eventlog::RecordedEvent;
use serde_json::{Value, json};

use crate::projectors::decode;
use crate::{Document, Projector};

/// Spend cards by id.
#[derive(Debug, Default, Clone, Copy)]
pub struct SpendCardsView;

impl SpendCardsView {
    /// The projection's name.
    pub const NAME: &'static str = "spend_cards";
    /// The card streams' prefix.
    pub const PREFIX: &'static str = "spend-card-";
}

pub(crate) fn trail(doc: &mut Value, event: &RecordedEvent) {
    let entry = crate::history::entry(event);
    if let Some(history) = doc["history"].as_array_mut() {
        history.push(json!({
            "at": entry.at, "event": entry.event, "who": entry.who, "role": entry.role,
            "what": entry.what, "why": entry.why, "event_id": entry.event_id,
        }));
    }
}

impl Projector for SpendCardsView {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn keys(&self, event: &RecordedEvent) -> Vec<String> {
        event.stream_id.as_str().strip_prefix(Self::PREFIX).map(|k| vec![k.to_owned()]).unwrap_or_default()
    }

    fn apply(&self, event: &RecordedEvent, key: &str, current: Option<Document>) -> Option<Document> {
        let Some(e) = decode::<CardEvent>(event, Self::PREFIX) else { return current };
        let mut doc = current.map(Value::from).unwrap_or_else(
            || json!({ "card_id": key, "name": format!("spendCards/{key}"), "versions": [], "history": [] }),
        );
        match &e {
            CardEvent::SpendCardIssued { version, figures, batches, reason, at, .. } => {
                doc["workload_id"] = json!(figures.workload_id);
                doc["portfolio_id"] = json!(figures.portfolio_id);
                doc["week"] = json!(figures.week);
                doc["version"] = json!(version);
                doc["status"] = json!("issued");
                doc["lines"] = json!(figures.lines);
                doc["actual_cents"] = json!(figures.actual_cents());
                doc["estimate_cents"] = json!(figures.estimate_cents);
                doc["variance_cents"] = json!(figures.variance_cents());
                doc["variance_basis_points"] = json!(figures.variance_basis_points());
                doc["variance_flagged"] = json!(figures.variance_flagged());
                doc["threshold_percent"] = json!(figures.threshold_percent);
                doc["forecast"] = json!(figures.forecast);
                doc["flagged_lines"] = json!(figures.flagged_lines());
                doc["charged_cents"] = json!(figures.actual_cents());
                doc["disputed_lines"] = json!([]);
                doc["outcome"] = Value::Null;
                if let Some(versions) = doc["versions"].as_array_mut() {
                    versions.push(json!({
                        "version": version, "at": at, "reason": reason, "batches": batches,
                        "actual_cents": figures.actual_cents(), "estimate_cents": figures.estimate_cents,
                        "lines": figures.lines,
                    }));
                }
            }
            CardEvent::SpendCardAccepted { .. } => doc["status"] = json!("accepted"),
            CardEvent::SpendCardDisputed { lines, .. } => {
                doc["status"] = json!("disputed");
                doc["disputed_lines"] = json!(lines);
            }
            CardEvent::SpendCardDisputeResolved { outcome, .. } => {
                doc["status"] = json!("resolved");
                doc["outcome"] = json!(outcome);
                if let DisputeOutcome::Adjusted { cents } = outcome {
                    doc["charged_cents"] = json!(cents);
                }
            }
        }
        doc["updated_at"] = json!(event.metadata.recorded_at);
        trail(&mut doc, event);
        Some(doc.into())
    }
}

/// Portfolio roll-ups by id.
#[derive(Debug, Default, Clone, Copy)]
pub struct SpendRollupsView;

impl SpendRollupsView {
    /// The projection's name.
    pub const NAME: &'static str = "spend_rollups";
    /// The roll-up streams' prefix.
    pub const PREFIX: &'static str = "spend-rollup-";
}

impl Projector for SpendRollupsView {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn keys(&self, event: &RecordedEvent) -> Vec<String> {
        event.stream_id.as_str().strip_prefix(Self::PREFIX).map(|k| vec![k.to_owned()]).unwrap_or_default()
    }

    fn apply(&self, event: &RecordedEvent, key: &str, current: Option<Document>) -> Option<Document> {
        let Some(e) = decode::<RollupEvent>(event, Self::PREFIX) else { return current };
        let mut doc = current
            .map(Value::from)
            .unwrap_or_else(|| json!({ "rollup_id": key, "name": format!("spendRollups/{key}"), "history": [] }));
        match &e {
            RollupEvent::SpendRollupApproved { portfolio_id, week, cards, total_cents, decider, .. } => {
                doc["portfolio_id"] = json!(portfolio_id);
                doc["week"] = json!(week);
                doc["status"] = json!("approved");
                doc["cards"] = json!(cards);
                doc["total_cents"] = json!(total_cents);
                doc["approved_by"] = json!(decider.by);
                doc["approved_at"] = json!(decider.at);
            }
            RollupEvent::SpendRollupReopened { .. } => doc["status"] = json!("reopened"),
        }
        doc["updated_at"] = json!(event.metadata.recorded_at);
        trail(&mut doc, event);
        Some(doc.into())
    }
}
