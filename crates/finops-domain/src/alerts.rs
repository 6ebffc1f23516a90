//! Threshold alerts (issue 13.6): a workload crossing 80 %, 90 % and 100 % of its monthly
//! estimate (month to date) is recorded once per threshold per month, and each crossing is
//! delivered as a signed webhook (Standard Webhooks) to every configured endpoint, with
//! every delivery attempt recorded. One aggregate per workload and month:
//! [`ThresholdAlerts`].
//!
//! A crossing's webhook id is derived from the workload, the month and the threshold, so
//! every retry — and any re-run of the process — carries the same id and receivers
//! deduplicate on it; the body is built from the recorded crossing alone, so a retry
//! sends the same bytes.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::error::DomainError;

/// The thresholds, percent of the monthly estimate.
pub const THRESHOLDS: [u32; 3] = [80, 90, 100];

/// The webhook event type.
pub const EVENT_TYPE: &str = "workload.estimate.threshold_crossed";

const NAMESPACE: Uuid = Uuid::from_u128(0x7e50_4a1e_5b0c_4d1e_8f2a_3b4c_5d6e_7f80);

/// The thresholds `month_to_date` has reached against `estimate` (none without one).
pub fn thresholds_reached(month_to_date_cents: i64, estimate_cents: i64) -> Vec<u32> {
    if estimate_cents <= 0 {
        return vec![];
    }
    // Exactly, in whole cents: 80 % means mtd × 100 ≥ 80 × estimate.
    THRESHOLDS
        .into_iter()
        .filter(|p| i128::from(month_to_date_cents) * 100 >= i128::from(*p) * i128::from(estimate_cents))
        .collect()
}

/// The alerts of `workload_id` for `period`.
pub fn alerts_id(workload_id: Uuid, period: &str) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("alerts/{workload_id}/{period}").as_bytes())
}

/// The webhook id of a crossing: the same on every attempt (`msg_` and 32 hex digits).
pub fn webhook_id(workload_id: Uuid, period: &str, threshold_percent: u32) -> String {
    let id = Uuid::new_v5(&NAMESPACE, format!("webhook/{workload_id}/{period}/{threshold_percent}").as_bytes());
    format!("msg_{}", id.simple())
}

/// A workload's month to date crossing a threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Crossing {
    /// The workload.
    pub workload_id: Uuid,
    /// Its name.
    pub workload: String,
    /// Its Product Owner.
    pub owner: String,
    /// The month (YYYY-MM).
    pub period: String,
    /// The threshold, percent.
    pub threshold_percent: u32,
    /// Month to date (cents).
    pub month_to_date_cents: i64,
    /// The monthly estimate (cents).
    pub estimate_cents: i64,
    /// The last day CUR covers.
    pub through: NaiveDate,
}

impl Crossing {
    /// The webhook body (Standard Webhooks' `{type, timestamp, data}`), from the crossing
    /// and when it was recorded: the same bytes on every attempt.
    pub fn webhook_body(&self, recorded_at: DateTime<Utc>) -> String {
        serde_json::json!({
            "type": EVENT_TYPE,
            "timestamp": recorded_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "data": {
                "workload_id": self.workload_id,
                "workload": self.workload,
                "owner": self.owner,
                "period": self.period,
                "threshold_percent": self.threshold_percent,
                "month_to_date_cents": self.month_to_date_cents,
                "estimate_cents": self.estimate_cents,
                "through": self.through,
            }
        })
        .to_string()
    }
}

/// What may be asked of a workload's month of alerts.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertCommand {
    /// The watcher saw the month to date at `crossing.threshold_percent` or above
    /// (idempotent: a threshold is crossed once per month).
    Cross {
        /// The crossing.
        crossing: Crossing,
        /// When.
        at: DateTime<Utc>,
    },
    /// The outbox tried to deliver a crossing's webhook to an endpoint.
    RecordDelivery {
        /// The webhook.
        webhook_id: String,
        /// The endpoint's URL.
        endpoint: String,
        /// The attempt's number (1-based): a retried record is recognised.
        attempt: u32,
        /// The endpoint answered 2xx.
        delivered: bool,
        /// The HTTP status or the error.
        detail: String,
        /// When.
        at: DateTime<Utc>,
    },
}

/// What a workload's month of alerts records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum AlertEvent {
    /// A threshold crossed.
    EstimateThresholdCrossed {
        /// The crossing.
        crossing: Crossing,
        /// Its webhook's id.
        webhook_id: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// A delivery attempt.
    WebhookDeliveryAttempted {
        /// The webhook.
        webhook_id: String,
        /// The endpoint's URL.
        endpoint: String,
        /// Its number.
        attempt: u32,
        /// Delivered (2xx).
        delivered: bool,
        /// The HTTP status or the error.
        detail: String,
        /// When.
        at: DateTime<Utc>,
    },
}

/// A workload's month of alerts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ThresholdAlerts {
    /// Each crossed threshold: the crossing, its webhook id and when it was recorded.
    pub crossed: BTreeMap<u32, (Crossing, String, DateTime<Utc>)>,
    /// Attempts per (webhook id, endpoint): their count and the last one's time.
    pub attempts: BTreeMap<(String, String), (u32, DateTime<Utc>)>,
    /// (webhook id, endpoint) delivered.
    pub delivered: BTreeSet<(String, String)>,
}

impl Aggregate for ThresholdAlerts {
    type Command = AlertCommand;
    type Event = AlertEvent;
    type Error = DomainError;

