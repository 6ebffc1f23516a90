//! Realistic synthetic CUR 2.0 months for tests and benchmarks (no real Bedrock CUR file
//! is public). Deterministic: the same seed and settings give the same bytes. Streaming:
//! rows are written as they are drawn, so ten million rows need no more memory than ten.
//!
//! What a month contains, in proportions chosen to exercise every attribution outcome:
//! dedicated workload roles (`finops-…`, named as the demo organisation's approvals name
//! them, so `finops serve --demo` attributes a generated month), broad Identity Center sessions
//! (`AWSReservedSSO_AdministratorAccess_…`), Coding users on a permission set, an LLM
//! gateway with per-user sessions, IAM users, federated users and Bedrock API keys, one account whose AI
//! lines carry no caller identity; first-party and AWS-billed Claude usage types,
//! Marketplace `MP:` rows (in millions of tokens), cross-region and batch tiers,
//! guardrail lines, Claude Platform CCU lines with a workspace tag, and non-AI lines.
//! A restatement (`restatement > 0`) redraws a share of the costs, as AWS does.

use std::io::{self, Write};

/// The columns written, as a CUR 2.0 Data Export delivers them: the product attributes
/// are keys of the `product` map (JSON text in CSV), not flat `product_…` columns — the
/// shape that hid Marketplace spend until issue 10.1.
pub const HEADER: &str = "identity_line_item_id,bill_billing_entity,bill_billing_period_start_date,line_item_usage_account_id,line_item_line_item_type,line_item_usage_start_date,line_item_product_code,line_item_usage_type,line_item_operation,line_item_resource_id,line_item_usage_amount,line_item_unblended_cost,pricing_unit,product,resource_tags,line_item_iam_principal,tags";

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthSpec {
    /// `YYYY-MM`.
    pub period: String,
    /// Data rows.
    pub rows: u64,
    /// Seed of the deterministic generator.
    pub seed: u64,
    /// 0 for the first delivery; 1, 2… for AWS restatements of the same month.
    pub restatement: u32,
}

/// SplitMix64: tiny, fast, deterministic; quality is ample for test data.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const ACCOUNTS: [&str; 4] = ["111122223333", "444455556666", "777788889999", "012345678901"];
/// The last account's export lacks caller identity on its AI lines.
const NO_IDENTITY_ACCOUNT: &str = "012345678901";
const REGIONS: [(&str, &str); 3] = [("USE1", "us-east-1"), ("USW2", "us-west-2"), ("EUC1", "eu-central-1")];
/// (usage-type model, product code, model id, USD per 1K input tokens, output multiplier)
const FIRST_PARTY: [(&str, &str, &str, f64, f64); 5] = [
    ("Claude3Haiku", "AmazonBedrock", "anthropic.claude-3-haiku-20240307-v1:0", 0.00025, 5.0),
    ("Claude4Sonnet", "AmazonBedrockService", "anthropic.claude-sonnet-4-20250514-v1:0", 0.003, 5.0),
    ("Claude4.6Sonnet", "AmazonBedrockService", "anthropic.claude-sonnet-4-6-v1:0", 0.0033, 5.0),
    ("NovaPro", "AmazonBedrock", "amazon.nova-pro-v1:0", 0.0008, 4.0),
    ("Llama3-1-70B", "AmazonBedrock", "meta.llama3-1-70b-instruct-v1:0", 0.00072, 1.0),
];
const DIRECTIONS: [(&str, f64); 4] = [
    ("input-tokens", 1.0),
    ("output-tokens", 0.0),
    ("cache-read-input-token-count", 0.1),
    ("cache-write-input-token-count", 1.25),
];

/// CUR 2.0's `tags` of a line: the LLM gateway's per-user sessions carry the tenant they
/// serve as a principal tag (`iamPrincipal/tenant`, five tenants), as a gateway that
/// passes session tags to `AssumeRole` delivers them.
fn principal_tags(principal: &str) -> String {
    match principal.split_once("/llm-gateway/gw-user-").and_then(|(_, user)| user.parse::<u32>().ok()) {
        Some(user) => serde_json::json!({ "iamPrincipal/tenant": format!("tenant-{}", user % 5) }).to_string(),
        None => String::new(),
    }
}

