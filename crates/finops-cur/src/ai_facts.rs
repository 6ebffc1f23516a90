//! What a CUR line says about AI spend, read once at ingest so that the query layer works on
//! plain columns: is it an AI line and on which platform, which region, model and token
//! type, how many tokens, which guardrail or workspace anchors it, and who called.
//!
//! Recognition follows AWS's own dashboards (DOMAIN.md §6): Bedrock product codes billed by
//! AWS; AWS Marketplace lines whose product name contains "Bedrock" (third-party models,
//! opaque product code); Claude Platform CCU lines (workspace in `resource_tags`).
//!
//! Reading is lenient on purpose: CUR is AWS's data, and one odd principal or a usage type
//! AWS introduced last week must not reject a month. What cannot be read stays empty and
//! the line still carries its dollars (classified by what is known).

use serde::{Deserialize, Serialize};

use crate::csv_lines::CurLine;
use crate::principal::Principal;
use crate::resource::BedrockResource;
use crate::usage_type::{TokenDirection, UsageKind, UsageType};

/// First-party Bedrock product codes (billing entity AWS).
pub const BEDROCK_PRODUCT_CODES: [&str; 4] =
    ["AmazonBedrock", "AmazonBedrockService", "AmazonBedrockFoundationModels", "AmazonBedrockAgentCore"];

/// Where an AI dollar was spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AiPlatform {
    /// Amazon Bedrock, billed by AWS.
    Bedrock,
    /// Third-party models via AWS Marketplace.
    Marketplace,
    /// Claude Platform on AWS (CCU).
    ClaudePlatform,
}

impl AiPlatform {
    /// The column value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bedrock => "bedrock",
            Self::Marketplace => "marketplace",
            Self::ClaudePlatform => "claude_platform",
        }
    }
}

/// Where an AI line's dollars come from, as an ingest reports them: first-party Bedrock,
/// AWS Marketplace models, Claude Platform, or guardrails (of either platform).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AiSource {
    /// Amazon Bedrock, billed by AWS (models, not guardrails).
    Bedrock,
    /// Third-party models via AWS Marketplace.
    Marketplace,
    /// Claude Platform on AWS (CCU).
    ClaudePlatform,
    /// Bedrock Guardrails.
    Guardrails,
}

impl AiSource {
    /// Every source, in report order (which is also their discriminants' order: a
    /// source indexes an array of totals).
    pub const ALL: [AiSource; 4] = [Self::Bedrock, Self::Marketplace, Self::ClaudePlatform, Self::Guardrails];

    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bedrock => "bedrock",
            Self::Marketplace => "marketplace",
            Self::ClaudePlatform => "claude_platform",
            Self::Guardrails => "guardrails",
        }
    }
}

/// How the caller is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// No principal on the line.
    None,
    /// An IAM user.
    IamUser,
    /// A Bedrock API key (an IAM user `BedrockAPIKey-…`).
    ApiKey,
    /// An STS assumed-role session.
    AssumedRole,
    /// An IAM Identity Center session.
    IdentityCenter,
    /// A user federated by `GetFederationToken`.
    FederatedUser,
    /// The account's root user.
    Root,
    /// Present but not a principal ARN this reader knows.
    Unrecognised,
}

impl PrincipalKind {
    /// The column value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::IamUser => "iam_user",
            Self::ApiKey => "api_key",
            Self::AssumedRole => "assumed_role",
            Self::IdentityCenter => "identity_center",
            Self::FederatedUser => "federated_user",
            Self::Root => "root",
            Self::Unrecognised => "unrecognised",
        }
    }
}