    fn decide(&self, command: &AlertCommand) -> Result<Vec<AlertEvent>, DomainError> {
        match command {
            AlertCommand::Cross { crossing, at } => {
                if self.crossed.contains_key(&crossing.threshold_percent) {
                    return Ok(vec![]);
                }
                if !THRESHOLDS.contains(&crossing.threshold_percent) {
                    return Err(DomainError::Precondition(format!(
                        "{} % is not an alert threshold ({THRESHOLDS:?})",
                        crossing.threshold_percent
                    )));
                }
                Ok(vec![AlertEvent::EstimateThresholdCrossed {
                    crossing: crossing.clone(),
                    webhook_id: webhook_id(crossing.workload_id, &crossing.period, crossing.threshold_percent),
                    at: *at,
                }])
            }
            AlertCommand::RecordDelivery { webhook_id, endpoint, attempt, delivered, detail, at } => {
                let key = (webhook_id.clone(), endpoint.clone());
                let done = self.attempts.get(&key).map_or(0, |(n, _)| *n);
                if self.delivered.contains(&key) || *attempt != done + 1 {
                    return Ok(vec![]);
                }
                if !self.crossed.values().any(|(_, id, _)| id == webhook_id) {
                    return Err(DomainError::Precondition(format!("{webhook_id} is not a crossing of this month")));
                }
                Ok(vec![AlertEvent::WebhookDeliveryAttempted {
                    webhook_id: webhook_id.clone(),
                    endpoint: endpoint.clone(),
                    attempt: *attempt,
                    delivered: *delivered,
                    detail: detail.clone(),
                    at: *at,
                }])
            }
        }
    }

    fn evolve(mut self, event: &AlertEvent) -> Self {
        match event {
            AlertEvent::EstimateThresholdCrossed { crossing, webhook_id, at } => {
                self.crossed.insert(crossing.threshold_percent, (crossing.clone(), webhook_id.clone(), *at));
            }
            AlertEvent::WebhookDeliveryAttempted { webhook_id, endpoint, attempt, delivered, at, .. } => {
                let key = (webhook_id.clone(), endpoint.clone());
                self.attempts.insert(key.clone(), (*attempt, *at));
                if *delivered {
                    self.delivered.insert(key);
                }
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::spec::given;

    fn crossing(threshold: u32) -> Crossing {
        Crossing {
            workload_id: Uuid::from_u128(5),
            workload: "Support Bot".into(),
            owner: "po-maria".into(),
            period: "2026-11".into(),
            threshold_percent: threshold,
            month_to_date_cents: 250_000,
            estimate_cents: 310_000,
            through: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
        }
    }

    fn at(h: u32) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2026-11-21T{h:02}:00:00Z")).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn thresholds_are_reached_to_the_cent() {
        assert_eq!(thresholds_reached(247_999, 310_000), Vec::<u32>::new());
        assert_eq!(thresholds_reached(248_000, 310_000), [80]);
        assert_eq!(thresholds_reached(310_000, 310_000), [80, 90, 100]);
        assert!(thresholds_reached(1_000_000, 0).is_empty(), "no estimate, nothing to cross");
    }

    #[test]
    fn a_threshold_is_crossed_once_a_month_and_each_attempt_recorded_once() {
        let crossed =
            given::<ThresholdAlerts>(&[]).when(AlertCommand::Cross { crossing: crossing(80), at: at(1) }).unwrap();
        let AlertEvent::EstimateThresholdCrossed { webhook_id: id, .. } = &crossed[0] else { panic!() };
        assert_eq!(*id, webhook_id(Uuid::from_u128(5), "2026-11", 80));
        assert!(id.starts_with("msg_") && id.len() == 36);
        let again = given::<ThresholdAlerts>(&crossed).when(AlertCommand::Cross { crossing: crossing(80), at: at(2) });
        assert!(again.unwrap().is_empty(), "the same threshold again: nothing");
        let attempt = |n: u32, delivered: bool| AlertCommand::RecordDelivery {
            webhook_id: id.clone(),
            endpoint: "https://hooks.example/finops".into(),
            attempt: n,
            delivered,
            detail: if delivered { "HTTP 200".into() } else { "HTTP 503".into() },
            at: at(3),
        };
        let failed = given::<ThresholdAlerts>(&crossed).when(attempt(1, false)).unwrap();
        let history: Vec<AlertEvent> = crossed.iter().chain(&failed).cloned().collect();
        assert!(given::<ThresholdAlerts>(&history).when(attempt(1, true)).unwrap().is_empty(), "attempt 1 is recorded");
        let ok = given::<ThresholdAlerts>(&history).when(attempt(2, true)).unwrap();
        let history: Vec<AlertEvent> = history.into_iter().chain(ok).collect();
        let state = ThresholdAlerts::fold(&history);
        assert!(state.delivered.contains(&(id.clone(), "https://hooks.example/finops".into())));
        assert!(given::<ThresholdAlerts>(&history).when(attempt(3, true)).unwrap().is_empty(), "delivered: no more");
        let stranger = AlertCommand::RecordDelivery {
            webhook_id: "msg_nope".into(),
            endpoint: "x".into(),
            attempt: 1,
            delivered: true,
            detail: String::new(),
            at: at(4),
        };
        assert!(given::<ThresholdAlerts>(&history).when(stranger).is_err());
    }

    #[test]
    fn the_body_is_the_same_bytes_on_every_attempt() {
        let c = crossing(90);
        let body = c.webhook_body(at(1));
        assert_eq!(body, c.webhook_body(at(1)));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["type"], EVENT_TYPE);
        assert_eq!(v["timestamp"], "2026-11-21T01:00:00Z");
        assert_eq!(v["data"]["threshold_percent"], 90);
    }
}
