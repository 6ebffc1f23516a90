//! FOCUS 1.x CSV as an alternative input, mapped onto the same [`CurLine`]s.
//!
//! The mapping (after the FinOps Foundation's CUR→FOCUS rules, read backwards):
//! `SubAccountId` → usage account, `ChargeCategory` → line item type, `ChargePeriodStart`
//! → usage start, `x_ServiceCode` (else `ServiceName`) → product code, `x_UsageType` (else
//! `SkuMeter`) → usage type, `x_Operation` → operation, `ResourceId` → resource id,
//! `ConsumedQuantity` → usage amount, `BilledCost` → cost, `InvoiceIssuerName` → billing
//! entity, `ServiceName` → product name. FOCUS carries no caller identity, so every line's
//! principal is `None` (Attribution Not Enabled). The literal `NULL` counts as empty.
//! Rows of other providers (`ProviderName` other than AWS) are skipped and counted.

use std::collections::BTreeMap;
use std::io::Read;

use crate::csv_lines::{CurCsvError, CurLine, NEVER_NEGATIVE, account_id, parse_timestamp};

/// The columns a FOCUS delivery must have.
pub const REQUIRED: [&str; 5] = ["SubAccountId", "ChargeCategory", "ChargePeriodStart", "BilledCost", "ProviderName"];

/// A FOCUS CSV being read.
pub struct FocusCsv<R: Read> {
    file: String,
    reader: csv::Reader<R>,
    columns: BTreeMap<String, usize>,
    /// The present columns that have a length limit: (index, name, limit), resolved once.
    bounded: Vec<(usize, &'static str, usize)>,
    record: csv::StringRecord,
    row: u64,
    skipped: u64,
}

/// The longest value each FOCUS column read here may hold, in bytes (as
/// [`crate::csv_lines::FIELD_LIMITS`] for CUR).
pub const FOCUS_LIMITS: [(&str, usize); 10] = [
    ("SubAccountId", 64),
    ("ChargeCategory", 64),
    ("x_ServiceCode", 128),
    ("ServiceName", 512),
    ("x_UsageType", 256),
    ("SkuMeter", 256),
    ("x_Operation", 256),
    ("ResourceId", 2_048),
    ("InvoiceIssuerName", 128),
    ("Tags", 65_536),
];

impl<R: Read> FocusCsv<R> {
    /// Reads and checks the header.
    pub fn new(file: &str, input: R) -> Result<Self, CurCsvError> {
        let mut reader = csv::Reader::from_reader(input);
        let headers = reader
            .headers()
            .map_err(|e| CurCsvError::Unreadable { file: file.to_owned(), row: 0, reason: e.to_string() })?
            .clone();
        let columns: BTreeMap<String, usize> =
            headers.iter().enumerate().map(|(i, h)| (h.trim().to_owned(), i)).collect();
        for column in REQUIRED {
            if !columns.contains_key(column) {
                return Err(CurCsvError::MissingColumn { file: file.to_owned(), column, legacy: column });
            }
        }
        let bounded =
            FOCUS_LIMITS.iter().filter_map(|(column, limit)| Some((*columns.get(*column)?, *column, *limit))).collect();
        Ok(Self {
            file: file.to_owned(),
            reader,
            columns,
            bounded,
            record: csv::StringRecord::new(),
            row: 0,
            skipped: 0,
        })
    }

    /// Rows of other providers skipped so far.
    pub fn skipped_other_providers(&self) -> u64 {
        self.skipped
    }

    fn text(&self, column: &str) -> &str {
        match self.columns.get(column).and_then(|i| self.record.get(*i)).map(str::trim) {
            Some("NULL") | None => "",
            Some(t) => t,
        }
    }

    fn first(&self, columns: &[&str]) -> String {
        columns.iter().map(|c| self.text(c)).find(|t| !t.is_empty()).unwrap_or("").to_owned()
    }

    fn bad(&self, column: &'static str, reason: &'static str) -> CurCsvError {
        CurCsvError::BadValue {
            file: self.file.clone(),
            row: self.row,
            column,
            value: self.text(column).to_owned(),
            reason,
        }
    }

    fn number(&self, column: &'static str, required: bool) -> Result<f64, CurCsvError> {
        let t = self.text(column);
        if t.is_empty() && !required {
            return Ok(0.0);
        }
        t.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| self.bad(column, "is not a number"))
    }

