//! The Allocation Gaps a question's classification holds, one per cause and anchor
//! (`finops_domain::gaps`), with their spend: read from `classified` — the one pass over
//! the lines a question already made — never from the lines again.

use std::collections::{BTreeMap, BTreeSet};

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{Date32Type, Float64Type, Int64Type};
use datafusion::arrow::util::display::array_value_to_string;
use finops_domain::gaps::{GapIdentity, GapKind, GapSpend, MAX_LISTED};
use uuid::Uuid;

use crate::{AttributionError, Question, cents, lines, raw_at};

/// A gap the classification found in the question's period.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundGap {
    /// What it is.
    pub identity: GapIdentity,
    /// Its spend in the period.
    pub spend: GapSpend,
}

#[derive(Default)]
struct Sums {
    raw: i128,
    tokens: f64,
    lines: u64,
    first: Option<chrono::NaiveDate>,
    last: Option<chrono::NaiveDate>,
    principals: BTreeSet<String>,
    models: BTreeSet<String>,
}

impl Question {
    /// Every gap in the period, ordered by kind and anchor. Per-line gaps come from the
    /// classification; Unbacked AI Workloads from [`Question::unbacked`].
    pub async fn gaps(&self) -> Result<Vec<FoundGap>, AttributionError> {
        let sql = "SELECT gap, account, principal_kind, principal_account, principal_name, anchor, \
                   COALESCE(workload_id, '') AS workload_id, region, model, \
                   MIN(day) AS first_day, MAX(day) AS last_day, SUM(cost) AS cost, SUM(tokens) AS tokens, \
                   CAST(SUM(lines) AS BIGINT) AS lines \
                   FROM classified WHERE gap IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9";
        let mut found: BTreeMap<(GapKind, String), (GapIdentity, Sums)> = BTreeMap::new();
        for batch in self.run(sql).await? {
            // Whatever string layout the engine chose (Utf8, Utf8View, a dictionary).
            let text = |i: usize, row: usize| {
                let column = batch.column(i);
                if column.is_null(row) { String::new() } else { array_value_to_string(column, row).unwrap_or_default() }
            };
            for row in 0..batch.num_rows() {
                let Ok(kind) = text(0, row).parse::<GapKind>() else { continue };
                let (account, principal_kind, principal_account, principal_name, anchor, workload, region, model) = (
                    text(1, row),
                    text(2, row),
                    text(3, row),
                    text(4, row),
                    text(5, row),
                    text(6, row),
                    text(7, row),
                    text(8, row),
                );
                let identity = self.identity(
                    kind,
                    &account,
                    &principal_kind,
                    &principal_account,
                    &principal_name,
                    &anchor,
                    &workload,
                    &region,
                    &model,
                );
                let day = |i: usize| {
                    let c = batch.column(i);
                    (!c.is_null(row)).then(|| c.as_primitive::<Date32Type>().value_as_date(row)).flatten()
                };
                let entry = found.entry((kind, identity.anchor.clone())).or_insert_with(|| (identity, Sums::default()));
                let sums = &mut entry.1;
                sums.raw += raw_at(batch.column(11).as_ref(), row);
                sums.tokens += batch.column(12).as_primitive::<Float64Type>().value(row);
                sums.lines += batch.column(13).as_primitive::<Int64Type>().value(row) as u64;
                let (first, last) = (day(9), day(10));
                sums.first = match (sums.first, first) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                sums.last = sums.last.max(last);
                if !principal_name.is_empty() {
                    sums.principals.insert(principal_name);
                }
                if !model.is_empty() {
                    sums.models.insert(model);
                }
            }
        }
        let batch = self.batch.hash.clone();
        let mut out: Vec<FoundGap> = found
            .into_values()
            .map(|(identity, s)| FoundGap {
                identity,
                spend: GapSpend {
                    batch: batch.clone(),
                    cents: cents(s.raw, lines::MONEY_SCALE),
                    tokens: s.tokens.max(0.0).round() as u64,
                    lines: s.lines,
                    first_day: s.first,
                    last_day: s.last,
                    principals: s.principals.into_iter().take(MAX_LISTED).collect(),
                    models: s.models.into_iter().take(MAX_LISTED).collect(),
                },
            })
            .collect();
        for w in self.unbacked().await? {
            let workload_id = Uuid::parse_str(&w.workload_id).ok();
            let account = workload_id
                .and_then(|id| self.view().workloads.iter().find(|v| v.workload_id == id))
                .and_then(|v| v.scope.accounts.iter().next().map(|a| a.as_str().to_owned()))
                .unwrap_or_default();
            out.push(FoundGap {
                identity: GapIdentity {
                    kind: GapKind::UnbackedAiWorkload,
                    anchor: format!("workload/{}", w.workload_id),
                    account,
                    workload_id,
                    principal: String::new(),
                    concerns: {
                        let workloads: Vec<_> = self
                            .view()
                            .workloads
                            .iter()
                            .map(|v| &**v)
                            .filter(|v| Some(v.workload_id) == workload_id)
                            .collect();
                        if workloads.is_empty() { vec![w.owner] } else { self.concerned(&workloads) }
                    },
                },
                spend: GapSpend {
                    batch: batch.clone(),
                    cents: w.spend_cents,
                    tokens: 0,
                    lines: 0,
                    first_day: None,
                    last_day: None,
                    principals: vec![],
                    models: vec![],
                },
            });
        }
        Ok(out)
    }

