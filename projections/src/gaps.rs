//! The gap lifecycle read model and the notification outbox (issue 11).

use finops_domain::gaps::{Decider, GapEvent};
use finops_eventlog::RecordedEvent;
use serde_json::{Value, json};

use crate::projectors::decode;
use crate::{Document, Projector};

/// Allocation Gaps by id: cause, anchor, state, spend per period and the whole trail
/// (who, role, when, why of every event).
#[derive(Debug, Default, Clone, Copy)]
pub struct GapLifecycle;

impl GapLifecycle {
    /// The projection's name.
    pub const NAME: &'static str = "gap_lifecycle";
    /// The gap streams' prefix.
    pub const PREFIX: &'static str = "allocation-gap-";
}

impl Projector for GapLifecycle {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn keys(&self, event: &RecordedEvent) -> Vec<String> {
        event.stream_id.as_str().strip_prefix(Self::PREFIX).map(|k| vec![k.to_owned()]).unwrap_or_default()
    }

    fn apply(&self, event: &RecordedEvent, key: &str, current: Option<Document>) -> Option<Document> {
        let Some(e) = decode::<GapEvent>(event, Self::PREFIX) else { return current };
        Some(gap_document(&e, event, key, current.map(Value::from)).into())
    }
}

/// The gap's document after `e` (the same fold answers `as_of` reads from the log).
pub fn gap_document(e: &GapEvent, event: &RecordedEvent, key: &str, current: Option<Value>) -> Value {
    let mut doc = current.unwrap_or_else(
        || json!({ "gap_id": key, "name": format!("gaps/{key}"), "spend": {}, "history": [], "recalled": false }),
    );
    doc["version"] = json!(event.stream_version);
    doc["updated_at"] = json!(event.metadata.recorded_at);
    match e {
        GapEvent::GapDetected { identity, .. } => {
            doc["kind"] = json!(identity.kind);
            doc["scenario"] = json!(identity.kind.scenario());
            doc["actions"] = json!(identity.kind.actions());
            doc["anchor"] = json!(identity.anchor);
            doc["account"] = json!(identity.account);
            doc["workload_id"] = json!(identity.workload_id);
            doc["principal"] = json!(identity.principal);
            doc["concerns"] = json!(identity.concerns);
            doc["status"] = json!("active");
            doc["detected_at"] = json!(event.metadata.recorded_at);
        }
        GapEvent::GapSpendObserved { period, spend, .. } => match spend {
            Some(s) => doc["spend"][period] = json!(s),
            None => {
                if let Some(map) = doc["spend"].as_object_mut() {
                    map.remove(period);
                }
            }
        },
        GapEvent::GapCauseCleared { cleared_by, .. } => {
            doc["status"] = json!("resolved");
            doc["recalled"] = json!(false);
            doc["resolved_by"] =
                json!({ "automatic": true, "event_id": cleared_by.event_id, "event_type": cleared_by.event_type });
        }
        GapEvent::GapReopened { .. } => {
            doc["status"] = json!("active");
            doc["recalled"] = json!(false);
            doc["resolved_by"] = Value::Null;
        }
        GapEvent::GapActioned { action, outcome, decider } => {
            doc["status"] = json!("actioned");
            doc["recalled"] = json!(false);
            doc["last_action"] = json!({ "action": action, "outcome": outcome, "by": decider.by, "at": decider.at });
        }
        GapEvent::GapResolved { decider } => {
            doc["status"] = json!("resolved");
            doc["recalled"] = json!(false);
            doc["resolved_by"] = json!({ "automatic": false, "by": decider.by, "at": decider.at });
        }
        GapEvent::GapRecalled { recalled, restored, .. } => {
            doc["status"] = json!(restored);
            doc["recalled"] = json!(true);
            if recalled == "resolved" {
                doc["resolved_by"] = Value::Null;
            }
        }
        GapEvent::GapGatewayRuleChanged { .. } => {}
    }
    let total: i64 = doc["spend"].as_object().map_or(0, |m| m.values().filter_map(|s| s["cents"].as_i64()).sum());
    doc["total_cents"] = json!(total);
    let (what, why) = describe(e);
    let (who, role) = match decider(e) {
        Some(d) => (d.by.clone(), d.role.clone()),
        None => (event.metadata.actor_id.clone(), event.metadata.actor_role.clone()),
    };
    if let Some(history) = doc["history"].as_array_mut() {
        history.push(json!({
            "at": event.metadata.recorded_at,
            "event": event.event_type,
            "event_id": event.event_id,
            "who": who,
            "role": role,
            "what": what,
            "why": why,
            "correlation_id": event.metadata.correlation_id,
        }));
    }
    doc
}

