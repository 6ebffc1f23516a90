//! `line_item_usage_type` for Bedrock: `USE1-Claude3Haiku-input-tokens`,
//! `USE1-Claude4Sonnet-output-tokens-long-context-cross-region-global`,
//! `USW2-MP:USW2_InputTokenCount-Units`, `USE1-Guardrail-ContentPolicyUnitsConsumed`…

use serde::{Deserialize, Serialize};

/// Which way tokens went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenDirection {
    /// Input (prompt) tokens.
    Input,
    /// Output (response) tokens.
    Output,
    /// Prompt-cache reads.
    CacheRead,
    /// Prompt-cache writes (5-minute).
    CacheWrite,
    /// Prompt-cache writes with a 1-hour lifetime.
    CacheWrite1h,
}

/// A tier or routing suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Routed through a global cross-region profile.
    CrossRegionGlobal,
    /// Batch inference (50 % of on-demand).
    Batch,
    /// Flex tier.
    Flex,
    /// Priority tier.
    Priority,
    /// Latency-optimised inference.
    LatencyOptimized,
    /// Long-context pricing.
    LongContext,
}

/// What kind of line a usage type describes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum UsageKind {
    /// Model tokens.
    Tokens {
        /// The model as the usage type names it (`Claude3Haiku`); `None` on Marketplace
        /// rows, where the model is only in the product name.
        model: Option<String>,
        /// Which way.
        direction: TokenDirection,
    },
    /// Guardrail policy units.
    Guardrail {
        /// The metered policy (`ContentPolicyUnitsConsumed`).
        policy: String,
    },
    /// Anything else Bedrock bills (provisioned throughput, customisation, AgentCore…).
    Other {
        /// The rest of the usage type after the region.
        rest: String,
    },
}

/// A parsed Bedrock usage type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageType {
    /// The billing region code (`USE1`).
    pub region_code: String,
    /// The AWS region it stands for (`us-east-1`), when known.
    pub region: Option<&'static str>,
    /// A Marketplace (`MP:`) usage type.
    pub marketplace: bool,
    /// What is metered.
    pub kind: UsageKind,
    /// Tier and routing suffixes, in the order they appear.
    pub tiers: Vec<Tier>,
}

/// Why a usage type could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a usage type: {reason}")]
pub struct UsageTypeError {
    /// The value.
    pub value: String,
    /// What is wrong.
    pub reason: &'static str,
}

/// The billing region codes CUR uses, and their regions.
pub const REGION_CODES: [(&str, &str); 24] = [
    ("USE1", "us-east-1"),
    ("USE2", "us-east-2"),
    ("USW1", "us-west-1"),
    ("USW2", "us-west-2"),
    ("UGW1", "us-gov-west-1"),
    ("UGE1", "us-gov-east-1"),
    ("CAN1", "ca-central-1"),
    ("SAE1", "sa-east-1"),
    ("EUC1", "eu-central-1"),
    ("EUC2", "eu-central-2"),
    ("EU", "eu-west-1"),
    ("EUW1", "eu-west-1"),
    ("EUW2", "eu-west-2"),
    ("EUW3", "eu-west-3"),
    ("EUN1", "eu-north-1"),
    ("EUS1", "eu-south-1"),
    ("APN1", "ap-northeast-1"),
    ("APN2", "ap-northeast-2"),
    ("APN3", "ap-northeast-3"),
    ("APS1", "ap-southeast-1"),
    ("APS2", "ap-southeast-2"),
    ("APS3", "ap-south-1"),
    ("APS4", "ap-southeast-3"),
    ("MES1", "me-south-1"),
];

const TIERS: [(&str, Tier); 6] = [
    ("cross-region-global", Tier::CrossRegionGlobal),
    ("latency-optimized", Tier::LatencyOptimized),
    ("long-context", Tier::LongContext),
    ("batch", Tier::Batch),
    ("flex", Tier::Flex),
    ("priority", Tier::Priority),
];

const DIRECTIONS: [(&str, TokenDirection); 6] = [
    ("cache-write-input-token-count-1-hour", TokenDirection::CacheWrite1h),
    ("cache-write-tokens-1h", TokenDirection::CacheWrite1h),
    ("cache-read-input-token-count", TokenDirection::CacheRead),
    ("cache-write-input-token-count", TokenDirection::CacheWrite),
    ("input-tokens", TokenDirection::Input),
    ("output-tokens", TokenDirection::Output),
];

