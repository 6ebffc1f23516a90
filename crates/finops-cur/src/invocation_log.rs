//! Bedrock model-invocation log records (issue 13.1; NEAR-REAL-TIME.md §1): the fast
//! signal beside CUR's late one. A record says who (`identity.arn`) called which model
//! (`modelId`, as the caller passed it) in which account and region, when, and how many
//! tokens of each kind it used. `finops_attribution::invocation_usage` folds a file's
//! records into priced hourly usage (this reader is its definition of a valid file).
//!
//! Files come as AWS delivers them — JSON lines, gzip or not — or as one JSON object or
//! array. A malformed record gets a precise error (file, line, field) and the whole file is
//! refused: a partial file would under-count silently.

use std::io::Read;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::resource::BedrockResource;

/// The operations model-invocation logging records.
pub const OPERATIONS: [&str; 4] = ["Converse", "ConverseStream", "InvokeModel", "InvokeModelWithResponseStream"];

/// One invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationRecord {
    /// When (second precision).
    pub timestamp: DateTime<Utc>,
    /// The 12-digit account.
    pub account: String,
    /// The Region the call was made to.
    pub region: String,
    /// `identity.arn`: the caller.
    pub principal_arn: String,
    /// `requestId`: the dedupe key.
    pub request_id: String,
    /// One of [`OPERATIONS`].
    pub operation: String,
    /// `modelId` as the caller passed it (id, ARN or profile).
    pub model_id: String,
    /// The Region that served a cross-Region profile call, when logged.
    pub inference_region: Option<String>,
    /// Input tokens (cache reads and writes excluded, as AWS counts them).
    pub input_tokens: u64,
    /// Cache-read input tokens.
    pub cache_read_tokens: u64,
    /// Cache-write input tokens.
    pub cache_write_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
}

impl InvocationRecord {
    /// The model behind `model_id` ([`model_of`]).
    pub fn model(&self) -> String {
        model_of(&self.model_id)
    }
}

/// The model behind a `modelId` as a caller passes it: a bare id as is, a foundation-model
/// ARN's id, a system profile's model (its geography prefix dropped: `us.`, `eu.`, `apac.`,
/// `global.`); an application inference profile is named as such (its model is its owner's
/// to say).
pub fn model_of(model_id: &str) -> String {
    if let Some(resource) = BedrockResource::parse(model_id) {
        return match (&resource, resource.model()) {
            (_, Some(model)) => model.to_owned(),
            (BedrockResource::ApplicationInferenceProfile { id, .. }, None) => {
                format!("application-inference-profile/{id}")
            }
            _ => model_id.to_owned(),
        };
    }
    for geography in GEOGRAPHIES {
        if let Some(model) = model_id.strip_prefix(geography)
            && model.contains('.')
        {
            return model.to_owned();
        }
    }
    model_id.to_owned()
}

/// The geography prefixes of system-defined cross-Region inference profiles.
const GEOGRAPHIES: [&str; 8] = ["us.", "eu.", "apac.", "us-gov.", "ca.", "jp.", "au.", "global."];

/// The id a price table prices a `modelId` under: a bare id or system profile id as is
/// (a `global.` profile has its own rate, a geographic one its source Region's), a
/// foundation-model or system-profile ARN's id; `None` for an application inference
/// profile or a guardrail, whose model the call does not say.
pub fn priced_model_id(model_id: &str) -> Option<String> {
    match BedrockResource::parse(model_id) {
        Some(BedrockResource::FoundationModel { model, .. }) => Some(model),
        Some(BedrockResource::SystemInferenceProfile { profile, .. }) => Some(profile),
        Some(_) => None,
        None => Some(model_id.to_owned()),
    }
}