/// The AI facts of one line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AiFacts {
    /// `None` for non-AI lines.
    pub platform: Option<AiPlatform>,
    /// AWS region (`us-east-1`), empty when unknown.
    pub region: String,
    /// Model id from the resource (`anthropic.claude-3-haiku-20240307-v1:0`, inference
    /// profile prefix removed), else the usage type's model (`Claude3Haiku`), else empty.
    pub model: String,
    /// `input`, `output`, `cache_read`, `cache_write`, or empty.
    pub token_type: &'static str,
    /// Tokens (usage amount × the usage type's unit), 0 for non-token lines.
    pub tokens: f64,
    /// A guardrail line.
    pub guardrail: bool,
    /// The guardrail or Claude Platform workspace that anchors the line, empty otherwise:
    /// the guardrail ARN, or the workspace name.
    pub anchor: String,
    /// How the caller is named.
    pub principal_kind: PrincipalKind,
    /// The caller's account (from the ARN), empty without a principal.
    pub principal_account: String,
    /// The role (assumed role, or `AWSReservedSSO_{set}_{hex}`) or user name.
    pub principal_name: String,
    /// The session behind a role (an assumed role's session name, an Identity Center
    /// session's user), empty otherwise: what a gateway mapping rule's pattern matches.
    pub session: String,
    /// The caller's `iamPrincipal/` tags in [`principal_tags`]'s form, empty without any.
    pub principal_tags: String,
}

/// Separates one principal tag from the next in [`principal_tags`]'s form.
pub const TAG_SEPARATOR: char = '\u{1f}';
/// Separates a principal tag's key from its value in [`principal_tags`]'s form.
pub const TAG_KEY_VALUE: char = '\u{1e}';

/// The `iamPrincipal/` tags of CUR 2.0's `tags` map (JSON text), in one canonical text a
/// query can search: `␟key␞value␟key␞value␟`, keys without their prefix and in order, so
/// "carries `team` = `ds`" is a search for `␟team␞ds␟`. The separators (ASCII unit and
/// record separators) cannot occur in IAM tag keys or values. Empty when there are none.
pub fn principal_tags(tags: &str) -> String {
    if !tags.contains("iamPrincipal/") {
        return String::new();
    }
    let Ok(map) = serde_json::from_str::<std::collections::BTreeMap<String, serde_json::Value>>(tags) else {
        return String::new();
    };
    let mut out = String::new();
    for (key, value) in &map {
        let (Some(key), Some(value)) = (key.strip_prefix("iamPrincipal/"), value.as_str()) else { continue };
        if key.contains([TAG_SEPARATOR, TAG_KEY_VALUE]) || value.contains([TAG_SEPARATOR, TAG_KEY_VALUE]) {
            continue;
        }
        if out.is_empty() {
            out.push(TAG_SEPARATOR);
        }
        out.push_str(key);
        out.push(TAG_KEY_VALUE);
        out.push_str(value);
        out.push(TAG_SEPARATOR);
    }
    out
}

fn is_ai(line: &CurLine) -> Option<AiPlatform> {
    let name = line.product_name.as_str();
    if name.contains("Claude Platform") || line.usage_type.contains("_CCU") {
        return Some(AiPlatform::ClaudePlatform);
    }
    if line.billing_entity == "AWS Marketplace" {
        // A third-party model through Bedrock: its product name says "Bedrock" — or, when
        // the export carries no product name, its usage type has the Marketplace token
        // grammar (`USW2-MP:USW2_InputTokenCount-Units`).
        let tokens_by_grammar = name.is_empty()
            && UsageType::parse(&line.usage_type)
                .is_ok_and(|u| u.marketplace && matches!(u.kind, UsageKind::Tokens { .. }));
        return (name.contains("Bedrock") || tokens_by_grammar).then_some(AiPlatform::Marketplace);
    }
    // FOCUS names the service (`ServiceName` "Amazon Bedrock") where CUR has a code.
    let bedrock = BEDROCK_PRODUCT_CODES.contains(&line.product_code.as_str())
        || line.product_code == "Amazon Bedrock"
        || name == "Amazon Bedrock";
    bedrock.then_some(AiPlatform::Bedrock)
}

/// The workspace a Claude Platform line is tagged with: CUR 2.0 `user_workspace`, FOCUS
/// `user:workspace`, or plain `workspace`.
pub fn workspace_tag(tags: &str) -> Option<String> {
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(tags).ok()?;
    ["user_workspace", "user:workspace", "workspace"].iter().find_map(|k| map.get(*k)?.as_str().map(str::to_owned))
}