impl UsageType {
    /// Parses a Bedrock usage type.
    pub fn parse(value: &str) -> Result<UsageType, UsageTypeError> {
        let value = value.trim();
        let err = |reason| UsageTypeError { value: value.to_owned(), reason };
        let (region_code, rest) = value.split_once('-').ok_or_else(|| err("no region prefix (e.g. USE1-)"))?;
        if region_code.is_empty() || !region_code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) {
            return Err(err("the region prefix is not a billing region code"));
        }
        if rest.is_empty() {
            return Err(err("nothing after the region prefix"));
        }
        let region = REGION_CODES.iter().find(|(c, _)| *c == region_code).map(|(_, r)| *r);
        let base = UsageType {
            region_code: region_code.to_owned(),
            region,
            marketplace: false,
            kind: UsageKind::Other { rest: rest.to_owned() },
            tiers: vec![],
        };
        if let Some(mp) = rest.strip_prefix("MP:") {
            return Ok(marketplace(base, mp));
        }
        if let Some(policy) = rest.strip_prefix("Guardrail-").or_else(|| rest.strip_prefix("GuardrailChecks-")) {
            return Ok(UsageType { kind: UsageKind::Guardrail { policy: policy.to_owned() }, ..base });
        }
        // `{Model}-{direction}[-{tier}…]`: find the direction; the model is what precedes it.
        for (marker, direction) in DIRECTIONS {
            let Some(at) = find_segment(rest, marker) else { continue };
            let model = rest[..at].trim_end_matches('-');
            if model.is_empty() {
                return Err(err("the model is missing before the token direction"));
            }
            let tail = &rest[at + marker.len()..];
            let tiers = tiers_in(tail);
            return Ok(UsageType {
                kind: UsageKind::Tokens { model: Some(model.to_owned()), direction },
                tiers,
                ..base
            });
        }
        Ok(base)
    }

    /// How many tokens one unit of `line_item_usage_amount` stands for: first-party rows
    /// are billed per thousand tokens, Marketplace rows per million.
    pub fn tokens_per_unit(&self) -> u64 {
        if self.marketplace { 1_000_000 } else { 1_000 }
    }
}