/// Why a log file is refused: where, and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}, line {line}: `{field}` {reason}")]
pub struct LogError {
    /// The file.
    pub file: String,
    /// The 1-based line (of the decompressed text; 1 for a single object).
    pub line: usize,
    /// The field (`identity.arn`, `input.inputTokenCount`, … or `record`).
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

/// One record from its JSON, or which field is wrong.
fn record(v: &Value, fail: &dyn Fn(&str, String) -> LogError) -> Result<InvocationRecord, LogError> {
    if !v.is_object() {
        return Err(fail("record", "is not a JSON object".into()));
    }
    if let Some(kind) = v.get("schemaType")
        && kind != "ModelInvocationLog"
    {
        return Err(fail("schemaType", format!("is {kind}, not \"ModelInvocationLog\"")));
    }
    let text = |path: &str| -> Result<String, LogError> {
        let pointer = format!("/{}", path.replace('.', "/"));
        match v.pointer(&pointer) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
            Some(Value::String(_)) => Err(fail(path, "is empty".into())),
            Some(other) => Err(fail(path, format!("is {other}, not a string"))),
            None => Err(fail(path, "is missing".into())),
        }
    };
    let count = |path: &str, required: bool| -> Result<u64, LogError> {
        let pointer = format!("/{}", path.replace('.', "/"));
        match v.pointer(&pointer) {
            Some(n) if n.is_u64() => Ok(n.as_u64().unwrap_or(0)),
            Some(Value::Null) | None if !required => Ok(0),
            None => Err(fail(path, "is missing".into())),
            Some(other) => Err(fail(path, format!("is {other}, not a count of tokens (a whole number ≥ 0)"))),
        }
    };
    let stamp = text("timestamp")?;
    let timestamp = DateTime::parse_from_rfc3339(&stamp)
        .map_err(|e| fail("timestamp", format!("`{stamp}` is not an RFC 3339 instant: {e}")))?
        .with_timezone(&Utc);
    let account = text("accountId")?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(fail("accountId", format!("`{account}` is not a 12-digit account id")));
    }
    let operation = text("operation")?;
    if !OPERATIONS.contains(&operation.as_str()) {
        return Err(fail("operation", format!("`{operation}` is not one of {}", OPERATIONS.join(", "))));
    }
    let principal_arn = text("identity.arn")?;
    if !principal_arn.starts_with("arn:") {
        return Err(fail("identity.arn", format!("`{principal_arn}` is not an ARN")));
    }
    Ok(InvocationRecord {
        timestamp,
        account,
        region: text("region")?,
        principal_arn,
        request_id: text("requestId")?,
        operation,
        model_id: text("modelId")?,
        inference_region: v.get("inferenceRegion").and_then(Value::as_str).map(str::to_owned),
        input_tokens: count("input.inputTokenCount", true)?,
        cache_read_tokens: count("input.cacheReadInputTokenCount", false)?,
        cache_write_tokens: count("input.cacheWriteInputTokenCount", false)?,
        output_tokens: count("output.outputTokenCount", true)?,
    })
}

/// Every record of a delivered file (`name` for errors): gzip or plain, JSON lines or one
/// object or array. A request id seen twice in the file counts once.
pub fn read_file(name: &str, bytes: &[u8]) -> Result<Vec<InvocationRecord>, LogError> {
    let fail_at = |line: usize| {
        move |field: &str, reason: String| LogError { file: name.to_owned(), line, field: field.to_owned(), reason }
    };
    let text = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_string(&mut text)
            .map_err(|e| fail_at(0)("file", format!("is not readable gzip text: {e}")))?;
        text
    } else {
        String::from_utf8(bytes.to_vec()).map_err(|e| fail_at(0)("file", format!("is not UTF-8: {e}")))?
    };
    let mut out = Vec::new();
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') || (trimmed.starts_with('{') && !trimmed.trim_end().contains('\n')) {
        // One JSON document: an array of records, or a single record.
        let doc: Value =
            serde_json::from_str(&text).map_err(|e| fail_at(e.line())("record", format!("is not JSON: {e}")))?;
        match doc {
            Value::Array(items) => {
                for item in &items {
                    out.push(record(item, &fail_at(1))?);
                }
            }
            other => out.push(record(&other, &fail_at(1))?),
        }
    } else {
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let fail = fail_at(i + 1);
            let v: Value = serde_json::from_str(line).map_err(|e| fail("record", format!("is not JSON: {e}")))?;
            out.push(record(&v, &fail)?);
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|r| seen.insert(r.request_id.clone()));
    Ok(out)
}