fn principal(d: &mut Draw, account: &str) -> String {
    if account == NO_IDENTITY_ACCOUNT {
        return String::new();
    }
    let user = d.below(40);
    match d.below(100) {
        0..=44 => {
            let role = d.pick(&[
                "finops-support-bot-88aa",
                "finops-claims-triage-u88g",
                "finops-contract-drafts-ev2e",
                "finops-ai-batch-summaries",
            ]);
            format!("arn:aws:sts::{account}:assumed-role/{role}/{}", d.pick(&["lambda-1", "ecs-task-7", "i-0abc"]))
        }
        45..=59 => format!(
            "arn:aws:sts::{account}:assumed-role/AWSReservedSSO_AdministratorAccess_5f1e2d3c4b5a6978/admin{user}@acme.example"
        ),
        60..=74 => format!(
            "arn:aws:sts::{account}:assumed-role/AWSReservedSSO_finops-platform-coding_0a1b2c3d4e5f6a7b/dev{user}@acme.example"
        ),
        75..=84 => format!("arn:aws:sts::{account}:assumed-role/llm-gateway/gw-user-{user}"),
        85..=92 => format!("arn:aws:sts::{account}:assumed-role/data-science-shared/notebook-{user}"),
        93..=96 => format!("arn:aws:iam::{account}:user/BedrockAPIKey-{user:04x}"),
        97 => format!("arn:aws:sts::{account}:federated-user/broker-user{user}"),
        _ => format!("arn:aws:iam::{account}:user/alice{user}"),
    }
}

