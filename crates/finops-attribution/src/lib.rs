//! # Attribution over CUR
//!
//! Who spent this AI dollar? (DOMAIN.md §6.) A question names a billing period and the
//! governance state to judge it by; the answer comes from one DataFusion plan over Arrow:
//!
//! 1. `lines` and `facets` — the period's current batch in its columnar form ([`lines`]),
//!    read from object storage;
//! 2. the governance tables ([`governance`]) — workloads, approval scopes, claim periods,
//!    generated roles and role patterns (as predicates);
//! 3. `classified` — `sql/classify.sql`: the AI lines summed per facet, each facet given its
//!    workload and its gap.
//!
//! Point in time is the caller's choice of inputs: the governance state folded from the log
//! up to an instant, and the batch that was current then. Dollars are exact decimals, so the
//! same inputs give the same answer to the cent.

pub mod cards;
pub mod chargeback;
pub mod csv_batches;
pub mod cur_parquet;
pub mod export;
pub mod focus_parquet;
pub mod gaps;
pub mod governance;
pub mod hours;
pub mod invocation_usage;
pub mod lines;
pub mod maturity;
pub mod parquet_csv;
pub mod parquet_footer;
pub mod scratch;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::datasource::MemTable;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use finops_domain::cur_batches::{CurBatch, billing_period_start};
use finops_domain::governance_state::GovernanceState;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

pub use governance::{GovernanceTables, GovernanceView, RolePatterns, RuleFacets, Visibility, classify_sql};

/// The classification, as reviewed SQL (its role predicates are filled in by
/// [`governance::classify_sql`]).
pub const CLASSIFY_SQL: &str = include_str!("../sql/classify.sql");

/// The URL the object store is registered under.
const OBJECTS_URL: &str = "finops://objects/";

/// Why a question could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum AttributionError {
    /// The period has no batch (or none yet at the instant asked about).
    #[error("no CUR batch for {period} {when}; ingest one with `finops cur ingest`")]
    NotIngested {
        /// The period.
        period: String,
        /// "as of …" or "yet".
        when: String,
    },
    /// The batch's columnar form was written by an earlier layout (before facets).
    #[error(
        "the CUR batch {hash} of {period} is stored in an earlier columnar layout; ingest the same delivery \
         again (`finops cur ingest`) to rewrite it"
    )]
    Outdated {
        /// The period.
        period: String,
        /// The batch.
        hash: String,
    },
    /// A bad question.
    #[error("{field}: {reason}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The query engine failed.
    #[error("query: {0}")]
    Query(#[from] datafusion::error::DataFusionError),
    /// Stored hourly usage of invocation logs could not be written or read.
    #[error("invocation-log usage: {0}")]
    Usage(String),
}

/// The columnar layout's version, part of the object names: a batch stored by an earlier
/// layout is rewritten by ingesting its delivery again, never read wrongly. Version 5 added
/// the lines' `session` and `principal_tags` (gateway mapping rules); version 6 replaced
/// them by a `session_key` into a third object, the batch's sessions.
const COLUMNAR_LAYOUT: u32 = 6;

/// Where a batch's columnar lines live: beside its delivered bytes.
pub fn lines_location(period: &str, hash: &str) -> ObjectPath {
    ObjectPath::from(format!("cur/{period}/{hash}.lines-{COLUMNAR_LAYOUT}.parquet"))
}

/// Where a batch's facets live (see [`lines`]).
pub fn facets_location(period: &str, hash: &str) -> ObjectPath {
    ObjectPath::from(format!("cur/{period}/{hash}.facets-{COLUMNAR_LAYOUT}.parquet"))
}

/// Where a batch's sessions live (see [`lines::sessions_schema`]).
pub fn sessions_location(period: &str, hash: &str) -> ObjectPath {
    ObjectPath::from(format!("cur/{period}/{hash}.sessions-{COLUMNAR_LAYOUT}.parquet"))
}

/// What attribution can group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// The workload charged (empty when none).
    Workload,
    /// The workload's product.
    Product,
    /// The product's portfolio.
    Portfolio,
    /// The budget the workload charges.
    Budget,
    /// The usage account.
    Account,
    /// The model.
    Model,
    /// input, output, cache_read, cache_write (empty for non-token lines).
    TokenType,
    /// The region.
    Region,
    /// The usage day.
    Day,
    /// The allocation gap kind (empty when attributed and in scope).
    Gap,
    /// bedrock, marketplace, claude_platform.
    Platform,
    /// The calling role or user.
    Principal,
}