/// Which tokens a usage counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogTokenType {
    /// Input.
    Input,
    /// Output.
    Output,
    /// Cache read.
    CacheRead,
    /// Cache write.
    CacheWrite,
}

impl LogTokenType {
    /// Every token type, in the order usage lists them.
    pub const ALL: [LogTokenType; 4] = [Self::Input, Self::Output, Self::CacheRead, Self::CacheWrite];

    /// Its name, as CUR's AI facts name token types.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Input => "input",
            Self::Output => "output",
            Self::CacheRead => "cache_read",
            Self::CacheWrite => "cache_write",
        }
    }

    /// The token type named `name` ([`Self::as_str`]).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// NEAR-REAL-TIME.md §1.4's record A (a real record, bodies shortened), account filled in.
    const A: &str = r#"{"schemaType":"ModelInvocationLog","schemaVersion":"1.0","timestamp":"2025-03-11T00:38:02Z","accountId":"111122223333","identity":{"arn":"arn:aws:iam::111122223333:user/dheeraj"},"region":"us-east-1","requestId":"ff4b6c63-5561-4431-93b8-06a817275900","operation":"ConverseStream","modelId":"amazon.nova-lite-v1:0","input":{"inputContentType":"application/json","inputBodyJson":{"messages":[]},"inputTokenCount":4,"cacheReadInputTokenCount":0,"cacheWriteInputTokenCount":0},"output":{"outputContentType":"application/json","outputBodyJson":{"usage":{"inputTokens":4,"outputTokens":38}},"outputTokenCount":38}}"#;

    /// Record B: an application inference profile, a cache write, re-routed.
    const B: &str = r#"{"timestamp":"2025-08-07T02:48:23Z","accountId":"111122223333","identity":{"arn":"arn:aws:sts::111122223333:assumed-role/finops-support-bot-88aa/worker"},"region":"us-east-1","requestId":"c448be01-5f60-4d31-8049-000000000001","operation":"InvokeModelWithResponseStream","modelId":"arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/0xumpou8xusv","input":{"inputContentType":"application/json","inputBodyS3Path":"s3://b/k","inputTokenCount":3,"cacheReadInputTokenCount":0,"cacheWriteInputTokenCount":28857},"output":{"outputContentType":"application/json","outputBodyJson":"<stream events>","outputTokenCount":142},"inferenceRegion":"us-east-2","schemaType":"ModelInvocationLog","schemaVersion":"1.0"}"#;

    fn gzip(text: &str) -> Vec<u8> {
        use std::io::Write;
        let mut out = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        out.write_all(text.as_bytes()).unwrap();
        out.finish().unwrap()
    }

    #[test]
    fn reads_the_real_records_as_json_lines_gzip_or_an_array() {
        let lines = format!("{A}\n{B}\n");
        let plain = read_file("a.json", lines.as_bytes()).unwrap();
        assert_eq!(plain.len(), 2);
        assert_eq!(read_file("a.json.gz", &gzip(&lines)).unwrap(), plain);
        assert_eq!(read_file("a.json", format!("[{A},{B}]").as_bytes()).unwrap(), plain);
        assert_eq!(read_file("one.json", A.as_bytes()).unwrap(), plain[..1]);
        let a = &plain[0];
        assert_eq!(
            (a.account.as_str(), a.operation.as_str(), a.input_tokens, a.output_tokens),
            ("111122223333", "ConverseStream", 4, 38)
        );
        assert_eq!(a.model(), "amazon.nova-lite-v1:0");
        let b = &plain[1];
        assert_eq!((b.cache_write_tokens, b.inference_region.as_deref()), (28857, Some("us-east-2")));
        assert_eq!(b.model(), "application-inference-profile/0xumpou8xusv");
        // A request delivered twice counts once.
        assert_eq!(read_file("dup.json", format!("{A}\n{A}\n").as_bytes()).unwrap().len(), 1);
    }

    #[test]
    fn model_ids_as_callers_pass_them_name_the_model() {
        let with = |model_id: &str| InvocationRecord {
            model_id: model_id.into(),
            ..read_file("a", A.as_bytes()).unwrap().remove(0)
        };
        assert_eq!(
            with("us.anthropic.claude-sonnet-4-20250514-v1:0").model(),
            "anthropic.claude-sonnet-4-20250514-v1:0"
        );
        assert_eq!(with("global.anthropic.claude-sonnet-4-6-v1:0").model(), "anthropic.claude-sonnet-4-6-v1:0");
        assert_eq!(
            with("arn:aws:bedrock:us-west-2::foundation-model/anthropic.claude-3-haiku-20240307-v1:0").model(),
            "anthropic.claude-3-haiku-20240307-v1:0"
        );
        assert_eq!(
            with("arn:aws:bedrock:eu-west-1:111122223333:inference-profile/eu.amazon.nova-pro-v1:0").model(),
            "amazon.nova-pro-v1:0"
        );
    }

    #[test]
    fn a_malformed_record_names_file_line_and_field_and_refuses_the_file() {
        let bad = A.replace("\"accountId\":\"111122223333\"", "\"accountId\":\"12\"");
        let e = read_file("logs/x.json.gz", format!("{B}\n{bad}\n").as_bytes()).unwrap_err();
        assert_eq!((e.file.as_str(), e.line, e.field.as_str()), ("logs/x.json.gz", 2, "accountId"));
        let e = read_file("x", A.replace("\"outputTokenCount\":38", "\"outputTokenCount\":-1").as_bytes()).unwrap_err();
        assert_eq!(e.field, "output.outputTokenCount");
        let e = read_file(
            "x",
            A.replace("\"identity\":{\"arn\":\"arn:aws:iam::111122223333:user/dheeraj\"},", "").as_bytes(),
        )
        .unwrap_err();
        assert_eq!((e.field.as_str(), e.reason.as_str()), ("identity.arn", "is missing"));
        let e = read_file("x", format!("{A}\nnot json\n").as_bytes()).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (2, "record"));
        let e = read_file("x", A.replace("ConverseStream", "Embed").as_bytes()).unwrap_err();
        assert!(e.to_string().starts_with("x, line 1: `operation` `Embed` is not one of"), "{e}");
    }

    proptest! {
        // Any bytes are answered — records, or an error naming a line within the file —
        // never a panic.
        #[test]
        fn any_bytes_are_read_or_refused_with_a_place(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            match read_file("f", &bytes) {
                Ok(records) => prop_assert!(records.iter().all(|r| r.account.len() == 12)),
                Err(e) => prop_assert!(e.line <= bytes.iter().filter(|b| **b == b'\n').count() + 1),
            }
        }

        // Token counts survive the round trip, whatever they are.
        #[test]
        fn counts_are_read_exactly(input in 0u64..u64::MAX / 4, output in 0u64..u64::MAX / 4) {
            let text = A.replace("\"inputTokenCount\":4", &format!("\"inputTokenCount\":{input}"))
                .replace("\"outputTokenCount\":38", &format!("\"outputTokenCount\":{output}"));
            let r = read_file("f", text.as_bytes()).unwrap().remove(0);
            prop_assert_eq!((r.input_tokens, r.output_tokens), (input, output));
        }
    }
}
