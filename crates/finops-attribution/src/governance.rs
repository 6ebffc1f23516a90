//! The governance state as Arrow tables the classification joins with: approved workloads
//! (with product, portfolio and budget names), their approval scopes, every claim period,
//! the generated dedicated roles, and the configured role patterns.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use datafusion::arrow::array::{ArrayRef, BooleanArray, Date32Array, Int32Array, RecordBatch, StringArray};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::prelude::SessionContext;
use finops_cur::ai_facts::{TAG_KEY_VALUE, TAG_SEPARATOR};
use finops_domain::gateway_rules::SessionMatcher;
use finops_domain::governance_state::{ApprovedWorkload, BudgetSpan, ClaimSpan, GatewayRuleSpan, GovernanceState};
use finops_domain::org::Organisation;
use finops_domain::role::{permission_set_for, permission_set_of_reserved_role};
pub use finops_domain::role_patterns::RolePatterns;
use finops_domain::spaces::ClaimedResource;

/// What attribution needs of the governance state.
#[derive(Debug, Clone, Default)]
pub struct GovernanceView {
    /// Portfolios, products, accounts, budgets.
    pub organisation: Organisation,
    /// Approved workloads.
    pub workloads: Vec<ApprovedWorkload>,
    /// Every claim period.
    pub claims: Vec<ClaimSpan>,
    /// The role patterns the FinOps Lead recorded; `None`: the configured defaults.
    pub patterns: Option<RolePatterns>,
    /// Gateway mapping rules, in the order recorded.
    pub gateway_rules: Vec<GatewayRuleSpan>,
}

impl From<&GovernanceState> for GovernanceView {
    fn from(state: &GovernanceState) -> Self {
        Self {
            organisation: state.organisation.clone(),
            workloads: state.workloads(),
            claims: state.claim_spans(),
            patterns: state.role_patterns.patterns.clone(),
            gateway_rules: state.gateway_rule_spans(),
        }
    }
}