/// Where an AI line's dollars come from: guardrails of either platform, else its platform.
fn source_of(platform: Option<AiPlatform>, guardrail: bool) -> Option<AiSource> {
    match platform? {
        _ if guardrail => Some(AiSource::Guardrails),
        AiPlatform::Bedrock => Some(AiSource::Bedrock),
        AiPlatform::Marketplace => Some(AiSource::Marketplace),
        AiPlatform::ClaudePlatform => Some(AiSource::ClaudePlatform),
    }
}

/// Who called: the facts read from a line's `line_item_iam_principal` and `tags` alone.
#[derive(Debug, Clone, PartialEq)]
pub struct CallerFacts {
    /// How the caller is named.
    pub principal_kind: PrincipalKind,
    /// The caller's account (from the ARN), empty without a principal.
    pub principal_account: String,
    /// The role or user name (see [`AiFacts::principal_name`]).
    pub principal_name: String,
    /// The session behind a role, empty otherwise.
    pub session: String,
    /// The caller's `iamPrincipal/` tags in [`principal_tags`]'s form.
    pub principal_tags: String,
}

impl CallerFacts {
    /// Reads the caller of a line from its principal ARN (empty when absent) and its
    /// CUR 2.0 `tags` (JSON text).
    pub fn of(principal_arn: &str, tags: &str) -> CallerFacts {
        let principal = Principal::parse(principal_arn);
        let session = match &principal {
            Ok(Some(Principal::AssumedRole { session, .. })) => session.clone(),
            Ok(Some(Principal::IdentityCenter { user, .. })) => user.clone(),
            _ => String::new(),
        };
        let (principal_kind, principal_account, principal_name) = match &principal {
            Ok(None) => (PrincipalKind::None, String::new(), String::new()),
            Err(_) => (PrincipalKind::Unrecognised, String::new(), principal_arn.to_owned()),
            Ok(Some(p)) => {
                let kind = match p {
                    Principal::IamUser { .. } if p.is_bedrock_api_key() => PrincipalKind::ApiKey,
                    Principal::IamUser { .. } => PrincipalKind::IamUser,
                    Principal::AssumedRole { .. } => PrincipalKind::AssumedRole,
                    Principal::IdentityCenter { .. } => PrincipalKind::IdentityCenter,
                    Principal::FederatedUser { .. } => PrincipalKind::FederatedUser,
                    Principal::Root { .. } => PrincipalKind::Root,
                };
                let name = match p {
                    Principal::IamUser { name, .. } | Principal::FederatedUser { name, .. } => name.clone(),
                    Principal::Root { .. } => "root".to_owned(),
                    _ => p.role_name().unwrap_or_default(),
                };
                (kind, p.account().to_owned(), name)
            }
        };
        CallerFacts { principal_kind, principal_account, principal_name, session, principal_tags: principal_tags(tags) }
    }
}

/// What was used: the facts read from a line's billing entity, product code and name, usage
/// type, operation, resource id and resource tags alone — everything but its caller and its
/// amounts.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageFacts {
    /// `None` for non-AI lines.
    pub platform: Option<AiPlatform>,
    /// AWS region, empty when unknown.
    pub region: String,
    /// The model (see [`AiFacts::model`]).
    pub model: String,
    /// `input`, `output`, `cache_read`, `cache_write`, or empty.
    pub token_type: &'static str,
    /// Tokens per unit of the usage amount (0 for a line that counts none).
    pub per_unit: f64,
    /// A guardrail line.
    pub guardrail: bool,
    /// The guardrail or Claude Platform workspace that anchors the line, empty otherwise.
    pub anchor: String,
}