/// The person behind a gap event that carries a decision (a process may record it on their
/// behalf): the trail names them, not the recorder.
pub fn decider(e: &GapEvent) -> Option<&Decider> {
    match e {
        GapEvent::GapActioned { decider, .. }
        | GapEvent::GapResolved { decider }
        | GapEvent::GapRecalled { decider, .. }
        | GapEvent::GapGatewayRuleChanged { decider, .. } => Some(decider),
        _ => None,
    }
}

/// What a gap event says in the trail, and why.
pub fn describe(e: &GapEvent) -> (String, String) {
    match e {
        GapEvent::GapDetected { period, cause, .. } => {
            (format!("detected in {period}"), format!("found after {} in {}", cause.event_type, cause.stream))
        }
        GapEvent::GapSpendObserved { period, spend, .. } => {
            let what = match spend {
                Some(s) => format!("spend in {period}: {} cents, {} lines", s.cents, s.lines),
                None => format!("no spend in {period} any more"),
            };
            (what, String::new())
        }
        GapEvent::GapCauseCleared { period, cleared_by, .. } => (
            format!("cause cleared in {period}"),
            format!("gone after {} in {}", cleared_by.event_type, cleared_by.stream),
        ),
        GapEvent::GapReopened { period, cause, .. } => (
            format!("reopened: present again in {period}"),
            format!("found after {} in {}", cause.event_type, cause.stream),
        ),
        GapEvent::GapActioned { action, decider, .. } => {
            (format!("actioned: {}", action.as_str()), decider.rationale.clone())
        }
        GapEvent::GapResolved { decider } => ("resolved by decision".to_owned(), decider.rationale.clone()),
        GapEvent::GapRecalled { recalled, recalled_at, restored, decider } => (
            format!("recalled the decision `{recalled}` of {recalled_at}; back to {}", restored.as_str()),
            decider.rationale.clone(),
        ),
        GapEvent::GapGatewayRuleChanged { rule, change, summary, decider } => {
            (format!("gateway rule {rule} {}: {summary}", change.as_str()), decider.rationale.clone())
        }
    }
}

/// Notifications to people (Notify PO, Request Business Case), by the id of the event that
/// sent them: addressed, with the gap they are about, shown in the addressee's views.
#[derive(Debug, Default, Clone, Copy)]
pub struct NotificationOutbox;

impl NotificationOutbox {
    /// The projection's name.
    pub const NAME: &'static str = "notification_outbox";
}

impl Projector for NotificationOutbox {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn keys(&self, event: &RecordedEvent) -> Vec<String> {
        let sends = event.event_type == "GapActioned"
            && event.stream_id.as_str().starts_with(GapLifecycle::PREFIX)
            && event.payload["outcome"]["notification"].is_object();
        if sends { vec![event.event_id.to_string()] } else { vec![] }
    }

    fn apply(&self, event: &RecordedEvent, key: &str, current: Option<Document>) -> Option<Document> {
        let Some(GapEvent::GapActioned { action, outcome, decider }) = decode::<GapEvent>(event, GapLifecycle::PREFIX)
        else {
            return current;
        };
        let notification = outcome.notification?;
        let gap = event.stream_id.as_str().strip_prefix(GapLifecycle::PREFIX).unwrap_or_default();
        Some(
            json!({
                "notification_id": key,
                "to": notification.to,
                "subject": notification.subject,
                "body": notification.body,
                "due": notification.due,
                "gap": format!("gaps/{gap}"),
                "action": action,
                "sent_by": decider.by,
                "sent_at": decider.at,
            })
            .into(),
        )
    }
}