/// The byte offset where `marker` starts as a whole `-`-separated run of segments.
fn find_segment(rest: &str, marker: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = rest[from..].find(marker) {
        let at = from + i;
        let before_ok = at == 0 || rest.as_bytes()[at - 1] == b'-';
        let end = at + marker.len();
        let after_ok = end == rest.len() || rest.as_bytes()[end] == b'-';
        if before_ok && after_ok {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn tiers_in(tail: &str) -> Vec<Tier> {
    let mut found: Vec<(usize, Tier)> =
        TIERS.iter().filter_map(|(name, tier)| find_segment(tail, name).map(|at| (at, *tier))).collect();
    found.sort_by_key(|(at, _)| *at);
    found.into_iter().map(|(_, t)| t).collect()
}

/// `MP:USW2_InputTokenCount-Units`, `MP:USE1_CacheWrite1hInputTokenCount_Global-Units`,
/// `MP:USE1_input_tokens_global_standard-Units`.
fn marketplace(base: UsageType, mp: &str) -> UsageType {
    let body = mp.strip_suffix("-Units").unwrap_or(mp);
    let body = body.split_once('_').map_or(body, |(_, b)| b);
    let lower = body.to_ascii_lowercase();
    let direction = if lower.contains("cachewrite1h") || lower.contains("cache_write_1h") {
        Some(TokenDirection::CacheWrite1h)
    } else if lower.contains("cacheread") || lower.contains("cache_read") {
        Some(TokenDirection::CacheRead)
    } else if lower.contains("cachewrite") || lower.contains("cache_write") {
        Some(TokenDirection::CacheWrite)
    } else if lower.contains("inputtoken") || lower.contains("input_token") {
        Some(TokenDirection::Input)
    } else if lower.contains("outputtoken") || lower.contains("output_token") {
        Some(TokenDirection::Output)
    } else {
        None
    };
    let mut tiers = Vec::new();
    if lower.contains("global") {
        tiers.push(Tier::CrossRegionGlobal);
    }
    if lower.contains("batch") {
        tiers.push(Tier::Batch);
    }
    if lower.contains("lctx") || lower.contains("long_context") {
        tiers.push(Tier::LongContext);
    }
    let kind = match direction {
        Some(direction) => UsageKind::Tokens { model: None, direction },
        None => UsageKind::Other { rest: format!("MP:{mp}") },
    };
    UsageType { marketplace: true, kind, tiers, ..base }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tokens(u: &UsageType) -> (Option<&str>, TokenDirection) {
        match &u.kind {
            UsageKind::Tokens { model, direction } => (model.as_deref(), *direction),
            other => panic!("not tokens: {other:?}"),
        }
    }

    #[test]
    fn first_party_forms() {
        let u = UsageType::parse("USE1-Claude3Haiku-input-tokens").unwrap();
        assert_eq!((u.region_code.as_str(), u.region), ("USE1", Some("us-east-1")));
        assert_eq!(tokens(&u), (Some("Claude3Haiku"), TokenDirection::Input));
        assert_eq!(u.tokens_per_unit(), 1_000);
        let u = UsageType::parse("USE1-Claude4Sonnet-output-tokens-long-context-cross-region-global").unwrap();
        assert_eq!(tokens(&u), (Some("Claude4Sonnet"), TokenDirection::Output));
        assert_eq!(u.tiers, vec![Tier::LongContext, Tier::CrossRegionGlobal]);
        let u = UsageType::parse("USE1-Claude4.6Sonnet-cache-read-input-token-count").unwrap();
        assert_eq!(tokens(&u), (Some("Claude4.6Sonnet"), TokenDirection::CacheRead));
        let u = UsageType::parse("USE1-Claude4.6Sonnet-cache-write-input-token-count-1-hour").unwrap();
        assert_eq!(tokens(&u).1, TokenDirection::CacheWrite1h);
        let u = UsageType::parse("USE1-Llama3-1-405B-input-tokens-batch").unwrap();
        assert_eq!(tokens(&u), (Some("Llama3-1-405B"), TokenDirection::Input));
        assert_eq!(u.tiers, vec![Tier::Batch]);
        let u = UsageType::parse("USE1-openai.gpt-oss-120b-mantle-input-tokens-standard").unwrap();
        assert_eq!(tokens(&u).0, Some("openai.gpt-oss-120b-mantle"));
    }

    #[test]
    fn marketplace_forms_are_in_millions_and_carry_no_model() {
        let u = UsageType::parse("USW2-MP:USW2_InputTokenCount-Units").unwrap();
        assert!(u.marketplace);
        assert_eq!((u.region, tokens(&u)), (Some("us-west-2"), (None, TokenDirection::Input)));
        assert_eq!(u.tokens_per_unit(), 1_000_000);
        let u = UsageType::parse("USE1-MP:USE1_CacheWrite1hInputTokenCount_Global-Units").unwrap();
        assert_eq!(tokens(&u).1, TokenDirection::CacheWrite1h);
        assert_eq!(u.tiers, vec![Tier::CrossRegionGlobal]);
        let u = UsageType::parse("USE1-MP:USE1_input_tokens_global_standard-Units").unwrap();
        assert_eq!(tokens(&u).1, TokenDirection::Input);
        let u = UsageType::parse("USE1-MP:USE1_OutputTokenCount_Batch-Units").unwrap();
        assert_eq!((tokens(&u).1, u.tiers.as_slice()), (TokenDirection::Output, [Tier::Batch].as_slice()));
    }

    #[test]
    fn guardrails_and_other_lines() {
        let u = UsageType::parse("USE1-Guardrail-ContentPolicyUnitsConsumed").unwrap();
        assert_eq!(u.kind, UsageKind::Guardrail { policy: "ContentPolicyUnitsConsumed".into() });
        let u = UsageType::parse("USE1-GuardrailChecks-PromptAttackCheckUnitsConsumed").unwrap();
        assert!(matches!(u.kind, UsageKind::Guardrail { .. }));
        let u = UsageType::parse("USE1-ProvisionedThroughput-Claude3Haiku").unwrap();
        assert!(matches!(u.kind, UsageKind::Other { .. }));
        assert_eq!(
            UsageType::parse("XXZ9-NovaPro-input-tokens").unwrap().region,
            None,
            "unknown codes are kept, not guessed"
        );
        assert_eq!(UsageType::parse("nodash").unwrap_err().reason, "no region prefix (e.g. USE1-)");
        assert_eq!(
            UsageType::parse("USE1--input-tokens").unwrap_err().reason,
            "the model is missing before the token direction"
        );
    }

    fn direction() -> impl Strategy<Value = (&'static str, TokenDirection)> {
        prop::sample::select(DIRECTIONS.to_vec())
    }

    proptest! {
        /// Model names with dots and dashes survive, and the direction and tiers are found
        /// wherever they stand.
        #[test]
        fn first_party_round_trips(
            region in prop::sample::select(REGION_CODES.to_vec()),
            model in "[A-Z][A-Za-z0-9.]{0,12}(-[0-9A-Za-z.]{1,5}){0,2}",
            (marker, dir) in direction(),
            tiers in prop::sample::subsequence(TIERS.to_vec(), 0..3),
        ) {
            let suffix: String = tiers.iter().map(|(n, _)| format!("-{n}")).collect();
            let text = format!("{}-{model}-{marker}{suffix}", region.0);
            let u = UsageType::parse(&text).unwrap();
            prop_assert_eq!(u.region, Some(region.1));
            let (m, d) = tokens(&u);
            prop_assert_eq!(m, Some(model.as_str()));
            prop_assert_eq!(d, dir);
            let expected: Vec<Tier> = tiers.iter().map(|(_, t)| *t).collect();
            prop_assert_eq!(u.tiers, expected);
        }

        #[test]
        fn any_text_yields_a_value_or_an_error_never_a_panic(text in "\\PC{0,80}") {
            let _ = UsageType::parse(&text);
        }
    }
}