impl UsageFacts {
    /// Reads what `line` used.
    pub fn of(line: &CurLine) -> UsageFacts {
        let platform = is_ai(line);
        let mut facts = UsageFacts {
            platform,
            region: String::new(),
            model: String::new(),
            token_type: "",
            per_unit: 0.0,
            guardrail: false,
            anchor: String::new(),
        };
        if platform.is_none() {
            return facts;
        }
        let resource = BedrockResource::parse(&line.resource_id);
        if let Ok(usage) = UsageType::parse(&line.usage_type) {
            facts.region = usage.region.unwrap_or_default().to_owned();
            match &usage.kind {
                UsageKind::Tokens { model, direction } => {
                    facts.token_type = match direction {
                        TokenDirection::Input => "input",
                        TokenDirection::Output => "output",
                        TokenDirection::CacheRead => "cache_read",
                        TokenDirection::CacheWrite | TokenDirection::CacheWrite1h => "cache_write",
                    };
                    facts.per_unit = usage.tokens_per_unit() as f64;
                    facts.model = model.clone().unwrap_or_default();
                }
                UsageKind::Guardrail { .. } => facts.guardrail = true,
                UsageKind::Other { .. } => {}
            }
        }
        if line.operation == "ApplyGuardrail" || line.usage_type.contains("Guardrail") {
            facts.guardrail = true;
        }
        match &resource {
            Some(BedrockResource::Guardrail { region, .. }) => {
                facts.guardrail = true;
                if facts.region.is_empty() {
                    facts.region.clone_from(region);
                }
            }
            Some(r) => {
                if let Some(model) = r.model() {
                    facts.model = model.to_owned();
                }
            }
            None => {}
        }
        if facts.guardrail {
            facts.anchor = line.resource_id.trim().to_owned();
            facts.token_type = "";
            facts.per_unit = 0.0;
        } else if platform == Some(AiPlatform::ClaudePlatform) {
            facts.anchor = workspace_tag(&line.resource_tags).unwrap_or_default();
        }
        facts
    }

    /// Where the line's dollars come from, for an ingest's report; `None` for non-AI lines.
    pub fn source(&self) -> Option<AiSource> {
        source_of(self.platform, self.guardrail)
    }
}

impl AiFacts {
    /// Where the line's dollars come from, for an ingest's report; `None` for non-AI lines.
    pub fn source(&self) -> Option<AiSource> {
        source_of(self.platform, self.guardrail)
    }

    /// Reads the AI facts of `line`: what it used, who called, and its tokens. The two
    /// parts depend on disjoint fields, so ingest reads each once per distinct text.
    pub fn of(line: &CurLine) -> AiFacts {
        let usage = UsageFacts::of(line);
        let caller = CallerFacts::of(line.iam_principal.as_deref().unwrap_or(""), &line.tags);
        AiFacts {
            platform: usage.platform,
            region: usage.region,
            model: usage.model,
            token_type: usage.token_type,
            tokens: tokens(line.usage_amount, usage.per_unit),
            guardrail: usage.guardrail,
            anchor: usage.anchor,
            principal_kind: caller.principal_kind,
            principal_account: caller.principal_account,
            principal_name: caller.principal_name,
            session: caller.session,
            principal_tags: caller.principal_tags,
        }
    }
}

