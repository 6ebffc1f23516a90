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

/// Detail rows: every classified group with its workload's names.
const DETAIL_SQL: &str = "SELECT c.account, CAST(c.day AS VARCHAR) AS day, c.platform, c.region, c.model, c.token_type, \
    c.principal_kind, c.principal_account, c.principal_name, c.anchor, \
    COALESCE(w.workload, '') AS workload, COALESCE(c.workload_id, '') AS workload_id, COALESCE(w.product, '') AS product, \
    COALESCE(w.portfolio, '') AS portfolio, COALESCE(w.budget, '') AS budget, COALESCE(c.gap, '') AS gap, \
    c.cost, c.tokens, c.lines \
    FROM classified c LEFT JOIN workloads w ON w.workload_id = c.workload_id";

/// The FOCUS 1.x projection. `AllocatedMethodId` says how the row was charged: `iam_principal`
/// (a claimed role), `claimed_resource` (a claimed guardrail or workspace), or `unallocated`.
const FOCUS_SQL: &str = "SELECT \
    c.cost AS \"BilledCost\", c.cost AS \"EffectiveCost\", 'USD' AS \"BillingCurrency\", \
    CAST(c.day AS VARCHAR) || 'T00:00:00Z' AS \"ChargePeriodStart\", \
    CAST(c.day + INTERVAL '1' DAY AS VARCHAR) || 'T00:00:00Z' AS \"ChargePeriodEnd\", \
    'Usage' AS \"ChargeCategory\", 'AWS' AS \"ProviderName\", \
    CASE c.platform WHEN 'bedrock' THEN 'Amazon Web Services, Inc.' ELSE 'AWS Marketplace' END AS \"InvoiceIssuerName\", \
    CASE c.platform WHEN 'bedrock' THEN 'Amazon Bedrock' WHEN 'marketplace' THEN 'Amazon Bedrock (AWS Marketplace)' \
        ELSE 'Claude Platform on AWS' END AS \"ServiceName\", \
    'AI and Machine Learning' AS \"ServiceCategory\", \
    c.account AS \"SubAccountId\", c.region AS \"RegionId\", \
    c.tokens AS \"ConsumedQuantity\", CASE WHEN c.token_type <> '' THEN 'Tokens' ELSE 'Units' END AS \"ConsumedUnit\", \
    c.model AS \"x_Model\", c.token_type AS \"x_TokenType\", \
    CASE WHEN c.workload_id IS NULL THEN 'unallocated' WHEN c.anchor <> '' THEN 'claimed_resource' \
        ELSE 'iam_principal' END AS \"AllocatedMethodId\", \
    COALESCE(c.workload_id, '') AS \"AllocatedResourceId\", \
    COALESCE(w.workload, '') AS \"x_Workload\", COALESCE(w.product, '') AS \"x_Product\", \
    COALESCE(w.budget, '') AS \"x_Budget\", c.principal_name AS \"x_Principal\", COALESCE(c.gap, '') AS \"x_GapKind\" \
    FROM classified c LEFT JOIN workloads w ON w.workload_id = c.workload_id";

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
        let restriction = match self.visibility {
            crate::Visibility::Everything => "",
            crate::Visibility::OwnWorkloads(_) => " WHERE w.workload_id IS NOT NULL",
        };
        let order = " ORDER BY 1, 2, 3, 4, 5, 6, 9, 10";
        let sql = match format {
            ExportFormat::Csv | ExportFormat::Parquet => format!("{DETAIL_SQL}{restriction}{order}"),
            ExportFormat::Focus => format!("{FOCUS_SQL}{restriction} ORDER BY 11, 4, 9, 15, 16, 21"),
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