/// Writes a month of CUR 2.0 CSV to `out`; returns rows written.
pub fn write_month(spec: &MonthSpec, out: &mut impl Write) -> io::Result<u64> {
    writeln!(out, "{HEADER}")?;
    let mut d = Draw(spec.seed);
    let period_start = format!("{}-01T00:00:00Z", spec.period);
    for n in 0..spec.rows {
        let account = *d.pick(&ACCOUNTS);
        let (region_code, region) = *d.pick(&REGIONS);
        let day = 1 + d.below(28);
        let hour = d.below(24);
        let start = format!("{}-{day:02}T{hour:02}:00:00Z", spec.period);
        let kind = d.below(100);
        // (entity, product code, usage type, operation, resource, amount, cost, unit, product name, tags, principal)
        let row = match kind {
            0..=64 => {
                let (model, code, model_id, input_price, out_mult) = *d.pick(&FIRST_PARTY);
                let (direction, mult) = *d.pick(&DIRECTIONS);
                let mult = if direction == "output-tokens" { out_mult } else { mult };
                let tier = match d.below(10) {
                    0 => "-cross-region-global",
                    1 => "-batch",
                    _ => "",
                };
                let thousands = 1.0 + d.below(50_000) as f64 / 10.0;
                let resource = if tier == "-cross-region-global" {
                    format!("arn:aws:bedrock:{region}:{account}:inference-profile/global.{model_id}")
                } else {
                    format!("arn:aws:bedrock:{region}::foundation-model/{model_id}")
                };
                let cost = thousands * input_price * mult * if tier == "-batch" { 0.5 } else { 1.0 };
                let op = *d.pick(&["InvokeModelInference", "InvokeModelStreamingInference"]);
                (
                    "AWS",
                    code.to_owned(),
                    format!("{region_code}-{model}-{direction}{tier}"),
                    op,
                    resource,
                    thousands,
                    cost,
                    "1K tokens",
                    "Amazon Bedrock".to_owned(),
                    String::new(),
                    principal(&mut d, account),
                )
            }
            65..=74 => {
                let (direction, price) =
                    *d.pick(&[("InputTokenCount", 3.0), ("OutputTokenCount", 15.0), ("CacheReadInputTokenCount", 0.3)]);
                let global = if d.below(3) == 0 { "_Global" } else { "" };
                let millions = (1 + d.below(2_000)) as f64 / 1000.0;
                let resource =
                    format!("arn:aws:bedrock:{region}::foundation-model/anthropic.claude-3-5-sonnet-20240620-v1:0");
                (
                    "AWS Marketplace",
                    "4a524th30q694o538qndh9ucht".to_owned(),
                    format!("{region_code}-MP:{region_code}_{direction}{global}-Units"),
                    "Usage",
                    resource,
                    millions,
                    millions * price,
                    "Units",
                    "Claude 3.5 Sonnet (Amazon Bedrock Edition)".to_owned(),
                    String::new(),
                    principal(&mut d, account),
                )
            }
            75..=79 => {
                let units = (1 + d.below(10_000)) as f64;
                let resource = format!(
                    "arn:aws:bedrock:{region}:{account}:guardrail/{}",
                    d.pick(&["gr0support01", "gr0claims002", "gr0orphan003"])
                );
                (
                    "AWS",
                    "AmazonBedrock".to_owned(),
                    format!("{region_code}-Guardrail-ContentPolicyUnitsConsumed"),
                    "ApplyGuardrail",
                    resource,
                    units,
                    units * 0.00015,
                    "Units",
                    "Amazon Bedrock".to_owned(),
                    String::new(),
                    String::new(),
                )
            }
            80..=84 => {
                let ccu = (100 + d.below(100_000)) as f64;
                let workspace = *d.pick(&["finance-contracts", "support-pilot", "unassigned-sandbox"]);
                (
                    "AWS Marketplace",
                    "cp7claudeplatformccu00000x".to_owned(),
                    format!("{region_code}-MP:{region_code}_CCU-Units"),
                    "Usage",
                    String::new(),
                    ccu,
                    ccu * 0.01,
                    "CCU",
                    "Claude Platform on AWS".to_owned(),
                    format!("{{\"user_workspace\":\"{workspace}\"}}"),
                    String::new(),
                )
            }
            _ => {
                let (code, usage, price) = *d.pick(&[
                    ("AmazonEC2", "BoxUsage:m5.large", 0.096),
                    ("AmazonS3", "TimedStorage-ByteHrs", 0.000_000_03),
                    ("AWSLambda", "Lambda-GB-Second", 0.000_016_7),
                ]);
                let amount = (1 + d.below(10_000)) as f64;
                (
                    "AWS",
                    code.to_owned(),
                    format!("{region_code}-{usage}"),
                    "RunInstances",
                    String::new(),
                    amount,
                    amount * price,
                    "Hrs",
                    code.to_owned(),
                    String::new(),
                    String::new(),
                )
            }
        };
        let (entity, code, usage_type, op, resource, amount, mut cost, unit, product, tags, principal) = row;
        // A restatement redraws one cost in eight, deterministically per restatement.
        if spec.restatement > 0 && (n.wrapping_mul(2_654_435_761) ^ u64::from(spec.restatement)) % 8 == 0 {
            cost *= 1.0 + f64::from(spec.restatement) * 0.03;
        }
        let line = Line { entity, code: &code, usage_type: &usage_type, op, resource: &resource, amount, cost, unit };
        let id = format!("{:016x}", spec.seed ^ n.wrapping_mul(0x9E37_79B9));
        line.write(out, &id, &period_start, account, &start, (&product, region), &tags, &principal)?;
    }
    Ok(spec.rows)
}

/// One line's billing fields, written in [`HEADER`]'s order by [`Line::write`].
struct Line<'a> {
    entity: &'a str,
    code: &'a str,
    usage_type: &'a str,
    op: &'a str,
    resource: &'a str,
    amount: f64,
    cost: f64,
    unit: &'a str,
}

impl Line<'_> {
    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        out: &mut impl Write,
        id: &str,
        period_start: &str,
        account: &str,
        start: &str,
        (product, region): (&str, &str),
        tags: &str,
        principal: &str,
    ) -> io::Result<()> {
        let Line { entity, code, usage_type, op, resource, amount, cost, unit } = self;
        let product = serde_json::json!({ "product_name": product, "region": region }).to_string();
        let principal_tags = principal_tags(principal);
        writeln!(
            out,
            "{id},{entity},{period_start},{account},Usage,{start},{code},{usage_type},{op},{resource},{amount},{cost:.10},{unit},\"{product}\",\"{tags}\",{principal},\"{principal_tags}\"",
            product = product.replace('"', "\"\""),
            tags = tags.replace('"', "\"\""),
            principal_tags = principal_tags.replace('"', "\"\""),
        )
    }
}