    /// The gap's cause and anchor for one classified group (see `GapIdentity::anchor`),
    /// and the Product Owner it concerns where the governance state names one.
    #[allow(clippy::too_many_arguments)]
    fn identity(
        &self,
        kind: GapKind,
        account: &str,
        principal_kind: &str,
        principal_account: &str,
        principal_name: &str,
        anchor: &str,
        workload: &str,
        region: &str,
        model: &str,
    ) -> GapIdentity {
        let workload_id = Uuid::parse_str(workload).ok();
        let role = || finops_domain::gaps::role_anchor(principal_account, principal_name);
        let anchor = match kind {
            GapKind::AttributionNotEnabled => format!("account/{account}"),
            GapKind::UnallocatedGuardrail => format!("guardrail/{anchor}"),
            GapKind::UnclaimedAiAllocation if !anchor.is_empty() => format!("workspace/{anchor}"),
            GapKind::UnattributedSpend | GapKind::UnclaimedAiAllocation => role(),
            GapKind::NotBusinessApproved => {
                finops_domain::gaps::principal_anchor(account, principal_kind, principal_name)
            }
            GapKind::OutOfApprovedScope => format!("scope/{workload}/{account}/{region}/{model}"),
            GapKind::UnbackedAiWorkload => format!("workload/{workload}"),
        };
        // The workload's owner; for an unclaimed generated role, the owner of the request
        // that generated it.
        let workloads: Vec<&finops_domain::governance_state::ApprovedWorkload> = match (kind, workload_id) {
            (_, Some(id)) => self.view().workloads.iter().map(|w| &**w).filter(|w| w.workload_id == id).collect(),
            (GapKind::UnclaimedAiAllocation, None) => self
                .view()
                .workloads
                .iter()
                .map(|w| &**w)
                .filter(|w| !principal_name.is_empty() && w.role_name == principal_name)
                .collect(),
            _ => vec![],
        };
        let concerns = self.concerned(&workloads);
        GapIdentity {
            kind,
            anchor,
            account: account.to_owned(),
            workload_id,
            principal: principal_name.to_owned(),
            concerns,
        }
    }

    /// The people a gap about `workloads` concerns: each workload's Product Owner and the
    /// owner of its product (usually the same person), in that order, once each.
    fn concerned(&self, workloads: &[&finops_domain::governance_state::ApprovedWorkload]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for w in workloads {
            let product_owner = self.view().organisation.products.get(&w.product_id).map(|p| p.owner.clone());
            for person in std::iter::once(w.owner.clone()).chain(product_owner) {
                if !out.contains(&person) {
                    out.push(person);
                }
            }
        }
        out
    }
}