impl Dimension {
    /// Every dimension.
    pub const ALL: [Dimension; 12] = [
        Self::Workload,
        Self::Product,
        Self::Portfolio,
        Self::Budget,
        Self::Account,
        Self::Model,
        Self::TokenType,
        Self::Region,
        Self::Day,
        Self::Gap,
        Self::Platform,
        Self::Principal,
    ];

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Workload => "workload",
            Self::Product => "product",
            Self::Portfolio => "portfolio",
            Self::Budget => "budget",
            Self::Account => "account",
            Self::Model => "model",
            Self::TokenType => "token_type",
            Self::Region => "region",
            Self::Day => "day",
            Self::Gap => "gap",
            Self::Platform => "platform",
            Self::Principal => "principal",
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Self::Workload => "COALESCE(w.workload, '')",
            Self::Product => "COALESCE(w.product, '')",
            Self::Portfolio => "COALESCE(w.portfolio, '')",
            Self::Budget => "COALESCE(b.budget, '')",
            Self::Account => "c.account",
            Self::Model => "c.model",
            Self::TokenType => "c.token_type",
            Self::Region => "c.region",
            Self::Day => "CAST(c.day AS VARCHAR)",
            Self::Gap => "COALESCE(c.gap, '')",
            Self::Platform => "c.platform",
            Self::Principal => "c.principal_name",
        }
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Dimension {
    type Err = AttributionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().replace('-', "_");
        Self::ALL.into_iter().find(|d| d.as_str() == s).ok_or_else(|| AttributionError::Invalid {
            field: "group_by",
            reason: format!("`{s}` is not a dimension; one of: {}", Self::ALL.map(Dimension::as_str).join(", ")),
        })
    }
}

/// One row of an attribution answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributionRow {
    /// The group's value per requested dimension, in the order asked.
    pub keys: Vec<String>,
    /// Dollars, in cents (see [`allocate_cents`]: rows add up to the total).
    pub cost_cents: i64,
    /// Tokens.
    pub tokens: f64,
    /// CUR lines.
    pub lines: u64,
}

/// An **Unbacked AI Workload** (DOMAIN.md §6, the per-workload gap): claimed during the
/// period, with spend or an estimate, and no declared business case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnbackedWorkload {
    /// The workload.
    pub workload_id: String,
    /// Its name.
    pub workload: String,
    /// Its Product Owner (who is asked for the business case).
    pub owner: String,
    /// The period's spend charged to it, in cents.
    pub spend_cents: i64,
    /// It has an estimate.
    pub estimate: bool,
}

/// An attribution answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    /// The period.
    pub period: String,
    /// The batch the answer read.
    pub batch_hash: String,
    /// The dimensions, in order.
    pub group_by: Vec<Dimension>,
    /// Rows, ordered by their keys; their cents add up to `total_cents`.
    pub rows: Vec<AttributionRow>,
    /// All AI spend answered, rounded once.
    pub total_cents: i64,
}

/// Classified spend with the workload it is charged to (`w`) and the budget that workload
/// charged on the day (`b`): `charged_workloads` and `charged_budgets`, the rows of the
/// workloads the classified lines charge (`GovernanceTables::register_charged`). Every
/// query that names a budget reads through this one join.
pub(crate) const CHARGED: &str = "classified c \
    LEFT JOIN charged_workloads w ON w.workload_id = c.workload_id \
    LEFT JOIN charged_budgets b ON b.workload_id = c.workload_id \
        AND (b.from_day IS NULL OR c.day >= b.from_day) AND (b.until_day IS NULL OR c.day <= b.until_day)";

/// A decimal's raw value at `scale` as cents, rounded half away from zero.
pub fn cents(raw: i128, scale: i8) -> i64 {
    let shift = i32::from(scale) - 2;
    if shift <= 0 {
        return (raw * 10i128.pow(shift.unsigned_abs())) as i64;
    }
    let div = 10i128.pow(shift as u32);
    let (q, r) = (raw / div, raw % div);
    let rounded = if r.abs() * 2 >= div { q + raw.signum() } else { q };
    rounded as i64
}

