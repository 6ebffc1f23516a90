//! The governance state as Arrow tables the classification joins with: approved workloads
//! (with product, portfolio and budget names), their approval scopes, every claim period,
//! the generated dedicated roles, and the configured role patterns.

use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Int32Array, RecordBatch, StringArray, StringBuilder, UInt32Array,
};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::prelude::SessionContext;
use finops_cur::ai_facts::{TAG_KEY_VALUE, TAG_SEPARATOR};
use finops_domain::gateway_rules::SessionMatcher;
use finops_domain::governance_state::{ApprovedWorkload, ClaimSpan, GatewayRuleSpan, GovernanceState};
use finops_domain::org::Organisation;
use finops_domain::role::{permission_set_for, permission_set_of_reserved_role};
pub use finops_domain::role_patterns::RolePatterns;
use finops_domain::spaces::ClaimedResource;

mod amend;
pub mod reached;

/// What attribution needs of the governance state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GovernanceView {
    /// Portfolios, products, accounts, budgets.
    pub organisation: Organisation,
    /// Approved workloads, in workload-id order (shared: a view amended from another's
    /// shares every workload that did not change).
    pub workloads: Vec<Arc<ApprovedWorkload>>,
    /// Every claim period, in resource-key order (shared as the workloads are).
    pub claims: Vec<Arc<ClaimSpan>>,
    /// The role patterns the FinOps Lead recorded; `None`: the configured defaults.
    pub patterns: Option<RolePatterns>,
    /// Gateway mapping rules, in the order recorded.
    pub gateway_rules: Vec<GatewayRuleSpan>,
}

