//! The schema version of every domain event, and the steps that lift an older stored
//! payload to the current shape. Stored events are never rewritten (the hash chain covers
//! their bytes); the log applies these steps on every read, so a decoder, a projector and
//! a client of the event stream all see the current shape.
//!
//! Version 2 (issue 10.11): money was stored under names that misread it. A monthly
//! amount in dollars was `{"dollars": 250000}` — in cents, so anyone reading the log saw
//! $250,000 for $2,500 — and a business case's `annual_cost_saving` gave no unit. From
//! version 2 a monthly amount is `{"cents": 250000}` and a business case names
//! `annual_cost_saving_cents` and `annual_revenue_driving_cents`.
//!
//! Version 2 of `TaskImplemented` (issue 14.6): the Cloud Engineer's closing note (a
//! ticket, the output that proves it works) — `"note": null` on events stored before.
//!
//! Pure JSON functions: the log's upcaster registry is built from [`UPCASTS`] by the
//! command-handling crate.

use serde_json::Value;

/// A step lifting a payload from one version to the next, or why it cannot.
pub type UpcastFn = fn(Value) -> Result<Value, String>;

/// Every event type whose current schema version is above 1, with that version.
pub const VERSIONS: &[(&str, u32)] = &[
    ("BusinessRequestSubmitted", 2),
    ("BusinessRequestResubmitted", 2),
    ("BusinessRequestApproved", 2),
    ("WorkloadEstimateSet", 2),
    ("BusinessCaseDeclared", 2),
    ("TaskImplemented", 2),
];

/// The steps: (event type, the version it lifts from, the step).
pub const UPCASTS: &[(&str, u32, UpcastFn)] = &[
    ("BusinessRequestSubmitted", 1, details_v1_to_v2),
    ("BusinessRequestResubmitted", 1, details_v1_to_v2),
    ("BusinessRequestApproved", 1, approved_v1_to_v2),
    ("WorkloadEstimateSet", 1, estimate_v1_to_v2),
    ("BusinessCaseDeclared", 1, business_case_declared_v1_to_v2),
    ("TaskImplemented", 1, task_implemented_v1_to_v2),
];

/// The schema version this build writes for `event_type` (1 when it never changed).
pub fn version_of(event_type: &str) -> u32 {
    VERSIONS.iter().find(|(t, _)| *t == event_type).map_or(1, |(_, v)| *v)
}

/// `{"dollars": n}` → `{"cents": n}`, in place; anything else (a token breakdown, an
/// absent amount) is left as it is.
fn monthly_amount(amount: Option<&mut Value>) -> Result<(), String> {
    let Some(Value::Object(map)) = amount else { return Ok(()) };
    if let Some(cents) = map.remove("dollars") {
        if !cents.is_u64() {
            return Err(format!("a monthly amount's `dollars` is not a whole number of cents: {cents}"));
        }
        map.insert("cents".to_owned(), cents);
    }
    Ok(())
}

/// `annual_cost_saving` → `annual_cost_saving_cents` (and revenue), in place.
fn business_case(case: Option<&mut Value>) {
    let Some(Value::Object(map)) = case else { return };
    for name in ["annual_cost_saving", "annual_revenue_driving"] {
        if let Some(value) = map.remove(name) {
            map.insert(format!("{name}_cents"), value);
        }
    }
}

fn details_v1_to_v2(mut payload: Value) -> Result<Value, String> {
    let details = payload.get_mut("details").ok_or("no `details`")?;
    monthly_amount(details.pointer_mut("/use_case/operations/monthly_budget"))?;
    business_case(details.get_mut("business_case"));
    Ok(payload)
}

fn approved_v1_to_v2(mut payload: Value) -> Result<Value, String> {
    monthly_amount(payload.pointer_mut("/review/confirmed_estimate"))?;
    Ok(payload)
}

fn estimate_v1_to_v2(mut payload: Value) -> Result<Value, String> {
    monthly_amount(payload.pointer_mut("/estimate/monthly"))?;
    Ok(payload)
}

fn business_case_declared_v1_to_v2(mut payload: Value) -> Result<Value, String> {
    business_case(payload.get_mut("case"));
    Ok(payload)
}