/// A decimal column's value at `row` in units of [`lines::MONEY_SCALE`] (0 when NULL).
pub(crate) fn raw_at(column: &dyn Array, row: usize) -> i128 {
    match column.data_type() {
        DataType::Decimal128(_, scale) if column.is_valid(row) => {
            let raw = column.as_primitive::<datafusion::arrow::datatypes::Decimal128Type>().value(row);
            let shift = i32::from(lines::MONEY_SCALE) - i32::from(*scale);
            if shift >= 0 { raw * 10i128.pow(shift as u32) } else { raw / 10i128.pow(shift.unsigned_abs()) }
        }
        _ => 0,
    }
}

/// Whole cents for exact amounts (in units of [`lines::MONEY_SCALE`]) that add up to the
/// total rounded once: each part is floored, and the cents the total still needs go to
/// the parts with the largest remainders (ties to the earlier part). Returns the parts'
/// cents and the total's.
pub fn allocate_cents(parts: &[i128]) -> (Vec<i64>, i64) {
    let unit = 10i128.pow(u32::try_from(lines::MONEY_SCALE - 2).expect("scale ≥ 2"));
    let total = cents(parts.iter().sum(), lines::MONEY_SCALE);
    let mut out: Vec<i64> = parts.iter().map(|p| p.div_euclid(unit) as i64).collect();
    let mut short = total - out.iter().sum::<i64>();
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(parts[i].rem_euclid(unit)), i));
    for i in order {
        if short <= 0 {
            break;
        }
        if parts[i].rem_euclid(unit) > 0 {
            out[i] += 1;
            short -= 1;
        }
    }
    (out, total)
}

/// What a question is judged by: a state's governance tables, built (or kept from an
/// earlier question of that state), or the state itself, whose rows the question looks up
/// as it needs them ([`governance::reached`]: what a state no question has kept tables
/// for costs least by).
#[derive(Clone)]
pub enum Governance {
    /// The state's tables.
    Tables(Arc<GovernanceTables>),
    /// The state, its rows looked up by name.
    State(Arc<GovernanceState>),
}

impl From<Arc<GovernanceTables>> for Governance {
    fn from(tables: Arc<GovernanceTables>) -> Self {
        Self::Tables(tables)
    }
}

impl From<GovernanceView> for Governance {
    fn from(view: GovernanceView) -> Self {
        Self::Tables(Arc::new(GovernanceTables::new(view)))
    }
}

/// The query engine: an object store holding the batches, and the default role patterns
/// (used until the FinOps Lead records patterns in the log).
#[derive(Clone)]
pub struct AttributionEngine {
    objects: Arc<dyn ObjectStore>,
    patterns: RolePatterns,
}

/// A question being answered: the period's lines and the governance tables, registered in
/// one DataFusion session.
pub struct Question {
    ctx: SessionContext,
    governance: Governance,
    /// The whole tables of a question judged from the state ([`Governance::State`]), made
    /// when something asks about every workload (the view, a caller's own SQL).
    whole: std::sync::OnceLock<Arc<GovernanceTables>>,
    period: String,
    period_start: chrono::NaiveDate,
    batch: CurBatch,
    visibility: Visibility,
}

impl AttributionEngine {
    /// An engine reading batches from `objects`.
    pub fn new(objects: Arc<dyn ObjectStore>, patterns: RolePatterns) -> Self {
        Self { objects, patterns }
    }

    /// The object store it reads (batches, and the logs' hourly usage).
    pub fn objects(&self) -> &Arc<dyn ObjectStore> {
        &self.objects
    }