impl From<&GovernanceState> for GovernanceView {
    fn from(state: &GovernanceState) -> Self {
        Self {
            organisation: state.organisation.clone(),
            workloads: state.workloads_in_order().map(Arc::new).collect(),
            claims: state.claim_spans().into_iter().map(Arc::new).collect(),
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
/// by an approval (`generated_roles`); and the gateway `rules` over their roles' `facets`.
pub fn classify_sql(
    rules: &[GatewayRuleSpan],
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
    let (key, base, rule) = rule_sql(rules, facets, period_start);
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

/// A text column, copied once from borrowed text (no `String` per value).
fn text<S: AsRef<str>>(values: impl IntoIterator<Item = S>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

/// A text column of ids in their hyphenated lower-case form, written straight into the
/// column's buffer.
fn ids(values: impl ExactSizeIterator<Item = uuid::Uuid>) -> ArrayRef {
    let mut column = StringBuilder::with_capacity(values.len(), values.len() * uuid::fmt::Hyphenated::LENGTH);
    let mut buffer = uuid::Uuid::encode_buffer();
    for id in values {
        column.append_value(id.hyphenated().encode_lower(&mut buffer));
    }
    Arc::new(column.finish())
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
/// the workloads and their budgets filtered to what that asker may see. The classification
/// and the grouping register only the rows their batch can meet ([`Self::register_reached`],
/// [`Self::register_charged`]): a month's lines name a few thousand principals at most, the
/// tables hold every workload ever approved, and joining with all of them made a question
/// on a long log cost 1.4 × the same question on an empty one.
#[derive(Debug, PartialEq)]
pub struct GovernanceTables {
    view: GovernanceView,
    /// `generated_roles`, `generated_sets`, `scope_accounts`, `scope_regions`, `claims` and
    /// `gateway_rules`: the same for every asker.
    shared: Vec<(&'static str, RecordBatch)>,
    /// `workloads`: row `i` is `view.workloads[i]`.
    workloads: RecordBatch,
    /// `workload_budgets` (each workload's rows: [`Reach::rows_of`]).
    budgets: RecordBatch,
    /// Which rows a name or a workload reaches.
    reach: Reach,
}

/// Which rows of the tables a name or a workload reaches: the rows of each table sorted by
/// the column a batch meets it by (binary searched, no copy of the text), and each
/// workload's rows of the tables built from it (contiguous: they are built workload by
/// workload).
#[derive(Debug, PartialEq)]
struct Reach {
    /// `generated_roles`, `generated_sets` and `claims` rows in order of their name.
    by_name: [Vec<u32>; 3],
    /// `workloads` rows in order of their id.
    workloads_by_id: Vec<u32>,
    /// Each `claims` row's workload, and each `gateway_rules` row's (`None`: not approved).
    claim_workloads: Vec<Option<u32>>,
    rule_workloads: Vec<Option<u32>>,
    /// Per workload, its rows of `scope_accounts`, `scope_regions` and `workload_budgets`.
    rows_of: Vec<[std::ops::Range<u32>; 3]>,
    /// Per claim span, the `claims` row its rows start at, then the table's length.
    span_rows: Vec<u32>,
}

/// The tables a classification joins with, as [`GovernanceTables::register_reached`] (and
/// [`reached::register_reached`]) register them for a batch.
pub const REACHED: [&str; 7] =
    ["generated_roles", "generated_sets", "claims", "gateway_rules", "scope_accounts", "scope_regions", "workloads"];

/// The shared tables a batch's names are looked up in, in [`Reach::by_name`]'s order.
const NAMED: [&str; 3] = ["generated_roles", "generated_sets", "claims"];

/// Rows of `column` in the order of their text.
fn sorted_rows(column: &StringArray) -> Vec<u32> {
    let mut rows: Vec<u32> = (0..column.len() as u32).collect();
    rows.sort_by(|a, b| column.value(*a as usize).cmp(column.value(*b as usize)));
    rows
}

/// The rows (of `order`, sorted by `column`'s text) whose text is `name`.
fn rows_named<'a>(order: &'a [u32], column: &StringArray, name: &str) -> &'a [u32] {
    let start = order.partition_point(|r| column.value(*r as usize) < name);
    let end = start + order[start..].partition_point(|r| column.value(*r as usize) == name);
    &order[start..end]
}

/// A table's text column.
fn column<'a>(batch: &'a RecordBatch, name: &str) -> &'a StringArray {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .expect("the governance tables' text columns are Utf8")
}

/// The tables with a row per workload or per item of one (built workload by workload, so
/// each workload's rows of a table are contiguous, in the workloads' order).
struct WorkloadRows {
    workloads: RecordBatch,
    /// `workload_budgets`: the budget each workload charges, and on which days (a change
    /// recorded by the FinOps Lead splits the period).
    budgets: RecordBatch,
    /// `scope_accounts` and `scope_regions`: each workload's approval scope.
    accounts: RecordBatch,
    regions: RecordBatch,
}

impl WorkloadRows {
    /// One pass over the workloads, each column written as it goes: 80 000 workloads at a
    /// million events, each behind its own pointer, so a pass per column cost a pass of
    /// cache misses per column.
    fn new(org: &Organisation, all: &[&ApprovedWorkload]) -> Self {
        let mut workload = Columns::<7>::new(all.len());
        let mut flags = [Vec::with_capacity(all.len()), Vec::with_capacity(all.len())];
        let mut budget = Columns::<3>::new(all.len());
        let mut days = [Vec::with_capacity(all.len()), Vec::with_capacity(all.len())];
        let (mut accounts, mut regions) = (Columns::<2>::new(all.len()), Columns::<2>::new(all.len()));
        let mut encoded = [uuid::Uuid::encode_buffer(); 3];
        let [id_text, product_text, budget_text] = &mut encoded;
        for w in all {
            let id = &*w.workload_id.hyphenated().encode_lower(id_text);
            let product_id = &*w.product_id.hyphenated().encode_lower(product_text);
            let product = org.products.get(&w.product_id).map_or("", |p| p.name.as_str());
            let portfolio = org.portfolios.get(&w.portfolio_id).map_or("", |p| p.name.as_str());
            workload.append([id, &w.name, &w.owner, product_id, product, portfolio, &w.model_id]);
            flags[0].push(w.business_case);
            flags[1].push(w.estimate);
            for b in &w.budgets {
                let name = org.budgets.get(&b.budget_id).map_or("", |x| x.name.as_str());
                budget.append([id, b.budget_id.hyphenated().encode_lower(budget_text), name]);
                days[0].push(b.from.map(self::days));
                days[1].push(b.until.map(self::days));
            }
            for a in &w.scope.accounts {
                accounts.append([id, a.as_str()]);
            }
            for r in &w.scope.regions {
                regions.append([id, r.as_str()]);
            }
        }
        let [workload_id, name, owner, product_id, product, portfolio, model_id] = workload.finish();
        let [business_case, estimate] = flags.map(|f| Arc::new(BooleanArray::from(f)) as ArrayRef);
        let workloads = batch(vec![
            ("workload_id", DataType::Utf8, false, workload_id),
            ("workload", DataType::Utf8, false, name),
            ("owner", DataType::Utf8, false, owner),
            ("product_id", DataType::Utf8, false, product_id),
            ("product", DataType::Utf8, false, product),
            ("portfolio", DataType::Utf8, false, portfolio),
            ("model_id", DataType::Utf8, false, model_id),
            ("business_case", DataType::Boolean, false, business_case),
            ("estimate", DataType::Boolean, false, estimate),
        ]);
        let [workload_id, budget_id, budget_name] = budget.finish();
        let [from_day, until_day] = days.map(|d| Arc::new(Date32Array::from(d)) as ArrayRef);
        let budgets = batch(vec![
            ("workload_id", DataType::Utf8, false, workload_id),
            ("budget_id", DataType::Utf8, false, budget_id),
            ("budget", DataType::Utf8, false, budget_name),
            ("from_day", DataType::Date32, true, from_day),
            ("until_day", DataType::Date32, true, until_day),
        ]);
        // Each workload's id beside each of its scope's accounts (regions).
        let pairs = |columns: Columns<2>, name: &str| {
            let [workload_id, value] = columns.finish();
            batch(vec![("workload_id", DataType::Utf8, false, workload_id), (name, DataType::Utf8, false, value)])
        };
        let accounts = pairs(accounts, "account");
        let regions = pairs(regions, "region");
        Self { workloads, budgets, accounts, regions }
    }
}

/// `N` text columns written a row at a time.
struct Columns<const N: usize>([StringBuilder; N]);

impl<const N: usize> Columns<N> {
    fn new(rows: usize) -> Self {
        Self(std::array::from_fn(|_| StringBuilder::with_capacity(rows, rows * 16)))
    }

    fn append(&mut self, row: [&str; N]) {
        for (column, value) in self.0.iter_mut().zip(row) {
            column.append_value(value);
        }
    }

    fn finish(self) -> [ArrayRef; N] {
        self.0.map(|mut column| Arc::new(column.finish()) as ArrayRef)
    }
}

/// Each workload's rows of `scope_accounts`, `scope_regions` and `workload_budgets`.
fn rows_of(all: &[&ApprovedWorkload]) -> Vec<[std::ops::Range<u32>; 3]> {
    let mut next = [0u32; 3];
    all.iter()
        .map(|w| {
            let counts = [w.scope.accounts.len(), w.scope.regions.len(), w.budgets.len()];
            std::array::from_fn(|i| {
                let start = next[i];
                next[i] += counts[i] as u32;
                start..next[i]
            })
        })
        .collect()
}

/// Where each claim span's rows of the `claims` table start (as [`claim_rows`] makes them:
/// a role claim has two, its role and its permission set), then the table's length.
fn span_rows(claims: &[&ClaimSpan]) -> Vec<u32> {
    let mut starts = Vec::with_capacity(claims.len() + 1);
    let mut next = 0;
    starts.push(0);
    for span in claims {
        next += match span.resource {
            ClaimedResource::IamRole { .. } => 2,
            _ => 1,
        };
        starts.push(next);
    }
    starts
}

/// A one-column table of names (`generated_roles`, `generated_sets`), in the order given.
fn names_batch<'a>(names: impl Iterator<Item = &'a str>) -> RecordBatch {
    batch(vec![("name", DataType::Utf8, false, Arc::new(StringArray::from_iter_values(names)))])
}

/// The `claims` table of `claims`, in their order. Every claim counts, whoever asks: a
/// claim by someone else's workload still decides that the spend is not this Product
/// Owner's (the query then hides it). A role claim holds assumed-role sessions by the
/// role's name (`role`) and Identity Center sessions by the permission set (`sso`): the
/// generated role's set (`generated`: whether a name is a generated role's), the set of a
/// claimed `AWSReservedSSO_{set}_{hex}` role, or the claimed name itself.
fn claims_batch(claims: &[&ClaimSpan], generated: &dyn Fn(&str) -> bool) -> RecordBatch {
    let rows: Vec<ClaimRow<'_>> = claims.iter().flat_map(|s| claim_rows(s, generated)).collect();
    claims_rows_batch(&rows)
}

/// The `claims` table of `rows`, in their order.
fn claims_rows_batch(rows: &[ClaimRow<'_>]) -> RecordBatch {
    batch(vec![
        ("kind", DataType::Utf8, false, text(rows.iter().map(|r| r.kind))),
        ("account", DataType::Utf8, false, text(rows.iter().map(|r| r.account))),
        ("name", DataType::Utf8, false, text(rows.iter().map(|r| &r.name))),
        ("workload_id", DataType::Utf8, false, ids(rows.iter().map(|r| r.span.workload_id))),
        (
            "from_day",
            DataType::Date32,
            false,
            Arc::new(Date32Array::from(rows.iter().map(|r| days(r.span.from)).collect::<Vec<_>>())),
        ),
        (
            "until_day",
            DataType::Date32,
            true,
            Arc::new(Date32Array::from(rows.iter().map(|r| r.span.until.map(days)).collect::<Vec<_>>())),
        ),
    ])
}

/// One row of the `claims` table, its text borrowed from the span where it can be.
struct ClaimRow<'a> {
    kind: &'static str,
    account: &'a str,
    name: std::borrow::Cow<'a, str>,
    span: &'a ClaimSpan,
}

/// A claim's rows of the `claims` table.
fn claim_rows<'a>(span: &'a ClaimSpan, generated: &dyn Fn(&str) -> bool) -> Vec<ClaimRow<'a>> {
    let row = |kind, account, name| ClaimRow { kind, account, name, span };
    match &span.resource {
        ClaimedResource::IamRole { account, role_name } => {
            let set = if generated(role_name) {
                permission_set_for(role_name).into()
            } else {
                permission_set_of_reserved_role(role_name).unwrap_or(role_name).into()
            };
            vec![row("role", account.as_str(), role_name.into()), row("sso", account.as_str(), set)]
        }
        ClaimedResource::Guardrail { arn } => vec![row("guardrail", "", arn.into())],
        ClaimedResource::Workspace { name } => vec![row("workspace", "", name.into())],
    }
}