/// Version 1 had no closing note: it reads as none.
fn task_implemented_v1_to_v2(mut payload: Value) -> Result<Value, String> {
    let Value::Object(map) = &mut payload else { return Err("a TaskImplemented payload is not an object".into()) };
    map.entry("note").or_insert(Value::Null);
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::RequestEvent;
    use crate::workload::WorkloadEvent;
    use serde_json::json;

    fn lift(event_type: &str, payload: Value) -> Value {
        let (_, _, step) = UPCASTS.iter().find(|(t, from, _)| *t == event_type && *from == 1).unwrap();
        step(payload).unwrap()
    }

    /// A version-1 submission, exactly as the earlier build stored it, reads as $2,500.00
    /// and an annual saving of $120,000.00 — and re-serialises under the new names.
    #[test]
    fn a_version_1_submission_reads_as_the_same_money_under_honest_names() {
        let stored = json!({
            "type": "BusinessRequestSubmitted",
            "request_id": "0192f0c4-0000-7000-8000-000000000001",
            "product_id": "0192f0c4-1111-7000-8000-000000000001",
            "requested_by": "po-maria",
            "details": {
                "workload_name": "Support Bot",
                "use_case": {"operations": {"workload_type": "customer_support", "description": "Tier 1",
                    "availability": "standard", "monthly_budget": {"dollars": 250000}}},
                "priority": false, "start": null, "end": null, "monthly_growth_percent": null,
                "business_case": {"annual_cost_saving": 12000000, "annual_revenue_driving": null}
            },
            "at": "2026-11-02T09:00:00Z"
        });
        let current = lift("BusinessRequestSubmitted", stored);
        assert_eq!(current["details"]["use_case"]["operations"]["monthly_budget"], json!({"cents": 250000}));
        assert_eq!(current["details"]["business_case"]["annual_cost_saving_cents"], json!(12000000));
        let event: RequestEvent = serde_json::from_value(current.clone()).unwrap();
        let RequestEvent::BusinessRequestSubmitted { details, .. } = &event else { panic!() };
        let crate::request::UseCase::Operations { monthly_budget, .. } = &details.use_case else { panic!() };
        assert_eq!(*monthly_budget, crate::vocabulary::MonthlyAmount::Dollars(crate::vocabulary::Cents(250_000)));
        assert_eq!(serde_json::to_value(&event).unwrap(), current, "new events are written in the v2 shape");
    }

    /// A version-1 `TaskImplemented`, as the earlier build stored it, reads with no note and
    /// re-serialises in the version-2 shape.
    #[test]
    fn a_version_1_implementation_reads_with_no_note() {
        let stored = json!({"type": "TaskImplemented", "by": "ce-li", "at": "2026-11-03T09:00:00Z"});
        let current = lift("TaskImplemented", stored);
        assert_eq!(current["note"], Value::Null);
        let event: crate::tasks::TaskEvent = serde_json::from_value(current.clone()).unwrap();
        assert!(matches!(&event, crate::tasks::TaskEvent::TaskImplemented { note: None, .. }));
        assert_eq!(serde_json::to_value(&event).unwrap(), current);
        assert_eq!(version_of("TaskImplemented"), 2);
        assert!(lift_err("TaskImplemented", json!("not an object")).contains("not an object"));
    }

    fn lift_err(event_type: &str, payload: Value) -> String {
        let (_, _, step) = UPCASTS.iter().find(|(t, from, _)| *t == event_type && *from == 1).unwrap();
        step(payload).unwrap_err()
    }

    #[test]
    fn every_money_carrying_event_is_lifted() {
        let approved = lift("BusinessRequestApproved", json!({"review": {"confirmed_estimate": {"dollars": 310000}}}));
        assert_eq!(approved["review"]["confirmed_estimate"], json!({"cents": 310000}));
        let tokens = lift(
            "WorkloadEstimateSet",
            json!({"type": "WorkloadEstimateSet", "estimate": {"monthly": {"tokens": {"input": 1, "output": 2, "cache_read": 0, "cache_write": 0}},
                "start": null, "end": null, "monthly_growth_percent": null}, "by": "po", "at": "2026-11-02T09:00:00Z"}),
        );
        assert!(serde_json::from_value::<WorkloadEvent>(tokens).is_ok(), "token amounts are untouched");
        let declared = lift(
            "BusinessCaseDeclared",
            json!({"type": "BusinessCaseDeclared", "case": {"annual_cost_saving": null, "annual_revenue_driving": 5}, "by": "po", "at": "2026-11-02T09:00:00Z"}),
        );
        let WorkloadEvent::BusinessCaseDeclared { case, .. } = serde_json::from_value(declared).unwrap() else {
            panic!()
        };
        assert_eq!(case.annual_revenue_driving, Some(crate::vocabulary::Cents(5)));
    }

    #[test]
    fn a_malformed_amount_is_named_not_guessed() {
        let (_, _, step) = UPCASTS.iter().find(|(t, _, _)| *t == "BusinessRequestApproved").unwrap();
        let err = step(json!({"review": {"confirmed_estimate": {"dollars": 1.5}}})).unwrap_err();
        assert!(err.contains("not a whole number of cents"), "{err}");
        assert_eq!(version_of("BusinessRequestApproved"), 2);
        assert_eq!(version_of("TaskCreated"), 1);
    }
}
