//! The investigations read model (issue 13.3): each investigation by id — its signal,
//! subject, evidence, status, owner, notes and linked gaps, and its whole trail.

use finops_domain::investigations::InvestigationEvent;
use finops_eventlog::RecordedEvent;
use serde_json::{Value, json};

use crate::projectors::decode;
use crate::{Document, Projector};

/// Investigations by id.
#[derive(Debug, Default, Clone, Copy)]
pub struct InvestigationsView;

impl InvestigationsView {
    /// The projection's name.
    pub const NAME: &'static str = "investigations";
    /// The investigation streams' prefix.
    pub const PREFIX: &'static str = "investigation-";
}

impl Projector for InvestigationsView {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn keys(&self, event: &RecordedEvent) -> Vec<String> {
        event.stream_id.as_str().strip_prefix(Self::PREFIX).map(|k| vec![k.to_owned()]).unwrap_or_default()
    }

    fn apply(&self, event: &RecordedEvent, key: &str, current: Option<Document>) -> Option<Document> {
        let Some(e) = decode::<InvestigationEvent>(event, Self::PREFIX) else { return current };
        let mut doc = current.map(Value::from).unwrap_or_else(|| {
            json!({ "investigation_id": key, "name": format!("investigations/{key}"), "notes": [], "gaps": [], "history": [] })
        });
        match &e {
            InvestigationEvent::InvestigationOpened { firing, at, .. } => {
                doc["signal"] = json!(firing.signal.as_str());
                doc["subject"] = json!(firing.subject);
                doc["account"] = json!(firing.account);
                doc["workload_id"] = json!(firing.workload_id.map(|w| w.to_string()).unwrap_or_default());
                doc["summary"] = json!(firing.summary);
                doc["evidence"] = json!(firing.evidence);
                doc["status"] = json!("open");
                doc["owner"] = json!("");
                doc["opened_at"] = json!(at);
            }
            InvestigationEvent::InvestigationAssigned { owner, .. } => {
                doc["owner"] = json!(owner);
                doc["status"] = json!("investigating");
            }
            InvestigationEvent::InvestigationNoted { note, decider } => {
                if let Some(notes) = doc["notes"].as_array_mut() {
                    notes.push(json!({ "note": note, "by": decider.by, "at": decider.at }));
                }
            }
            InvestigationEvent::InvestigationLinkedToGap { gap, .. } => {
                if let Some(gaps) = doc["gaps"].as_array_mut() {
                    gaps.push(json!(gap));
                }
            }
            InvestigationEvent::InvestigationClosed { decider } => {
                doc["status"] = json!("closed");
                doc["closed_at"] = json!(decider.at);
                doc["closed_by"] = json!(decider.by);
            }
        }
        doc["updated_at"] = json!(event.metadata.recorded_at);
        crate::cards::trail(&mut doc, event);
        Some(doc.into())
    }
}