    /// Prepares the question "`batch`'s period, judged by `governance`" for `visibility`.
    /// `batch` is the period's batch current at the instant asked about
    /// ([`Self::batch_at`]); `governance` is a [`GovernanceView`] (its tables built for
    /// this question), [`GovernanceTables`] kept from an earlier question of that state, or
    /// the state itself ([`Governance::State`]).
    pub async fn question(
        &self,
        governance: impl Into<Governance>,
        batch: &CurBatch,
        visibility: Visibility,
    ) -> Result<Question, AttributionError> {
        let governance = governance.into();
        let config = SessionConfig::new().with_information_schema(false);
        let ctx = SessionContext::new_with_config(config);
        let url = ObjectStoreUrl::parse(OBJECTS_URL)?;
        ctx.register_object_store(url.as_ref(), self.objects.clone());
        let period_start = billing_period_start(&batch.period).ok_or_else(|| AttributionError::Invalid {
            field: "period",
            reason: format!("`{}` is not a billing period YYYY-MM", batch.period),
        })?;
        let facets = facets_location(&batch.period, &batch.hash);
        let read = |location: ObjectPath| {
            let ctx = &ctx;
            let facets = &facets;
            async move {
                match ctx.read_parquet(format!("{OBJECTS_URL}{location}"), ParquetReadOptions::default()).await {
                    Ok(data) => Ok(data),
                    // Only a failed read pays for asking why: a batch of an earlier layout
                    // has no facets under this layout's name.
                    Err(e) => match self.objects.head(facets).await {
                        Err(object_store::Error::NotFound { .. }) => {
                            Err(AttributionError::Outdated { period: batch.period.clone(), hash: batch.hash.clone() })
                        }
                        _ => Err(e.into()),
                    },
                }
            }
        };
        ctx.register_table("lines", read(lines_location(&batch.period, &batch.hash)).await?.into_view())?;
        ctx.register_table("sessions", read(sessions_location(&batch.period, &batch.hash)).await?.into_view())?;
        // The facets are read into memory once: they are few (one row per distinct caller,
        // model, region… of the month), the classification scans them in several places,
        // and their names say which governance rows the question can meet.
        let data = read(facets.clone()).await?;
        let schema = Arc::new(data.schema().as_arrow().clone());
        let facet_rows = data.collect().await?;
        ctx.register_table("facets", Arc::new(MemTable::try_new(schema, vec![facet_rows.clone()])?))?;
        let names = facet_names(&facet_rows)?;
        let names = names.iter().map(String::as_str);
        // The patterns the FinOps Lead recorded as of the instant, else the configured ones.
        let (patterns, rules) = match &governance {
            Governance::Tables(tables) => {
                tables.register_reached(&ctx, &visibility, names)?;
                (tables.view().patterns.clone(), tables.view().gateway_rules.clone())
            }
            Governance::State(state) => {
                governance::reached::register_reached(&ctx, state, &visibility, names)?;
                (state.role_patterns.patterns.clone(), state.gateway_rule_spans())
            }
        };
        // Classified once per question: the one pass over the lines; attribution, the
        // chargeback statement, unbacked workloads and exports then read the small result.
        let patterns = patterns.as_ref().unwrap_or(&self.patterns);
        let rule_facets = rule_facets(&ctx, &rules).await?;
        let classified = ctx.sql(&governance::classify_sql(&rules, patterns, period_start, &rule_facets)).await?;
        let schema = Arc::new(classified.schema().as_arrow().clone());
        let rows = classified.collect().await?;
        // What follows reads the small result: the charged workloads to group by, and the
        // whole tables for questions about every workload (unbacked ones, SQL of a caller's
        // own) — registered now when they are at hand, else when first asked for.
        let mut charged = Vec::new();
        for batch in &rows {
            charged.push(text_column(batch.column_by_name("workload_id").expect("classify.sql names workload_id"))?);
        }
        let ids = charged.iter().flat_map(|c| c.as_string::<i32>().iter().flatten());
        let whole = std::sync::OnceLock::new();
        match &governance {
            Governance::Tables(tables) => {
                tables.register(&ctx, &visibility)?;
                tables.register_charged(&ctx, &visibility, ids)?;
                let _ = whole.set(tables.clone());
            }
            Governance::State(state) => governance::reached::register_charged(&ctx, state, &visibility, ids)?,
        }
        ctx.register_table("classified", Arc::new(MemTable::try_new(schema, vec![rows])?))?;
        Ok(Question {
            ctx,
            governance,
            whole,
            period: batch.period.clone(),
            period_start,
            batch: batch.clone(),
            visibility,
        })
    }

    /// The batch of `period` current at `as_of` (now when `None`) in `state`.
    pub fn batch_at<'a>(
        state: &'a GovernanceState,
        period: &str,
        as_of: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<&'a CurBatch, AttributionError> {
        let not_ingested = || AttributionError::NotIngested {
            period: period.to_owned(),
            when: as_of.map_or_else(|| "yet".to_owned(), |t| format!("as of {}", t.to_rfc3339())),
        };
        let p = state.cur_periods.get(period).ok_or_else(not_ingested)?;
        match as_of {
            Some(t) => p.current_at(t),
            None => p.batches.last().map(|(b, _)| b),
        }
        .ok_or_else(not_ingested)
    }
}