/// The `gateway_rules` table. Every rule counts, whoever asks (as claims do).
fn rules_batch(rules: &[GatewayRuleSpan]) -> RecordBatch {
    batch(vec![
        ("rule", DataType::Int32, false, Arc::new(Int32Array::from((1..=rules.len() as i32).collect::<Vec<_>>()))),
        ("rule_id", DataType::Utf8, false, ids(rules.iter().map(|r| r.rule_id))),
        ("workload_id", DataType::Utf8, false, ids(rules.iter().map(|r| r.spec.workload_id))),
    ])
}

impl From<GovernanceView> for Arc<GovernanceTables> {
    fn from(view: GovernanceView) -> Self {
        Arc::new(GovernanceTables::new(view))
    }
}

impl GovernanceTables {
    /// The tables of `view`.
    pub fn new(view: GovernanceView) -> Self {
        let all: Vec<&ApprovedWorkload> = view.workloads.iter().map(|w| &**w).collect();
        // Every generated role is dedicated, whoever may see its workload (classify.sql).
        // Sorted and deduplicated in vectors rather than tree sets: 80 000 names at a million
        // events.
        fn sorted<T: Ord>(mut names: Vec<T>) -> Vec<T> {
            names.sort_unstable();
            names.dedup();
            names
        }
        let generated: Vec<&str> = sorted(all.iter().map(|w| w.role_name.as_str()).collect());
        let sets: Vec<String> = sorted(generated.iter().map(|r| permission_set_for(r)).collect());
        let rows = WorkloadRows::new(&view.organisation, &all);
        let claims: Vec<&ClaimSpan> = view.claims.iter().map(|c| &**c).collect();
        let shared = vec![
            ("generated_roles", names_batch(generated.iter().copied())),
            ("generated_sets", names_batch(sets.iter().map(String::as_str))),
            ("scope_accounts", rows.accounts),
            ("scope_regions", rows.regions),
            ("claims", claims_batch(&claims, &|name| generated.binary_search(&name).is_ok())),
            ("gateway_rules", rules_batch(&view.gateway_rules)),
        ];
        let reach = Reach::new(&shared, &rows.workloads, &all, &claims);
        Self { shared, workloads: rows.workloads, budgets: rows.budgets, reach, view }
    }

