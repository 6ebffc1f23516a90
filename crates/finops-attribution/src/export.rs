//! Classified spend as files: CSV and Parquet of the attribution detail (one row per
//! account × day × model × token type × caller, with its workload and gap), and FOCUS 1.x
//! CSV with allocation columns and `x_` extensions (DOMAIN.md §13 "Open formats").

use datafusion::arrow::csv::WriterBuilder;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use serde::{Deserialize, Serialize};

use crate::{AttributionError, Question};

/// The file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// Attribution detail, CSV.
    Csv,
    /// Attribution detail, Parquet.
    Parquet,
    /// FOCUS 1.x CSV with allocation columns.
    Focus,
}

impl ExportFormat {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Parquet => "parquet",
            Self::Focus => "focus.csv",
        }
    }
}

/// Detail rows: classified spend summed per account × day × model × token type × caller ×
/// anchor, with its workload's names.
const DETAIL_SQL: &str = "SELECT c.account, CAST(c.day AS VARCHAR) AS day, c.platform, c.region, c.model, c.token_type, \
    c.principal_kind, c.principal_account, c.principal_name, c.anchor, \
    COALESCE(w.workload, '') AS workload, COALESCE(c.workload_id, '') AS workload_id, COALESCE(w.product, '') AS product, \
    COALESCE(w.portfolio, '') AS portfolio, COALESCE(b.budget, '') AS budget, COALESCE(c.gap, '') AS gap, \
    c.rule_id AS gateway_rule, SUM(c.cost) AS cost, SUM(c.tokens) AS tokens, CAST(SUM(c.lines) AS BIGINT) AS lines \
    FROM ";

/// Its grouping (every column but the sums).
const DETAIL_GROUPING: &str = " GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17";

/// The FOCUS 1.x projection of the detail. `AllocatedMethodId` says how the row was
/// charged: `iam_principal` (a claimed role), `claimed_resource` (a claimed guardrail or
/// workspace), `gateway_rule` (a shared role's sessions mapped by a rule), or
/// `unallocated`.
const FOCUS_SQL: &str = "SELECT \
    d.cost AS \"BilledCost\", d.cost AS \"EffectiveCost\", 'USD' AS \"BillingCurrency\", \
    d.day || 'T00:00:00Z' AS \"ChargePeriodStart\", \
    CAST(CAST(d.day AS DATE) + INTERVAL '1' DAY AS VARCHAR) || 'T00:00:00Z' AS \"ChargePeriodEnd\", \
    'Usage' AS \"ChargeCategory\", 'AWS' AS \"ProviderName\", \
    CASE d.platform WHEN 'bedrock' THEN 'Amazon Web Services, Inc.' ELSE 'AWS Marketplace' END AS \"InvoiceIssuerName\", \
    CASE d.platform WHEN 'bedrock' THEN 'Amazon Bedrock' WHEN 'marketplace' THEN 'Amazon Bedrock (AWS Marketplace)' \
        ELSE 'Claude Platform on AWS' END AS \"ServiceName\", \
    'AI and Machine Learning' AS \"ServiceCategory\", \
    d.account AS \"SubAccountId\", d.region AS \"RegionId\", \
    d.tokens AS \"ConsumedQuantity\", CASE WHEN d.token_type <> '' THEN 'Tokens' ELSE 'Units' END AS \"ConsumedUnit\", \
    d.model AS \"x_Model\", d.token_type AS \"x_TokenType\", \
    CASE WHEN d.workload_id = '' THEN 'unallocated' WHEN d.anchor <> '' THEN 'claimed_resource' \
        WHEN d.gateway_rule <> '' THEN 'gateway_rule' \
        ELSE 'iam_principal' END AS \"AllocatedMethodId\", \
    d.workload_id AS \"AllocatedResourceId\", d.workload AS \"x_Workload\", d.product AS \"x_Product\", \
    d.budget AS \"x_Budget\", d.principal_name AS \"x_Principal\", d.gap AS \"x_GapKind\" \
    FROM detail d";

fn csv(batches: &[RecordBatch]) -> Result<Vec<u8>, AttributionError> {
    let mut out = Vec::new();
    {
        let mut writer = WriterBuilder::new().with_header(true).build(&mut out);
        for batch in batches {
            writer.write(batch).map_err(datafusion::error::DataFusionError::from)?;
        }
    }
    Ok(out)
}

impl Question {
    /// The question's classified spend as a file; returns (bytes, rows).
    pub async fn export(&self, format: ExportFormat) -> Result<(Vec<u8>, u64), AttributionError> {
        let detail = format!("{DETAIL_SQL}{} {}{DETAIL_GROUPING}", crate::CHARGED, self.restriction());
        let sql = match format {
            ExportFormat::Csv | ExportFormat::Parquet => format!("{detail} ORDER BY {}", &DETAIL_GROUPING[10..]),
            ExportFormat::Focus => {
                format!("WITH detail AS ({detail}) {FOCUS_SQL} ORDER BY 11, 4, 9, 12, 15, 16, 17, 21, 22, 23")
            }
        };
        let frame = self.ctx.sql(&sql).await?;
        let schema = std::sync::Arc::new(frame.schema().as_arrow().clone());
        let batches = frame.collect().await?;
        let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        let bytes = match format {
            ExportFormat::Csv | ExportFormat::Focus => csv(&batches)?,
            ExportFormat::Parquet => {
                let mut writer =
                    ArrowWriter::try_new(Vec::new(), schema, None).map_err(datafusion::error::DataFusionError::from)?;
                for batch in &batches {
                    writer.write(batch).map_err(datafusion::error::DataFusionError::from)?;
                }
                writer.into_inner().map_err(datafusion::error::DataFusionError::from)?
            }
        };
        Ok((bytes, rows))
    }
}