/// A glob as a SQL `LIKE` pattern with `\` as the escape character.
pub fn like_pattern(glob: &str) -> String {
    let mut out = String::with_capacity(glob.len() + 4);
    for c in glob.chars() {
        match c {
            '*' => out.push('%'),
            '?' => out.push('_'),
            '%' | '_' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// What the gateway rules take in one batch, read from its small facets and sessions
/// tables before classifying: the facets of each role a rule names, keyed by (account,
/// role name), and the sessions (numbered pairs of session name and principal tags) each
/// rule matches. The classification then tests integers only: a line's facet and its
/// session's number, never the text of a line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleFacets {
    /// Facet numbers per (account, role).
    pub facets: std::collections::BTreeMap<(String, String), Vec<i32>>,
    /// Session numbers per rule id.
    pub sessions: std::collections::BTreeMap<uuid::Uuid, Vec<i32>>,
}

impl RuleFacets {
    /// The SQL that reads the facets of the roles `rules` name (`None`: no rule).
    pub fn facets_query(rules: &[GatewayRuleSpan]) -> Option<String> {
        let mut roles: Vec<String> = rules.iter().map(|r| literal(&r.spec.role_name)).collect();
        roles.sort_unstable();
        roles.dedup();
        (!roles.is_empty()).then(|| {
            format!(
                "SELECT facet, principal_account, principal_name FROM facets \
                 WHERE principal_kind IN ('assumed_role', 'identity_center') AND principal_name IN ({}) ORDER BY facet",
                roles.join(", ")
            )
        })
    }

    /// The SQL that reads the sessions `rule` matches: a session-name glob, or a principal
    /// tag searched in the tags' one-text form (ai_facts `principal_tags`).
    pub fn sessions_query(rule: &GatewayRuleSpan) -> String {
        let matcher = match &rule.spec.matcher {
            SessionMatcher::SessionName { pattern } => {
                format!("session LIKE {} ESCAPE '\\'", literal(&like_pattern(pattern)))
            }
            SessionMatcher::PrincipalTag { key, value } => format!(
                "strpos(principal_tags, {}) > 0",
                literal(&format!("{TAG_SEPARATOR}{key}{TAG_KEY_VALUE}{value}{TAG_SEPARATOR}"))
            ),
        };
        format!("SELECT session_key FROM sessions WHERE {matcher} ORDER BY session_key")
    }
}

/// The gateway rules' part of classify.sql: the key the lines are summed by, its base, and
/// the expression numbering the rule that takes a summed row — the newest rule in force on
/// the row's day whose role is the row's (by facet) and whose sessions hold the row's
/// session — 0 for none (rule *n* is `view.gateway_rules[n - 1]`).
///
/// The lines are summed by `facet_day × base + session`, the session kept only when some
/// rule matches it (else 0): a line pays one hash lookup of its session number and no rule
/// test, and the rules are applied to the summed rows, which are few. Without rules (or
/// none that takes anything): `facet_day`, 1 and `0` — the plan before rules.
fn rule_sql(rules: &[GatewayRuleSpan], taken: &RuleFacets, period_start: NaiveDate) -> (String, i64, String) {
    let days = crate::lines::FACET_DAYS;
    let list = |numbers: &[i32]| numbers.iter().map(i32::to_string).collect::<Vec<_>>().join(", ");
    let mut arms = Vec::new();
    let mut all: Vec<i32> = Vec::new();
    for (index, rule) in rules.iter().enumerate().rev() {
        let spec = &rule.spec;
        let facets = taken.facets.get(&(spec.account.as_str().to_owned(), spec.role_name.clone()));
        let sessions = taken.sessions.get(&rule.rule_id);
        let (Some(facets), Some(sessions)) = (facets, sessions) else { continue };
        if sessions.is_empty() {
            continue;
        }
        // The rule's days within the period, as days of the month from 0.
        let offset = |d: NaiveDate| (d - period_start).num_days();
        let first = offset(spec.effective_from).max(0);
        let last = rule.until.map_or(i64::from(days - 1), offset).min(i64::from(days - 1));
        if first > last {
            continue;
        }
        arms.push(format!(
            "WHEN session_key IN ({}) AND CAST(facet_day / {days} AS INT) IN ({}) \
             AND facet_day % {days} BETWEEN {first} AND {last} THEN {}",
            list(sessions),
            list(facets),
            index + 1
        ));
        all.extend(sessions);
    }
    let Some(max) = all.iter().max() else { return ("facet_day".to_owned(), 1, "0".to_owned()) };
    let base = i64::from(*max) + 1;
    all.sort_unstable();
    all.dedup();
    let key =
        format!("CAST(facet_day AS BIGINT) * {base} + CAST(session_key IN ({}) AS BIGINT) * session_key", list(&all));
    (key, base, format!("CASE {} ELSE 0 END", arms.join(" ")))
}

/// The classification SQL of the period starting on `period_start`, with its role
/// predicates filled in: broad roles by pattern; dedicated roles by pattern or as generated
/// by an approval in `view`; and the gateway rules of `view` over their roles' `facets`.
pub fn classify_sql(
    view: &GovernanceView,
    patterns: &RolePatterns,
    period_start: NaiveDate,
    facets: &RuleFacets,
) -> String {
    let like = |globs: &[String]| {
        globs
            .iter()
            .map(|g| format!("principal_name LIKE {} ESCAPE '\\'", literal(&like_pattern(g))))
            .collect::<Vec<_>>()
    };
    let or = |terms: Vec<String>| if terms.is_empty() { "FALSE".to_owned() } else { terms.join(" OR ") };
    let (key, base, rule) = rule_sql(&view.gateway_rules, facets, period_start);
    crate::CLASSIFY_SQL
        .replace("{facet_key}", &key)
        .replace("{key_base}", &base.to_string())
        .replace("{sum_rule}", &rule)
        .replace("{is_broad}", &or(like(&patterns.broad)))
        .replace("{is_dedicated}", &or(like(&patterns.dedicated)))
        .replace("{year}", &period_start.year().to_string())
        .replace("{month}", &period_start.month().to_string())
        .replace("{facet_days}", &crate::lines::FACET_DAYS.to_string())
}

/// Who is asking, and so which workloads they may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    /// Finance, the FinOps Lead, auditors: everything, gaps included.
    Everything,
    /// A Product Owner: only spend charged to workloads they own.
    OwnWorkloads(String),
    /// A Portfolio Owner: only spend charged to workloads of portfolios they own.
    OwnPortfolios(String),
}

impl Visibility {
    /// Whether a workload is one this visibility shows.
    pub fn shows(&self, organisation: &Organisation, workload: &ApprovedWorkload) -> bool {
        match self {
            Self::Everything => true,
            Self::OwnWorkloads(owner) => &workload.owner == owner,
            Self::OwnPortfolios(owner) => {
                organisation.portfolios.get(&workload.portfolio_id).is_some_and(|p| &p.owner == owner)
            }
        }
    }
}

fn days(date: NaiveDate) -> i32 {
    date.num_days_from_ce() - 719_163
}

fn text(values: Vec<String>) -> ArrayRef {
    Arc::new(StringArray::from(values))
}

/// One table's batch.
fn batch(columns: Vec<(&str, DataType, bool, ArrayRef)>) -> RecordBatch {
    let schema = Arc::new(Schema::new(
        columns.iter().map(|(n, t, nullable, _)| Field::new(*n, t.clone(), *nullable)).collect::<Vec<_>>(),
    ));
    RecordBatch::try_new(schema, columns.into_iter().map(|c| c.3).collect())
        .expect("the columns of a governance table are built with one length and their declared types")
}

/// The governance tables of one view, built once and registered in every question judged
/// by that view (a server keeps them per state: `GovernanceTimeline`'s `StateKey`). At a
/// million events they take about half a second to build, ten times what classifying a
/// month's lines does; registering them is a few filtered copies at most.
///
/// Every table holds every workload; a question for a Product or Portfolio Owner registers
/// the workloads and their budgets filtered to what that asker may see.
#[derive(Debug)]
pub struct GovernanceTables {
    view: GovernanceView,
    /// `generated_roles`, `generated_sets`, `scope_accounts`, `scope_regions`, `claims` and
    /// `gateway_rules`: the same for every asker.
    shared: Vec<(&'static str, RecordBatch)>,
    /// `workloads`: row `i` is `view.workloads[i]`.
    workloads: RecordBatch,
    /// `workload_budgets`, and the workload (index into `view.workloads`) of each row.
    budgets: (RecordBatch, Vec<usize>),
}

impl From<GovernanceView> for Arc<GovernanceTables> {
    fn from(view: GovernanceView) -> Self {
        Arc::new(GovernanceTables::new(view))
    }
}

impl GovernanceTables {
    /// The tables of `view`.
    pub fn new(view: GovernanceView) -> Self {
        let org = &view.organisation;
        let all = &view.workloads;
        let id = |u: uuid::Uuid| u.to_string();
        // Every generated role is dedicated, whoever may see its workload (classify.sql).
        let generated: BTreeSet<&str> = all.iter().map(|w| w.role_name.as_str()).collect();
        let sets: BTreeSet<String> = generated.iter().map(|r| permission_set_for(r)).collect();
        let mut shared = vec![
            (
                "generated_roles",
                batch(vec![("name", DataType::Utf8, false, text(generated.iter().map(|r| (*r).to_owned()).collect()))]),
            ),
            ("generated_sets", batch(vec![("name", DataType::Utf8, false, text(sets.into_iter().collect()))])),
        ];
        let workloads = batch(vec![
            ("workload_id", DataType::Utf8, false, text(all.iter().map(|w| id(w.workload_id)).collect())),
            ("workload", DataType::Utf8, false, text(all.iter().map(|w| w.name.clone()).collect())),
            ("owner", DataType::Utf8, false, text(all.iter().map(|w| w.owner.clone()).collect())),
            ("product_id", DataType::Utf8, false, text(all.iter().map(|w| id(w.product_id)).collect())),
            (
                "product",
                DataType::Utf8,
                false,
                text(
                    all.iter()
                        .map(|w| org.products.get(&w.product_id).map(|p| p.name.clone()).unwrap_or_default())
                        .collect(),
                ),
            ),
            (
                "portfolio",
                DataType::Utf8,
                false,
                text(
                    all.iter()
                        .map(|w| org.portfolios.get(&w.portfolio_id).map(|p| p.name.clone()).unwrap_or_default())
                        .collect(),
                ),
            ),
            ("model_id", DataType::Utf8, false, text(all.iter().map(|w| w.model_id.clone()).collect())),
            (
                "business_case",
                DataType::Boolean,
                false,
                Arc::new(BooleanArray::from(all.iter().map(|w| w.business_case).collect::<Vec<_>>())),
            ),
            (
                "estimate",
                DataType::Boolean,
                false,
                Arc::new(BooleanArray::from(all.iter().map(|w| w.estimate).collect::<Vec<_>>())),
            ),
        ]);
        // The budget each workload charges, and on which days (a change recorded by the
        // FinOps Lead splits the period).
        let spans: Vec<(usize, &ApprovedWorkload, &BudgetSpan)> =
            all.iter().enumerate().flat_map(|(i, w)| w.budgets.iter().map(move |b| (i, w, b))).collect();
        let budgets = batch(vec![
            ("workload_id", DataType::Utf8, false, text(spans.iter().map(|(_, w, _)| id(w.workload_id)).collect())),
            ("budget_id", DataType::Utf8, false, text(spans.iter().map(|(_, _, b)| id(b.budget_id)).collect())),
            (
                "budget",
                DataType::Utf8,
                false,
                text(
                    spans
                        .iter()
                        .map(|(_, _, b)| org.budgets.get(&b.budget_id).map(|x| x.name.clone()).unwrap_or_default())
                        .collect(),
                ),
            ),
            (
                "from_day",
                DataType::Date32,
                true,
                Arc::new(Date32Array::from(spans.iter().map(|(_, _, b)| b.from.map(days)).collect::<Vec<_>>())),
            ),
            (
                "until_day",
                DataType::Date32,
                true,
                Arc::new(Date32Array::from(spans.iter().map(|(_, _, b)| b.until.map(days)).collect::<Vec<_>>())),
            ),
        ]);
        let budget_rows = spans.iter().map(|(i, _, _)| *i).collect();
        let pairs = |f: &dyn Fn(&ApprovedWorkload) -> Vec<String>| {
            let rows: Vec<(String, String)> =
                all.iter().flat_map(|w| f(w).into_iter().map(|v| (id(w.workload_id), v))).collect();
            let (ids, values): (Vec<_>, Vec<_>) = rows.into_iter().unzip();
            (text(ids), text(values))
        };
        let (ids, accounts) = pairs(&|w| w.scope.accounts.iter().map(|a| a.as_str().to_owned()).collect());
        shared.push((
            "scope_accounts",
            batch(vec![("workload_id", DataType::Utf8, false, ids), ("account", DataType::Utf8, false, accounts)]),
        ));
        let (ids, regions) = pairs(&|w| w.scope.regions.iter().map(|r| r.as_str().to_owned()).collect());
        shared.push((
            "scope_regions",
            batch(vec![("workload_id", DataType::Utf8, false, ids), ("region", DataType::Utf8, false, regions)]),
        ));
        // Every claim counts, whoever asks: a claim by someone else's workload still decides
        // that the spend is not this Product Owner's (the query then hides it). A role claim
        // holds assumed-role sessions by the role's name (`role`) and Identity Center sessions
        // by the permission set (`sso`): the generated role's set, the set of a claimed
        // `AWSReservedSSO_{set}_{hex}` role, or the claimed name itself.
        let rows: Vec<(&str, String, String, &ClaimSpan)> = view
            .claims
            .iter()
            .flat_map(|s| match &s.resource {
                ClaimedResource::IamRole { account, role_name } => {
                    let set = if generated.contains(role_name.as_str()) {
                        permission_set_for(role_name)
                    } else {
                        permission_set_of_reserved_role(role_name).unwrap_or(role_name).to_owned()
                    };
                    vec![
                        ("role", account.as_str().to_owned(), role_name.clone(), s),
                        ("sso", account.as_str().to_owned(), set, s),
                    ]
                }
                ClaimedResource::Guardrail { arn } => vec![("guardrail", String::new(), arn.clone(), s)],
                ClaimedResource::Workspace { name } => vec![("workspace", String::new(), name.clone(), s)],
            })
            .collect();
        let spans: Vec<&ClaimSpan> = rows.iter().map(|r| r.3).collect();
        let kinds: Vec<String> = rows.iter().map(|r| r.0.to_owned()).collect();
        let accounts: Vec<String> = rows.iter().map(|r| r.1.clone()).collect();
        let names: Vec<String> = rows.iter().map(|r| r.2.clone()).collect();
        shared.push((
            "claims",
            batch(vec![
                ("kind", DataType::Utf8, false, text(kinds)),
                ("account", DataType::Utf8, false, text(accounts)),
                ("name", DataType::Utf8, false, text(names)),
                ("workload_id", DataType::Utf8, false, text(spans.iter().map(|s| id(s.workload_id)).collect())),
                (
                    "from_day",
                    DataType::Date32,
                    false,
                    Arc::new(Date32Array::from(spans.iter().map(|s| days(s.from)).collect::<Vec<_>>())),
                ),
                (
                    "until_day",
                    DataType::Date32,
                    true,
                    Arc::new(Date32Array::from(spans.iter().map(|s| s.until.map(days)).collect::<Vec<_>>())),
                ),
            ]),
        ));
        // Every rule counts, whoever asks (as claims do).
        shared.push((
            "gateway_rules",
            batch(vec![
                (
                    "rule",
                    DataType::Int32,
                    false,
                    Arc::new(Int32Array::from((1..=view.gateway_rules.len() as i32).collect::<Vec<_>>())),
                ),
                ("rule_id", DataType::Utf8, false, text(view.gateway_rules.iter().map(|r| id(r.rule_id)).collect())),
                (
                    "workload_id",
                    DataType::Utf8,
                    false,
                    text(view.gateway_rules.iter().map(|r| id(r.spec.workload_id)).collect()),
                ),
            ]),
        ));
        Self { view, shared, workloads, budgets: (budgets, budget_rows) }
    }

    /// The view the tables were built from.
    pub fn view(&self) -> &GovernanceView {
        &self.view
    }

    /// Registers the tables in `ctx` as `visibility` may see them. The batches are shared
    /// with the question, not copied, except the owners' filtered workloads and budgets.
    pub fn register(&self, ctx: &SessionContext, visibility: &Visibility) -> Result<()> {
        let register = |name: &str, batch: RecordBatch| -> Result<()> {
            ctx.register_table(name, Arc::new(MemTable::try_new(batch.schema(), vec![vec![batch]])?))?;
            Ok(())
        };
        for (name, batch) in &self.shared {
            register(name, batch.clone())?;
        }
        let (budgets, rows) = &self.budgets;
        if *visibility == Visibility::Everything {
            register("workloads", self.workloads.clone())?;
            return register("workload_budgets", budgets.clone());
        }
        let shown: Vec<bool> =
            self.view.workloads.iter().map(|w| visibility.shows(&self.view.organisation, w)).collect();
        let by_row = |mask: BooleanArray, batch: &RecordBatch| filter_record_batch(batch, &mask);
        register("workloads", by_row(BooleanArray::from(shown.clone()), &self.workloads)?)?;
        register("workload_budgets", by_row(rows.iter().map(|i| Some(shown[*i])).collect(), budgets)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_become_escaped_like_patterns() {
        assert_eq!(like_pattern("AWSReservedSSO_*Admin*"), "AWSReservedSSO\\_%Admin%");
        assert_eq!(like_pattern("finops-ai-?x"), "finops-ai-_x");
        assert_eq!(like_pattern("100%\\"), "100\\%\\\\");
    }

    #[test]
    fn role_predicates_are_quoted_literals() {
        let patterns = RolePatterns { broad: vec!["it's*".into()], dedicated: vec![] };
        let september = NaiveDate::from_ymd_opt(2026, 9, 1).unwrap();
        let sql = classify_sql(&GovernanceView::default(), &patterns, september, &RuleFacets::default());
        assert!(sql.contains("make_date(2026, 9, "), "the period's year and month");
        assert!(sql.contains("facet_day % 32 + 1"), "facet_day decoded with the writer's constant");
        assert!(sql.contains("principal_name LIKE 'it''s%' ESCAPE '\\'"), "{sql}");
        assert!(
            sql.contains("AND ((FALSE) OR generated.name IS NOT NULL"),
            "no dedicated pattern: generated roles only"
        );
        assert!(!sql.contains("{is_"));
    }
}