    /// The view the tables were built from.
    pub fn view(&self) -> &GovernanceView {
        &self.view
    }

    /// Registers the tables in `ctx` as `visibility` may see them, whole: what a question
    /// asks after classifying (unbacked workloads, exports, SQL of its own). The batches are
    /// shared with the question, not copied, except the owners' filtered workloads and
    /// budgets.
    pub fn register(&self, ctx: &SessionContext, visibility: &Visibility) -> Result<()> {
        for (name, batch) in &self.shared {
            register(ctx, name, batch.clone())?;
        }
        let budgets = &self.budgets;
        if *visibility == Visibility::Everything {
            register(ctx, "workloads", self.workloads.clone())?;
            return register(ctx, "workload_budgets", budgets.clone());
        }
        let shown = self.shown(visibility);
        let by_row = |mask: BooleanArray, batch: &RecordBatch| filter_record_batch(batch, &mask);
        register(ctx, "workloads", by_row(BooleanArray::from(shown.clone()), &self.workloads)?)?;
        // Each budget row shown as its workload is (a workload's budget rows are contiguous).
        let budget_shown =
            self.reach.rows_of.iter().zip(&shown).flat_map(|(rows, shown)| rows[2].clone().map(|_| Some(*shown)));
        register(ctx, "workload_budgets", by_row(budget_shown.collect(), budgets)?)
    }