/// Bedrock model-invocation logs (JSON lines, as AWS delivers them) that match a CUR
/// month: one record per AI token line of `cur` that names its caller — same account,
/// caller, model, Region, hour and tokens — so the logs' hourly usage is the CUR's
/// (what reconciliation compares). Guardrail, Claude Platform and caller-less lines have
/// no record, as in AWS. Returns records written.
pub fn write_invocation_logs(cur: &[u8], out: &mut impl Write) -> io::Result<u64> {
    use crate::ai_facts::{AiFacts, AiPlatform};
    let csv = crate::csv_lines::CurCsv::new("synthetic.csv", cur).map_err(io::Error::other)?;
    let mut written = 0;
    for (n, line) in csv.enumerate() {
        let line = line.map_err(io::Error::other)?;
        let facts = AiFacts::of(&line);
        let bedrock = matches!(facts.platform, Some(AiPlatform::Bedrock | AiPlatform::Marketplace));
        let Some(principal) = line.iam_principal.as_deref().filter(|p| p.starts_with("arn:")) else { continue };
        if !bedrock || facts.guardrail || facts.token_type.is_empty() || !facts.model.contains('.') {
            continue;
        }
        let tokens = facts.tokens.round() as u64;
        let count = |kind: &str| if facts.token_type == kind { tokens } else { 0 };
        let record = serde_json::json!({
            "schemaType": "ModelInvocationLog",
            "schemaVersion": "1.0",
            "timestamp": (line.usage_start + chrono::Duration::minutes((n % 60) as i64))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "accountId": line.usage_account_id,
            "identity": { "arn": principal },
            "region": facts.region,
            "requestId": format!("00000000-0000-4000-8000-{n:012x}"),
            "operation": if n % 2 == 0 { "InvokeModel" } else { "Converse" },
            "modelId": facts.model,
            "input": {
                "inputContentType": "application/json",
                "inputTokenCount": count("input"),
                "cacheReadInputTokenCount": count("cache_read"),
                "cacheWriteInputTokenCount": count("cache_write"),
            },
            "output": { "outputContentType": "application/json", "outputTokenCount": count("output") },
        });
        writeln!(out, "{record}")?;
        written += 1;
    }
    Ok(written)
}

/// Invocation-log records at scale (benchmarks): `records` calls numbered from `first`,
/// spread over the first 28 days of `period` (`YYYY-MM`), by the month's callers, models and
/// Regions, each with a short prompt and reply in its bodies as Bedrock logs them. The same
/// seed and numbers give the same bytes; request ids are unique across numbers.
pub fn write_log_records(period: &str, seed: u64, first: u64, records: u64, out: &mut impl Write) -> io::Result<()> {
    let mut d = Draw(seed ^ first.wrapping_mul(0x2545_F491_4F6C_DD1D));
    for n in first..first + records {
        let account = *d.pick(&ACCOUNTS[..3]);
        let (_, region) = *d.pick(&REGIONS);
        let (_, _, model_id, _, _) = *d.pick(&FIRST_PARTY);
        let model_id = if d.below(5) == 0 { format!("us.{model_id}") } else { model_id.to_owned() };
        let (input, output) = (50 + d.below(4_000), 10 + d.below(1_500));
        let cache_read = if d.below(4) == 0 { d.below(20_000) } else { 0 };
        let record = serde_json::json!({
            "schemaType": "ModelInvocationLog",
            "schemaVersion": "1.0",
            "timestamp": format!("{period}-{:02}T{:02}:{:02}:{:02}Z", 1 + d.below(28), d.below(24), d.below(60), d.below(60)),
            "accountId": account,
            "identity": { "arn": principal(&mut d, account) },
            "region": region,
            "requestId": format!("{:08x}-{:04x}-4000-8000-{n:012x}", seed as u32, (n >> 48) as u16),
            "operation": *d.pick(&OPERATIONS_LOGGED),
            "modelId": model_id,
            "input": {
                "inputContentType": "application/json",
                "inputBodyJson": { "messages": [{ "role": "user", "content": [{ "text": "Summarise the claim notes for case {n} and list the missing documents." }] }], "inferenceConfig": { "maxTokens": 1024 } },
                "inputTokenCount": input,
                "cacheReadInputTokenCount": cache_read,
                "cacheWriteInputTokenCount": 0,
            },
            "output": {
                "outputContentType": "application/json",
                "outputBodyJson": { "output": { "message": { "role": "assistant", "content": [{ "text": "The claim is missing the repair estimate and the police report." }] } }, "stopReason": "end_turn", "usage": { "inputTokens": input, "outputTokens": output } },
                "outputTokenCount": output,
            },
        });
        writeln!(out, "{record}")?;
    }
    Ok(())
}