    fn line(&self) -> Result<CurLine, CurCsvError> {
        for &(index, column, limit) in &self.bounded {
            let value = self.record.get(index).unwrap_or("");
            if value.len() > limit {
                return Err(CurCsvError::TooLong {
                    file: self.file.clone(),
                    row: self.row,
                    column,
                    bytes: value.len(),
                    start: value.chars().take(40).collect(),
                    limit,
                });
            }
        }
        let cost = self.number("BilledCost", true)?;
        let category = self.text("ChargeCategory");
        if cost < 0.0 && NEVER_NEGATIVE.contains(&category) {
            return Err(CurCsvError::BadValue {
                file: self.file.clone(),
                row: self.row,
                column: "BilledCost",
                value: format!("{} on a {category} charge", self.text("BilledCost")),
                reason: "is negative; only credits, refunds and discounts may be",
            });
        }
        Ok(CurLine {
            usage_account_id: account_id(self.text("SubAccountId"))
                .ok_or_else(|| self.bad("SubAccountId", "is not an AWS account id"))?,
            line_item_type: self.text("ChargeCategory").to_owned(),
            usage_start: parse_timestamp(self.text("ChargePeriodStart"))
                .ok_or_else(|| self.bad("ChargePeriodStart", "is not a timestamp"))?,
            product_code: self.first(&["x_ServiceCode", "ServiceName"]),
            usage_type: self.first(&["x_UsageType", "SkuMeter"]),
            operation: self.text("x_Operation").to_owned(),
            resource_id: self.text("ResourceId").to_owned(),
            usage_amount: self.number("ConsumedQuantity", false)?,
            unblended_cost: cost,
            billing_entity: self.text("InvoiceIssuerName").to_owned(),
            product_name: self.text("ServiceName").to_owned(),
            iam_principal: None,
            resource_tags: self.text("Tags").to_owned(),
            // FOCUS carries no principal tags.
            tags: String::new(),
        })
    }
}

impl<R: Read> Iterator for FocusCsv<R> {
    type Item = Result<CurLine, CurCsvError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.reader.read_record(&mut self.record) {
                Ok(false) => return None,
                Ok(true) => {
                    self.row += 1;
                    if !self.text("ProviderName").eq_ignore_ascii_case("AWS") {
                        self.skipped += 1;
                        continue;
                    }
                    return Some(self.line());
                }
                Err(e) => {
                    return Some(Err(CurCsvError::Unreadable {
                        file: self.file.clone(),
                        row: self.row + 1,
                        reason: e.to_string(),
                    }));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_focus_sample_reads_cleanly() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/real-data/focus-1.0_sample_1000rows_FinOps-FOCUS-Sample-Data.csv"
        );
        let Ok(file) = std::fs::File::open(path) else {
            eprintln!("SKIPPED: {path} not present");
            return;
        };
        let mut focus = FocusCsv::new("focus.csv", file).unwrap();
        let lines: Vec<CurLine> = focus.by_ref().collect::<Result<_, _>>().unwrap();
        assert_eq!(lines.len(), 942, "the AWS rows");
        assert_eq!(focus.skipped_other_providers(), 58, "Microsoft and Oracle rows are skipped, not errors");
        assert!(lines.iter().all(|l| l.usage_account_id.len() == 12 && l.iam_principal.is_none()));
        assert!(lines.iter().any(|l| l.product_name == "Amazon Simple Queue Service"));
    }

    #[test]
    fn bad_focus_values_are_named() {
        let text = "ProviderName,SubAccountId,ChargeCategory,ChargePeriodStart,BilledCost\nAWS,123456789012,Usage,2024-09-18 22:00:00,abc\n";
        let err = FocusCsv::new("f.csv", text.as_bytes()).unwrap().next().unwrap().unwrap_err();
        assert_eq!(err.to_string(), "f.csv: row 1, column `BilledCost`: `abc` is not a number");
        let err = FocusCsv::new("f.csv", "ProviderName,SubAccountId\n".as_bytes()).err().unwrap();
        assert!(err.to_string().contains("missing required column `ChargeCategory`"), "{err}");
        // The bounds and signs of the CUR reader hold for FOCUS too (issue 10.12).
        let header = "ProviderName,SubAccountId,ChargeCategory,ChargePeriodStart,BilledCost,ResourceId";
        let huge = format!("{header}\nAWS,123456789012,Usage,2024-09-18 22:00:00,1,{}\n", "r".repeat(3_000));
        let err = FocusCsv::new("f.csv", huge.as_bytes()).unwrap().next().unwrap().unwrap_err();
        assert!(err.to_string().starts_with("f.csv: row 1, column `ResourceId`: a value of 3000 bytes"), "{err}");
        let negative = format!("{header}\nAWS,123456789012,Usage,2024-09-18 22:00:00,-1,\n");
        let err = FocusCsv::new("f.csv", negative.as_bytes()).unwrap().next().unwrap().unwrap_err();
        assert!(err.to_string().contains("`-1 on a Usage charge` is negative"), "{err}");
        let credit = format!("{header}\nAWS,123456789012,Credit,2024-09-18 22:00:00,-1,\n");
        assert_eq!(FocusCsv::new("f.csv", credit.as_bytes()).unwrap().next().unwrap().unwrap().unblended_cost, -1.0);
    }
}