    /// Registers, under the same names, only the rows the classification of a batch whose
    /// facets name `names` (principals, their permission sets, guardrails, workspaces) can
    /// join: the generated names and claims named so, the gateway rules, and the workloads
    /// those claims and rules charge with their scopes (`workloads` as `visibility` may see
    /// them). A name that meets no row costs one binary search per table.
    pub fn register_reached<'a>(
        &self,
        ctx: &SessionContext,
        visibility: &Visibility,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<()> {
        let reach = &self.reach;
        // Each row once: a row met twice would be joined twice.
        let distinct = |mut rows: Vec<u32>| {
            rows.sort_unstable();
            rows.dedup();
            rows
        };
        let columns = NAMED.map(|table| column(self.table(table), "name"));
        let mut rows: [Vec<u32>; 3] = Default::default();
        for name in names {
            for (i, column) in columns.iter().enumerate() {
                rows[i].extend_from_slice(rows_named(&reach.by_name[i], column, name));
            }
        }
        let rows = rows.map(distinct);
        let mut charged = distinct(
            rows[2]
                .iter()
                .filter_map(|r| reach.claim_workloads[*r as usize])
                .chain(reach.rule_workloads.iter().flatten().copied())
                .collect(),
        );
        for (i, table) in NAMED.iter().enumerate() {
            register(ctx, table, take(self.table(table), rows[i].clone())?)?;
        }
        register(ctx, "gateway_rules", self.table("gateway_rules").clone())?;
        for (i, table) in ["scope_accounts", "scope_regions"].into_iter().enumerate() {
            let rows = charged.iter().flat_map(|w| reach.rows_of[*w as usize][i].clone()).collect();
            register(ctx, table, take(self.table(table), rows)?)?;
        }
        charged.retain(|w| self.shows(visibility, *w));
        register(ctx, "workloads", take(&self.workloads, charged)?)
    }

    /// Registers `charged_workloads` and `charged_budgets`: the workloads `workload_ids`
    /// names (the classified lines' — what a grouping joins with) that `visibility` may
    /// see, and their budgets.
    pub fn register_charged<'a>(
        &self,
        ctx: &SessionContext,
        visibility: &Visibility,
        workload_ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<()> {
        let ids = column(&self.workloads, "workload_id");
        let mut charged: Vec<u32> = workload_ids
            .into_iter()
            .flat_map(|id| rows_named(&self.reach.workloads_by_id, ids, id).iter().copied())
            .filter(|w| self.shows(visibility, *w))
            .collect();
        charged.sort_unstable();
        charged.dedup();
        let budgets = charged.iter().flat_map(|w| self.reach.rows_of[*w as usize][2].clone()).collect();
        register(ctx, "charged_budgets", take(&self.budgets, budgets)?)?;
        register(ctx, "charged_workloads", take(&self.workloads, charged)?)
    }