/// Any text column (Utf8, LargeUtf8, Utf8View) as Utf8: Parquet text may arrive as a view
/// type, and the readers here take plain strings.
pub(crate) fn text_column(column: &ArrayRef) -> Result<ArrayRef, AttributionError> {
    Ok(datafusion::arrow::compute::cast(column, &DataType::Utf8).map_err(datafusion::error::DataFusionError::from)?)
}

/// Every name a batch's facets may be claimed or generated by: their anchors (guardrails,
/// workspaces), their principals' names, and the permission set of each Identity Center
/// role (`AWSReservedSSO_{set}_{hex}`).
fn facet_names(facets: &[RecordBatch]) -> Result<std::collections::BTreeSet<String>, AttributionError> {
    let mut names = std::collections::BTreeSet::new();
    for batch in facets {
        for field in ["anchor", "principal_name"] {
            let column = text_column(batch.column_by_name(field).expect("the facets' schema names it"))?;
            for name in column.as_string::<i32>().iter().flatten() {
                if let Some(set) = finops_domain::role::permission_set_of_reserved_role(name) {
                    names.insert(set.to_owned());
                }
                names.insert(name.to_owned());
            }
        }
    }
    Ok(names)
}

/// What the gateway rules of `rules` take in the batch registered in `ctx` (`facets` and
/// `sessions`): their roles' facets and the sessions each matches ([`RuleFacets`]); nothing
/// is read without rules.
pub async fn rule_facets(
    ctx: &SessionContext,
    rules: &[finops_domain::governance_state::GatewayRuleSpan],
) -> Result<RuleFacets, AttributionError> {
    let mut out = RuleFacets::default();
    let Some(sql) = RuleFacets::facets_query(rules) else { return Ok(out) };
    for batch in ctx.sql(&sql).await?.collect().await? {
        let facet = batch.column(0).as_primitive::<datafusion::arrow::datatypes::Int32Type>();
        let (account, role) = (text_column(batch.column(1))?, text_column(batch.column(2))?);
        let (account, role) = (account.as_string::<i32>(), role.as_string::<i32>());
        for row in 0..batch.num_rows() {
            let key = (account.value(row).to_owned(), role.value(row).to_owned());
            out.facets.entry(key).or_default().push(facet.value(row));
        }
    }
    for rule in rules {
        let mut keys = Vec::new();
        for batch in ctx.sql(&RuleFacets::sessions_query(rule)).await?.collect().await? {
            keys.extend(batch.column(0).as_primitive::<datafusion::arrow::datatypes::Int32Type>().values().iter());
        }
        out.sessions.insert(rule.rule_id, keys);
    }
    Ok(out)
}

impl Question {
    /// The period asked about.
    pub fn period(&self) -> &str {
        &self.period
    }

    /// The batch read.
    pub fn batch(&self) -> &CurBatch {
        &self.batch
    }

    /// The governance view the question is judged by (for a question judged from the state,
    /// its whole tables are made now).
    pub fn view(&self) -> &GovernanceView {
        self.whole_tables().view()
    }

    /// The whole governance tables: those the question was given, else made from its state
    /// once (and registered under the whole tables' names).
    fn whole_tables(&self) -> &Arc<GovernanceTables> {
        self.whole.get_or_init(|| {
            let Governance::State(state) = &self.governance else {
                unreachable!("a question given tables holds them from the start")
            };
            let tables = Arc::new(GovernanceTables::new(GovernanceView::from(&**state)));
            tables.register(&self.ctx, &self.visibility).expect("registering built tables in memory cannot fail");
            tables
        })
    }

    /// Runs SQL over `lines`, `classified` and the whole governance tables (for tests and
    /// exports).
    pub async fn sql(&self, sql: &str) -> Result<Vec<RecordBatch>, AttributionError> {
        self.whole_tables();
        self.run(sql).await
    }

    /// Runs SQL over what every question registers (`lines`, `classified`, the charged
    /// workloads and budgets): what the answers below read.
    async fn run(&self, sql: &str) -> Result<Vec<RecordBatch>, AttributionError> {
        Ok(self.ctx.sql(sql).await?.collect().await?)
    }