/// The tokens of a line: its usage amount × the tokens per unit of its usage type
/// ([`UsageFacts::per_unit`]); 0 for a line that counts none, whatever its amount's sign.
pub fn tokens(usage_amount: f64, per_unit: f64) -> f64 {
    if per_unit == 0.0 { 0.0 } else { usage_amount * per_unit }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;

    fn line(entity: &str, code: &str, usage: &str, resource: &str, principal: Option<&str>) -> CurLine {
        CurLine {
            usage_account_id: "111122223333".into(),
            line_item_type: "Usage".into(),
            usage_start: Utc.with_ymd_and_hms(2026, 11, 3, 10, 0, 0).unwrap(),
            product_code: code.into(),
            usage_type: usage.into(),
            operation: String::new(),
            resource_id: resource.into(),
            usage_amount: 2.0,
            unblended_cost: 1.0,
            billing_entity: entity.into(),
            product_name: if entity == "AWS Marketplace" {
                "Claude (Amazon Bedrock Edition)".into()
            } else {
                String::new()
            },
            iam_principal: principal.map(str::to_owned),
            resource_tags: String::new(),
            tags: String::new(),
        }
    }

    #[test]
    fn a_first_party_line_names_model_region_tokens_and_caller() {
        let f = AiFacts::of(&line(
            "AWS",
            "AmazonBedrock",
            "USE1-Claude3Haiku-cache-read-input-token-count",
            "arn:aws:bedrock:us-east-1:111122223333:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0",
            Some("arn:aws:sts::111122223333:assumed-role/finops-support-bot-x7k2/lambda"),
        ));
        assert_eq!(f.platform, Some(AiPlatform::Bedrock));
        assert_eq!((f.region.as_str(), f.model.as_str()), ("us-east-1", "anthropic.claude-3-haiku-20240307-v1:0"));
        assert_eq!((f.token_type, f.tokens), ("cache_read", 2_000.0));
        assert_eq!(f.principal_kind, PrincipalKind::AssumedRole);
        assert_eq!(
            (f.principal_account.as_str(), f.principal_name.as_str()),
            ("111122223333", "finops-support-bot-x7k2")
        );
    }

    #[test]
    fn marketplace_counts_millions_and_guardrails_anchor_on_their_arn() {
        let mp = AiFacts::of(&line(
            "AWS Marketplace",
            "4a524th30q694o538qndh9ucht",
            "USW2-MP:USW2_InputTokenCount-Units",
            "",
            None,
        ));
        assert_eq!(mp.platform, Some(AiPlatform::Marketplace));
        assert_eq!((mp.token_type, mp.tokens, mp.region.as_str()), ("input", 2_000_000.0, "us-west-2"));
        assert_eq!(mp.principal_kind, PrincipalKind::None);
        let arn = "arn:aws:bedrock:us-east-1:111122223333:guardrail/gr01";
        let g = AiFacts::of(&line("AWS", "AmazonBedrock", "USE1-Guardrail-ContentPolicyUnitsConsumed", arn, Some("")));
        assert!(g.guardrail);
        assert_eq!((g.anchor.as_str(), g.tokens), (arn, 0.0));
        // FOCUS: the service by name, the meter as the usage type.
        let focus = AiFacts::of(&line("AWS", "Amazon Bedrock", "USE1-NovaPro-input-tokens", "", None));
        assert_eq!((focus.platform, focus.token_type, focus.tokens), (Some(AiPlatform::Bedrock), "input", 2_000.0));
        let ec2 = AiFacts::of(&line("AWS", "AmazonEC2", "BoxUsage:m5.large", "", None));
        assert_eq!(ec2.platform, None);
        let other_mp = AiFacts {
            ..AiFacts::of(&CurLine {
                product_name: "Some SaaS".into(),
                ..line("AWS Marketplace", "x", "MP:x", "", None)
            })
        };
        assert_eq!(other_mp.platform, None);
    }

    /// Regression (issue 10.1): a Marketplace model line whose export carries no product
    /// name is recognised by its usage-type grammar; another Marketplace product is not.
    #[test]
    fn marketplace_model_lines_are_recognised_by_their_usage_type_without_a_product_name() {
        let mut l =
            line("AWS Marketplace", "4a524th30q694o538qndh9ucht", "USE1-MP:USE1_OutputTokenCount-Units", "", None);
        l.product_name = String::new();
        let f = AiFacts::of(&l);
        assert_eq!((f.platform, f.source()), (Some(AiPlatform::Marketplace), Some(AiSource::Marketplace)));
        assert_eq!(f.tokens, 2_000_000.0);
        let mut saas = line("AWS Marketplace", "x", "SomeSaaS-Seats", "", None);
        saas.product_name = String::new();
        assert_eq!(AiFacts::of(&saas).platform, None);
        let arn = "arn:aws:bedrock:us-east-1:111122223333:guardrail/gr01";
        let g = AiFacts::of(&line("AWS", "AmazonBedrock", "USE1-Guardrail-ContentPolicyUnitsConsumed", arn, None));
        assert_eq!(g.source(), Some(AiSource::Guardrails));
    }

    #[test]
    fn claude_platform_lines_anchor_on_their_workspace_tag() {
        let mut l = line("AWS Marketplace", "cp7", "USE1-MP:USE1_CCU-Units", "", None);
        l.product_name = "Claude Platform on AWS".into();
        l.resource_tags = r#"{"user_workspace":"support-pilot","user_team":"cx"}"#.into();
        let f = AiFacts::of(&l);
        assert_eq!(f.platform, Some(AiPlatform::ClaudePlatform));
        assert_eq!(f.anchor, "support-pilot");
        assert_eq!(workspace_tag("not json"), None);
        assert_eq!(workspace_tag(r#"{"user:workspace":"finance-contracts"}"#).as_deref(), Some("finance-contracts"));
    }

    #[test]
    fn identity_center_sessions_are_named_by_their_reserved_role() {
        let f = AiFacts::of(&line(
            "AWS",
            "AmazonBedrockService",
            "USE1-Claude4Sonnet-output-tokens",
            "",
            Some(
                "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_AdministratorAccess_5f1e2d3c4b5a6978/ana@acme.example",
            ),
        ));
        assert_eq!(f.principal_kind, PrincipalKind::IdentityCenter);
        assert_eq!(f.principal_name, "AWSReservedSSO_AdministratorAccess_5f1e2d3c4b5a6978");
        assert_eq!((f.model.as_str(), f.token_type), ("Claude4Sonnet", "output"));
    }

    #[test]
    fn a_gateway_call_keeps_its_session_and_its_principal_tags() {
        let mut l = line(
            "AWS",
            "AmazonBedrock",
            "USE1-Claude3Haiku-input-tokens",
            "",
            Some("arn:aws:sts::111122223333:assumed-role/llm-gateway/gw-user-17"),
        );
        l.tags =
            r#"{"iamPrincipal/team":"ds","iamPrincipal/cost-center":"12345","userAttribute/dept":"x","account":"y"}"#
                .into();
        let f = AiFacts::of(&l);
        assert_eq!((f.principal_name.as_str(), f.session.as_str()), ("llm-gateway", "gw-user-17"));
        assert_eq!(f.principal_tags, "\u{1f}cost-center\u{1e}12345\u{1f}team\u{1e}ds\u{1f}");
        assert_eq!(principal_tags(r#"{"user_team":"cx"}"#), "", "only iamPrincipal/ tags");
        assert_eq!(principal_tags("not json iamPrincipal/"), "");
    }

    #[test]
    fn sources_index_their_totals_in_report_order() {
        for (i, source) in AiSource::ALL.iter().enumerate() {
            assert_eq!(*source as usize, i, "{source:?}");
        }
    }

    proptest! {
        // Whatever the principal tags, each one is found by its search form and no other
        // key's value is mistaken for it.
        #[test]
        fn every_principal_tag_is_found_by_its_search_form(
            tags in proptest::collection::btree_map("[A-Za-z0-9 _.:/=+@-]{1,12}", "[A-Za-z0-9 _.:/=+@-]{0,12}", 0..6)
        ) {
            let json = serde_json::to_string(
                &tags.iter().map(|(k, v)| (format!("iamPrincipal/{k}"), v.clone())).collect::<std::collections::BTreeMap<_, _>>(),
            ).unwrap();
            let form = principal_tags(&json);
            for (k, v) in &tags {
                let wanted = format!("{TAG_SEPARATOR}{k}{TAG_KEY_VALUE}{v}{TAG_SEPARATOR}");
                prop_assert!(form.contains(&wanted));
                let other = format!("{TAG_SEPARATOR}{k}{TAG_KEY_VALUE}{v}-not{TAG_SEPARATOR}");
                prop_assert!(!form.contains(&other), "a longer value is not this one");
            }
            prop_assert_eq!(form.matches(TAG_KEY_VALUE).count(), tags.len());
        }


        #[test]
        fn reading_facts_is_total(code in ".{0,24}", usage in ".{0,48}", resource in ".{0,80}", principal in ".{0,80}", tags in ".{0,40}") {
            let mut l = line("AWS", &code, &usage, &resource, Some(&principal));
            l.resource_tags = tags;
            let f = AiFacts::of(&l);
            if f.platform.is_none() {
                prop_assert!(f.model.is_empty() && f.tokens == 0.0 && !f.guardrail);
            }
            prop_assert!(f.tokens >= 0.0 || l.usage_amount < 0.0);
        }
    }
}
