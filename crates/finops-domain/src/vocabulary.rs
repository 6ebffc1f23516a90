//! The value types the governance workflow speaks in: AWS accounts, regions, models,
//! platforms, invoke actions, money and tokens. Each validates on construction and
//! serialises as its plain text or number.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A 12-digit AWS account id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(String);

impl AccountId {
    /// Accepts exactly 12 ASCII digits.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(text.to_owned()))
        } else {
            Err(format!("`{text}` is not a 12-digit AWS account id"))
        }
    }
    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An AWS region code such as `us-east-1` or `us-gov-west-1`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Region(String);

impl Region {
    /// Accepts `{area}-{direction}-{n}` with an optional `gov`/`iso` partition segment.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split('-').collect();
        let lower = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase());
        let ok = match parts.as_slice() {
            [area, dir, n] => area.len() == 2 && lower(area) && lower(dir) && n.parse::<u8>().is_ok(),
            [area, part, dir, n] => {
                area.len() == 2
                    && lower(area)
                    && matches!(*part, "gov" | "iso" | "isob")
                    && lower(dir)
                    && n.parse::<u8>().is_ok()
            }
            _ => false,
        };
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(format!("`{text}` is not an AWS region code such as us-east-1"))
        }
    }
    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A model id as Bedrock names it (`anthropic.claude-sonnet-4-20250514-v1:0`), or a
/// Claude Platform model name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ModelId(String);

impl ModelId {
    /// Accepts 1–128 characters from `[A-Za-z0-9._:/-]`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || "._:/-".contains(c);
        if !text.is_empty() && text.len() <= 128 && text.chars().all(allowed) {
            Ok(Self(text.to_owned()))
        } else {
            Err(format!("`{text}` is not a model id (1–128 of A-Z a-z 0-9 . _ : / -)"))
        }
    }
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! text_newtype_impls {
    ($($t:ident),*) => {$(
        impl TryFrom<String> for $t {
            type Error = String;
            fn try_from(value: String) -> Result<Self, String> {
                Self::parse(&value)
            }
        }
        impl From<$t> for String {
            fn from(value: $t) -> String {
                value.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}
text_newtype_impls!(AccountId, Region, ModelId);

/// Where a workload's model runs and is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    /// First-party models on Amazon Bedrock.
    AmazonBedrock,
    /// Third-party models through Bedrock, billed by AWS Marketplace.
    AwsMarketplace,
    /// Claude Platform on AWS, billed in Claude Consumption Units; workspaces allocate.
    ClaudePlatform,
}

impl Platform {
    /// The lower-case name used in stream ids and commands.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AmazonBedrock => "amazon_bedrock",
            Self::AwsMarketplace => "aws_marketplace",
            Self::ClaudePlatform => "claude_platform",
        }
    }
}

/// The Bedrock actions a catalog approval and a workload's policy may allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum InvokeAction {
    /// `bedrock:InvokeModel`
    InvokeModel,
    /// `bedrock:InvokeModelWithResponseStream`
    InvokeModelWithResponseStream,
    /// `bedrock:Converse`
    Converse,
    /// `bedrock:ConverseStream`
    ConverseStream,
    /// `bedrock:CreateModelInvocationJob` (batch)
    CreateModelInvocationJob,
    /// `bedrock:ApplyGuardrail`
    ApplyGuardrail,
}

impl InvokeAction {
    /// Every action, in IAM's spelling order.
    pub const ALL: [InvokeAction; 6] = [
        Self::InvokeModel,
        Self::InvokeModelWithResponseStream,
        Self::Converse,
        Self::ConverseStream,
        Self::CreateModelInvocationJob,
        Self::ApplyGuardrail,
    ];

    /// The IAM action name, `bedrock:…`.
    pub fn iam_action(self) -> &'static str {
        match self {
            Self::InvokeModel => "bedrock:InvokeModel",
            Self::InvokeModelWithResponseStream => "bedrock:InvokeModelWithResponseStream",
            Self::Converse => "bedrock:Converse",
            Self::ConverseStream => "bedrock:ConverseStream",
            Self::CreateModelInvocationJob => "bedrock:CreateModelInvocationJob",
            Self::ApplyGuardrail => "bedrock:ApplyGuardrail",
        }
    }
}

/// Where and how a model may be used: the accounts, regions and actions of an approval.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ApprovalScope {
    /// Accounts the model may run in.
    pub accounts: BTreeSet<AccountId>,
    /// Regions it may run in.
    pub regions: BTreeSet<Region>,
    /// Actions allowed.
    pub actions: BTreeSet<InvokeAction>,
}