    /// Whether `visibility` may see each workload (for the whole tables).
    fn shown(&self, visibility: &Visibility) -> Vec<bool> {
        (0..self.view.workloads.len() as u32).map(|w| self.shows(visibility, w)).collect()
    }

    /// Whether `visibility` may see workload row `w`: asked only of the rows a question
    /// reaches, so the narrowed registrations never walk every workload.
    fn shows(&self, visibility: &Visibility, w: u32) -> bool {
        visibility.shows(&self.view.organisation, &self.view.workloads[w as usize])
    }

    /// A shared table by name.
    fn table(&self, name: &str) -> &RecordBatch {
        &self.shared.iter().find(|(n, _)| *n == name).expect("every shared table is built").1
    }
}

impl Reach {
    fn new(
        shared: &[(&'static str, RecordBatch)],
        workloads: &RecordBatch,
        all: &[&ApprovedWorkload],
        claims: &[&ClaimSpan],
    ) -> Self {
        let table = |name: &str| &shared.iter().find(|(n, _)| *n == name).expect("every shared table is built").1;
        let ids = column(workloads, "workload_id");
        let workloads_by_id = sorted_rows(ids);
        let workload_of = |batch: &RecordBatch| -> Vec<Option<u32>> {
            let of = column(batch, "workload_id");
            (0..of.len()).map(|r| rows_named(&workloads_by_id, ids, of.value(r)).first().copied()).collect()
        };
        // Each claim's workload found once per span, by the id as a number (a span's rows
        // share it): 160 000 claim rows at a million events.
        let mut by_id: Vec<(uuid::Uuid, u32)> =
            all.iter().enumerate().map(|(i, w)| (w.workload_id, i as u32)).collect();
        by_id.sort_unstable();
        let span_rows = span_rows(claims);
        let claim_workloads = claims
            .iter()
            .zip(span_rows.windows(2))
            .flat_map(|(span, rows)| {
                let first = by_id.partition_point(|(id, _)| *id < span.workload_id);
                let row = by_id.get(first).filter(|(id, _)| *id == span.workload_id).map(|(_, row)| *row);
                std::iter::repeat_n(row, (rows[1] - rows[0]) as usize)
            })
            .collect();
        let rule_workloads = workload_of(table("gateway_rules"));
        let rows_of = rows_of(all);
        Self {
            // The generated names are built in order (from sets): no sort.
            by_name: [
                amend::in_order(column(table(NAMED[0]), "name")),
                amend::in_order(column(table(NAMED[1]), "name")),
                sorted_rows(column(table(NAMED[2]), "name")),
            ],
            workloads_by_id,
            claim_workloads,
            rule_workloads,
            rows_of,
            span_rows,
        }
    }
}

/// Registers `batch` as table `name`, replacing a table of that name.
fn register(ctx: &SessionContext, name: &str, batch: RecordBatch) -> Result<()> {
    ctx.deregister_table(name)?;
    ctx.register_table(name, Arc::new(MemTable::try_new(batch.schema(), vec![vec![batch]])?))?;
    Ok(())
}

/// The rows `rows` of `batch`, in that order.
fn take(batch: &RecordBatch, rows: Vec<u32>) -> Result<RecordBatch> {
    Ok(datafusion::arrow::compute::take_record_batch(batch, &UInt32Array::from(rows))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Workloads `a`…`d` in one account, each with its generated role, a claim of it and a
    /// budget; `c` also claims a guardrail.
    fn four_workloads() -> GovernanceView {
        use finops_domain::vocabulary::{AccountId, ApprovalScope, Region};
        let account = "111122223333";
        let mut view = GovernanceView::default();
        for name in ["a", "b", "c", "d"] {
            let workload_id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes());
            let role_name = format!("finops-a-rather-long-workload-name-{name}-x7k{name}");
            view.claims.push(Arc::new(ClaimSpan {
                resource: ClaimedResource::role(account, &role_name).unwrap(),
                workload_id,
                from: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
                until: None,
            }));
            view.workloads.push(Arc::new(ApprovedWorkload {
                workload_id,
                name: name.into(),
                owner: format!("owner-{name}"),
                product_id: uuid::Uuid::nil(),
                portfolio_id: uuid::Uuid::nil(),
                budgets: vec![finops_domain::governance_state::BudgetSpan {
                    budget_id: workload_id,
                    from: None,
                    until: None,
                }],
                model_id: "anthropic.claude-3-5-sonnet-20240620-v1:0".into(),
                scope: ApprovalScope {
                    accounts: [AccountId::parse(account).unwrap()].into(),
                    regions: [Region::parse("us-east-1").unwrap(), Region::parse("us-west-2").unwrap()].into(),
                    actions: Default::default(),
                },
                role_name,
                business_case: true,
                estimate: true,
            }));
        }
        view.claims.push(Arc::new(ClaimSpan {
            resource: ClaimedResource::guardrail("arn:aws:bedrock:us-east-1:111122223333:guardrail/g1").unwrap(),
            workload_id: view.workloads[2].workload_id,
            from: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            until: None,
        }));
        view
    }

    /// How many rows each of `tables` holds in `ctx`.
    async fn counts(ctx: &SessionContext, tables: &[&str]) -> Vec<i64> {
        let mut out = Vec::new();
        for table in tables {
            let batches = ctx.sql(&format!("SELECT COUNT(*) FROM {table}")).await.unwrap().collect().await.unwrap();
            out.push(
                batches[0].column(0).as_any().downcast_ref::<datafusion::arrow::array::Int64Array>().unwrap().value(0),
            );
        }
        out
    }

    #[tokio::test]
    async fn a_question_registers_only_the_rows_its_batch_can_meet() {
        let view = four_workloads();
        let a_role = view.workloads[0].role_name.clone();
        let b_set = permission_set_for(&view.workloads[1].role_name);
        assert_ne!(b_set, view.workloads[1].role_name, "b's permission set is its role name cut short");
        let tables = GovernanceTables::new(view.clone());
        let ctx = SessionContext::new();
        let tables_asked = REACHED;
        tables.register(&ctx, &Visibility::Everything).unwrap();
        assert_eq!(counts(&ctx, &tables_asked).await, [4, 4, 9, 0, 4, 8, 4], "whole: every workload");

        // A batch whose facets name a's role (twice), a session of b's permission set and
        // c's guardrail, and nothing of d.
        let names = [
            a_role.as_str(),
            a_role.as_str(),
            &format!("AWSReservedSSO_{b_set}_0123456789abcdef"),
            b_set.as_str(),
            "arn:aws:bedrock:us-east-1:111122223333:guardrail/g1",
            "someone-else",
        ];
        tables.register_reached(&ctx, &Visibility::Everything, names).unwrap();
        assert_eq!(
            counts(&ctx, &tables_asked).await,
            // a's role; b's set; claims: a's role, b's set, c's guardrail; a, b and c with
            // their scopes, each row once.
            [1, 1, 3, 0, 3, 6, 3],
        );
        // An owner's question sees its own workload; every claim and scope still counts.
        tables.register_reached(&ctx, &Visibility::OwnWorkloads("owner-b".into()), names).unwrap();
        assert_eq!(counts(&ctx, &tables_asked).await, [1, 1, 3, 0, 3, 6, 1]);

        // The grouping joins with the workloads the classified lines charge, each once.
        let ids = [view.workloads[0].workload_id.to_string(), view.workloads[3].workload_id.to_string()];
        let charged = [ids[0].as_str(), ids[0].as_str(), ids[1].as_str(), "not-a-workload"];
        tables.register_charged(&ctx, &Visibility::Everything, charged).unwrap();
        assert_eq!(counts(&ctx, &["charged_workloads", "charged_budgets"]).await, [2, 2]);
        tables.register_charged(&ctx, &Visibility::OwnWorkloads("owner-d".into()), charged).unwrap();
        assert_eq!(counts(&ctx, &["charged_workloads", "charged_budgets"]).await, [1, 1]);
        // …and the whole tables come back for what follows the classification, each
        // workload's budgets shown as the workload is.
        tables.register(&ctx, &Visibility::OwnWorkloads("owner-b".into())).unwrap();
        assert_eq!(counts(&ctx, &["workloads", "workload_budgets"]).await, [1, 1]);
        tables.register(&ctx, &Visibility::Everything).unwrap();
        assert_eq!(counts(&ctx, &tables_asked).await, [4, 4, 9, 0, 4, 8, 4]);
        assert_eq!(counts(&ctx, &["workload_budgets"]).await, [4]);
    }

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
        let sql = classify_sql(&[], &patterns, september, &RuleFacets::default());
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