    /// The `WHERE` clause that keeps what the asker may see (over `classified c` joined
    /// with `workloads w`).
    pub(crate) fn restriction(&self) -> &'static str {
        match self.visibility {
            Visibility::Everything => "",
            // An owner sees spend charged to the workloads they may see and nothing else.
            Visibility::OwnWorkloads(_) | Visibility::OwnPortfolios(_) => "WHERE w.workload_id IS NOT NULL",
        }
    }

    /// AI spend of the period grouped by `group_by` (no dimension: one total row).
    pub async fn attribute(&self, group_by: &[Dimension]) -> Result<Attribution, AttributionError> {
        let keys: Vec<String> = group_by.iter().map(|d| format!("{} AS {}", d.sql(), d.as_str())).collect();
        let select = keys.iter().map(|k| format!("{k}, ")).collect::<String>();
        let grouping = if group_by.is_empty() {
            String::new()
        } else {
            let positions = (1..=group_by.len()).map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
            format!("GROUP BY {positions} ORDER BY {positions}")
        };
        let sql = format!(
            "SELECT {select}SUM(c.cost) AS cost, SUM(c.tokens) AS tokens, CAST(SUM(c.lines) AS BIGINT) AS lines \
             FROM {CHARGED} {} {grouping}",
            self.restriction()
        );
        let batches = self.run(&sql).await?;
        let n = group_by.len();
        let mut rows = Vec::new();
        let mut raws = Vec::new();
        for batch in &batches {
            for row in 0..batch.num_rows() {
                let lines = batch.column(n + 2);
                if lines.is_null(row) {
                    continue; // the total of nothing
                }
                let keys = (0..n)
                    .map(|i| array_value_to_string(batch.column(i), row))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(datafusion::error::DataFusionError::from)?;
                rows.push(AttributionRow {
                    keys,
                    cost_cents: 0,
                    tokens: batch.column(n + 1).as_primitive::<Float64Type>().value(row),
                    lines: lines.as_primitive::<Int64Type>().value(row) as u64,
                });
                raws.push(raw_at(batch.column(n).as_ref(), row));
            }
        }
        // Rows add up to the total, to the cent.
        let (cents, total_cents) = allocate_cents(&raws);
        for (row, c) in rows.iter_mut().zip(cents) {
            row.cost_cents = c;
        }
        Ok(Attribution {
            total_cents,
            period: self.period.clone(),
            batch_hash: self.batch.hash.clone(),
            group_by: group_by.to_vec(),
            rows,
        })
    }

    /// The period's Unbacked AI Workloads the asker may see: a claim in force on some day
    /// of the period, spend or an estimate, no declared business case.
    pub async fn unbacked(&self) -> Result<Vec<UnbackedWorkload>, AttributionError> {
        let start = self.period_start;
        let end = start.checked_add_months(chrono::Months::new(1)).and_then(|d| d.pred_opt()).unwrap_or(start);
        // From the state, only the workloads it can name are registered; the SQL is the same.
        let (workloads, claims) = match &self.governance {
            Governance::State(state) if self.whole.get().is_none() => {
                let (ctx, visibility) = (&self.ctx, &self.visibility);
                governance::reached::register_unbacked(ctx, state, visibility, (start, end))?;
                ("unbacked_workloads", "unbacked_claims")
            }
            _ => ("workloads", "claims"),
        };
        let sql = format!(
            "SELECT w.workload_id, w.workload, w.owner, w.estimate, SUM(c.cost) AS spend \
             FROM {workloads} w LEFT JOIN classified c ON c.workload_id = w.workload_id \
             WHERE NOT w.business_case AND w.workload_id IN (SELECT workload_id FROM {claims} \
               WHERE from_day <= DATE '{end}' AND (until_day IS NULL OR until_day >= DATE '{start}')) \
             GROUP BY 1, 2, 3, 4 HAVING w.estimate OR COUNT(c.workload_id) > 0 ORDER BY 2, 1"
        );
        let mut out = Vec::new();
        for batch in self.run(&sql).await? {
            for row in 0..batch.num_rows() {
                let text = |i: usize| batch.column(i).as_string::<i32>().value(row).to_owned();
                out.push(UnbackedWorkload {
                    workload_id: text(0),
                    workload: text(1),
                    owner: text(2),
                    estimate: batch.column(3).as_boolean().value(row),
                    spend_cents: cents(raw_at(batch.column(4).as_ref(), row), lines::MONEY_SCALE),
                });
            }
        }
        Ok(out)
    }
}