const OPERATIONS_LOGGED: [&str; 4] = ["Converse", "ConverseStream", "InvokeModel", "InvokeModelWithResponseStream"];

/// A runaway hour by hour: one role calling Claude 3 Haiku in us-west-2 far beyond its
/// usual rate, as a retry storm does — what the investigation detector is for.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// `YYYY-MM`.
    pub period: String,
    /// The account.
    pub account: String,
    /// The calling role.
    pub role: String,
    /// The day of the month.
    pub day: u32,
    /// The hours it ran, `[from, until)`.
    pub hours: std::ops::Range<u32>,
    /// Thousands of input tokens each hour.
    pub thousands_per_hour: f64,
}

/// Appends `incident`'s lines (no header) to a month written by [`write_month`]; returns
/// rows written.
pub fn write_incident(incident: &Incident, out: &mut impl Write) -> io::Result<u64> {
    let period_start = format!("{}-01T00:00:00Z", incident.period);
    let principal = format!("arn:aws:sts::{}:assumed-role/{}/retry-worker", incident.account, incident.role);
    let resource = "arn:aws:bedrock:us-west-2::foundation-model/anthropic.claude-3-haiku-20240307-v1:0";
    for hour in incident.hours.clone() {
        let start = format!("{}-{:02}T{hour:02}:00:00Z", incident.period, incident.day);
        let line = Line {
            entity: "AWS",
            code: "AmazonBedrock",
            usage_type: "USW2-Claude3Haiku-input-tokens",
            op: "InvokeModelInference",
            resource,
            amount: incident.thousands_per_hour,
            cost: incident.thousands_per_hour * 0.00025,
            unit: "1K tokens",
        };
        let id = format!("incident-{}-{}-{:02}-{hour:02}", incident.role, incident.period, incident.day);
        line.write(
            out,
            &id,
            &period_start,
            &incident.account,
            &start,
            ("Amazon Bedrock", "us-west-2"),
            "",
            &principal,
        )?;
    }
    Ok(u64::from(incident.hours.end.saturating_sub(incident.hours.start)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csv_lines::{CallerIdentity, CurCsv};
    use crate::principal::Principal;
    use crate::usage_type::{UsageKind, UsageType};

    fn month(rows: u64, restatement: u32) -> Vec<u8> {
        let mut out = Vec::new();
        write_month(&MonthSpec { period: "2026-11".into(), rows, seed: 42, restatement }, &mut out).unwrap();
        out
    }

    #[test]
    fn a_generated_month_reads_back_and_covers_every_case() {
        let bytes = month(20_000, 0);
        let csv = CurCsv::new("synthetic.csv", bytes.as_slice()).unwrap();
        assert_eq!(csv.caller_identity(), CallerIdentity::Present);
        let lines: Vec<_> = csv.collect::<Result<_, _>>().unwrap();
        assert_eq!(lines.len(), 20_000);
        let mut seen = std::collections::BTreeSet::new();
        for line in &lines {
            let principal = Principal::parse(line.iam_principal.as_deref().unwrap_or("")).unwrap();
            let usage = UsageType::parse(&line.usage_type).unwrap();
            let label = match (&principal, &usage.kind, usage.marketplace) {
                (_, UsageKind::Guardrail { .. }, _) => "guardrail",
                (_, _, true) if line.product_name.contains("Claude Platform") => "claude-platform",
                (_, UsageKind::Tokens { .. }, true) => "marketplace",
                (None, UsageKind::Tokens { .. }, _) => "no-identity",
                (Some(Principal::IdentityCenter { permission_set, .. }), _, _) if permission_set.contains("Admin") => {
                    "broad-sso"
                }
                (Some(Principal::IdentityCenter { .. }), _, _) => "coding-sso",
                (Some(Principal::AssumedRole { role, .. }), _, _) if role.starts_with("finops-") => "dedicated",
                (Some(Principal::AssumedRole { role, .. }), _, _) if role == "llm-gateway" => "gateway",
                (Some(Principal::IamUser { .. }), _, _)
                    if principal.as_ref().is_some_and(Principal::is_bedrock_api_key) =>
                {
                    "api-key"
                }
                (Some(Principal::FederatedUser { .. }), _, _) => "federated",
                (Some(_), _, _) => "other-principal",
                (None, _, _) => "non-ai",
            };
            seen.insert(label);
        }
        for expected in [
            "guardrail",
            "claude-platform",
            "marketplace",
            "no-identity",
            "broad-sso",
            "coding-sso",
            "dedicated",
            "gateway",
            "api-key",
            "federated",
            "other-principal",
            "non-ai",
        ] {
            assert!(seen.contains(expected), "{expected} missing from {seen:?}");
        }
    }

    #[test]
    fn invocation_logs_match_the_months_tokens_hour_by_hour() {
        use crate::ai_facts::{AiFacts, AiPlatform};
        let cur = month(2_000, 0);
        let mut logs = Vec::new();
        let written = write_invocation_logs(&cur, &mut logs).unwrap();
        assert!(written > 500, "{written}");
        let records = crate::invocation_log::read_file("logs.json", &logs).unwrap();
        assert_eq!(records.len() as u64, written);
        // The CUR's tokens of the same lines, by hour and token type.
        let mut expected: std::collections::BTreeMap<(String, &str), u64> = Default::default();
        for line in CurCsv::new("m", cur.as_slice()).unwrap() {
            let line = line.unwrap();
            let facts = AiFacts::of(&line);
            let bedrock = matches!(facts.platform, Some(AiPlatform::Bedrock | AiPlatform::Marketplace));
            if bedrock
                && !facts.guardrail
                && facts.model.contains('.')
                && !facts.token_type.is_empty()
                && line.iam_principal.as_deref().is_some_and(|p| p.starts_with("arn:"))
            {
                *expected.entry((line.usage_start.to_rfc3339(), facts.token_type)).or_default() +=
                    facts.tokens.round() as u64;
            }
        }
        let mut got: std::collections::BTreeMap<(String, &str), u64> = Default::default();
        for r in &records {
            use chrono::DurationRound;
            let hour = r.timestamp.duration_trunc(chrono::TimeDelta::hours(1)).unwrap().to_rfc3339();
            for (kind, tokens) in [
                ("input", r.input_tokens),
                ("output", r.output_tokens),
                ("cache_read", r.cache_read_tokens),
                ("cache_write", r.cache_write_tokens),
            ] {
                if tokens > 0 {
                    *got.entry((hour.clone(), kind)).or_default() += tokens;
                }
            }
        }
        expected.retain(|_, t| *t > 0);
        assert_eq!(got, expected);
    }

    #[test]
    fn generation_is_deterministic_and_restatements_differ_only_in_cost() {
        assert_eq!(month(2_000, 0), month(2_000, 0));
        let first: Vec<_> = CurCsv::new("a", month(2_000, 0).as_slice()).unwrap().collect::<Result<_, _>>().unwrap();
        let restated: Vec<_> = CurCsv::new("b", month(2_000, 1).as_slice()).unwrap().collect::<Result<_, _>>().unwrap();
        let changed = first.iter().zip(&restated).filter(|(a, b)| a.unblended_cost != b.unblended_cost).count();
        assert!(changed > 0 && changed < 2_000 / 4, "{changed} of 2000 costs restated");
        assert!(
            first
                .iter()
                .zip(&restated)
                .all(|(a, b)| a.usage_type == b.usage_type && a.iam_principal == b.iam_principal)
        );
    }
}