impl ApprovalScope {
    /// True when `account`, `region` and every one of `actions` are inside the scope.
    pub fn covers(&self, account: &AccountId, region: &Region, actions: &BTreeSet<InvokeAction>) -> bool {
        self.accounts.contains(account) && self.regions.contains(region) && actions.is_subset(&self.actions)
    }

    /// The union of two scopes.
    pub fn extended_by(&self, other: &ApprovalScope) -> ApprovalScope {
        ApprovalScope {
            accounts: self.accounts.union(&other.accounts).cloned().collect(),
            regions: self.regions.union(&other.regions).cloned().collect(),
            actions: self.actions.union(&other.actions).copied().collect(),
        }
    }

    /// True when `other` adds nothing.
    pub fn contains_scope(&self, other: &ApprovalScope) -> bool {
        other.accounts.is_subset(&self.accounts)
            && other.regions.is_subset(&self.regions)
            && other.actions.is_subset(&self.actions)
    }
}

/// US dollars in whole cents: money is never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Cents(pub u64);

impl fmt::Display for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// Signed whole cents in a person's words: `$12.34`, `-$0.50`. The one way every trail,
/// reason and table writes an amount that may be negative (credits, variances).
pub fn dollars(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}${}.{:02}", cents.unsigned_abs() / 100, cents.unsigned_abs() % 100)
}

/// Tokens per month by type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TokenBreakdown {
    /// Input tokens.
    pub input: u64,
    /// Output tokens.
    pub output: u64,
    /// Cache-read input tokens.
    pub cache_read: u64,
    /// Cache-write input tokens.
    pub cache_write: u64,
}

impl TokenBreakdown {
    /// All tokens together.
    pub fn total(&self) -> u64 {
        self.input.saturating_add(self.output).saturating_add(self.cache_read).saturating_add(self.cache_write)
    }
}

/// A monthly amount stated in dollars or in tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MonthlyAmount {
    /// Dollars per month, in cents: stored as `{"cents": n}` (schema.rs: version 1
    /// stored it as `{"dollars": n}`, which read as 100 × the amount).
    #[serde(rename = "cents")]
    Dollars(Cents),
    /// Tokens per month.
    Tokens(TokenBreakdown),
}

impl MonthlyAmount {
    /// Refuses an amount of nothing.
    pub(crate) fn validate(&self) -> Result<(), String> {
        match self {
            Self::Dollars(c) if c.0 == 0 => Err("must be more than $0.00".into()),
            Self::Tokens(t) if t.total() == 0 => Err("must name at least one token".into()),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_amounts_keep_their_sign_below_a_dollar() {
        assert_eq!(dollars(1234), "$12.34");
        assert_eq!(dollars(-50), "-$0.50");
        assert_eq!(dollars(-100_001), "-$1000.01");
        assert_eq!(dollars(i64::MIN).chars().next(), Some('-'));
    }

    #[test]
    fn aws_identifiers_are_checked() {
        assert!(AccountId::parse("123456789012").is_ok());
        for bad in ["12345678901", "1234567890123", "12345678901a", ""] {
            assert!(AccountId::parse(bad).is_err(), "{bad}");
        }
        for good in ["us-east-1", "eu-central-2", "ap-southeast-4", "us-gov-west-1"] {
            assert!(Region::parse(good).is_ok(), "{good}");
        }
        for bad in ["useast1", "US-EAST-1", "us-east", "us-east-x", "mars-north-1"] {
            assert!(Region::parse(bad).is_err(), "{bad}");
        }
        assert!(ModelId::parse("anthropic.claude-sonnet-4-20250514-v1:0").is_ok());
        assert!(ModelId::parse("model with spaces").is_err());
    }

    #[test]
    fn a_scope_covers_only_what_it_names() {
        let scope = ApprovalScope {
            accounts: [AccountId::parse("123456789012").unwrap()].into(),
            regions: [Region::parse("us-east-1").unwrap()].into(),
            actions: [InvokeAction::InvokeModel, InvokeAction::Converse].into(),
        };
        let acct = AccountId::parse("123456789012").unwrap();
        let east = Region::parse("us-east-1").unwrap();
        let west = Region::parse("us-west-2").unwrap();
        assert!(scope.covers(&acct, &east, &[InvokeAction::Converse].into()));
        assert!(!scope.covers(&acct, &west, &[InvokeAction::Converse].into()));
        assert!(!scope.covers(&acct, &east, &[InvokeAction::ConverseStream].into()));
        assert_eq!(Cents(123_456).to_string(), "$1234.56");
    }
}
