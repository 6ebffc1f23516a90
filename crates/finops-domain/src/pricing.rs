//! Prices and estimates (DOMAIN.md §2, §12).
//!
//! A dated price snapshot ships with the build (`data/price-snapshot.json`, built from
//! ../shared/CUR-REFERENCE.md §4); an AWS Price List offer file can refresh it. Prices are
//! kept as integer micro-dollars per million tokens and costs are summed in micro-dollars,
//! then rounded once to cents: no float ever touches money.
//!
//! Every estimate lists the assumptions it rests on (profile, model, region, premium,
//! which price was used and from where), so a FinOps Lead can see why the figure is what
//! it is.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::request::Availability;
use crate::vocabulary::{Cents, ModelId, Region, TokenBreakdown};

/// The shipped snapshot.
const SNAPSHOT: &str = include_str!("../data/price-snapshot.json");

/// Which kind of token a price applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// Input tokens.
    Input,
    /// Output tokens.
    Output,
    /// Prompt-cache reads.
    CacheRead,
    /// Prompt-cache writes (5-minute).
    CacheWrite,
    /// Prompt-cache writes with a 1-hour lifetime.
    CacheWrite1h,
}

/// US dollars in millionths, per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MicroUsdPerMillion(pub u64);

/// A price problem, named precisely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    /// A dollar amount that is not a plain non-negative decimal.
    #[error("`{0}` is not a dollar amount (digits, optionally a point and up to 6 decimals)")]
    BadAmount(String),
    /// No price for a model, region and token kind.
    #[error(
        "no {kind:?} price for {model} in {region} (snapshot {snapshot}); load a Price List offer file that has it"
    )]
    NoPrice {
        /// The model.
        model: String,
        /// The region.
        region: String,
        /// The token kind.
        kind: TokenKind,
        /// The snapshot's date.
        snapshot: String,
    },
    /// A token amount needs a model and region to be priced.
    #[error("a token budget is priced on a model and region; name both")]
    NeedsModel,
    /// The offer or snapshot file does not have the documented shape.
    #[error("price file is malformed at {at}: {reason}")]
    Malformed {
        /// Where (a JSON path).
        at: String,
        /// What is wrong.
        reason: String,
    },
}

/// Parses `"0.00875"` into micro-dollars (8750). At most 6 decimals: anything finer is not
/// a price AWS publishes per million tokens.
pub fn parse_usd(text: &str) -> Result<u64, PricingError> {
    let bad = || PricingError::BadAmount(text.to_owned());
    let (whole, frac) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > 6 {
        return Err(bad());
    }
    let whole: u64 = whole.parse().map_err(|_| bad())?;
    let frac_micro: u64 = format!("{frac:0<6}").parse().map_err(|_| bad())?;
    whole.checked_mul(1_000_000).and_then(|w| w.checked_add(frac_micro)).ok_or_else(bad)
}

#[derive(Debug, Deserialize)]
struct SnapshotFile {
    snapshot_date: String,
    source: String,
    ccu_usd: String,
    models: Vec<SnapshotRow>,
}

#[derive(Debug, Deserialize)]
struct SnapshotRow {
    model_id: String,
    usage_name: String,
    /// The regions the prices apply in (`global`: the global cross-region inference
    /// profile); a single `region` is accepted too.
    #[serde(default)]
    regions: Vec<String>,
    #[serde(default)]
    region: Option<String>,
    input: Option<String>,
    output: Option<String>,
    cache_read: Option<String>,
    cache_write: Option<String>,
    cache_write_1h: Option<String>,
}

/// The geography prefixes of system-defined cross-region inference profiles
/// (`us.anthropic.claude-…`), besides `global.`.
pub const INFERENCE_PROFILE_GEOGRAPHIES: [&str; 7] = ["us", "eu", "apac", "us-gov", "jp", "au", "ca"];

/// A price table: model × region × token kind.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable {
    /// When the prices were read.
    pub snapshot_date: String,
    /// Where they came from.
    pub source: String,
    /// Claude Platform's price per CCU, micro-dollars.
    pub ccu_micro_usd: u64,
    prices: BTreeMap<(String, String, TokenKind), (MicroUsdPerMillion, &'static str)>,
    /// Price List usage-type names (`Claude3Haiku`) → model ids.
    aliases: BTreeMap<String, Vec<String>>,
}

impl PriceTable {
    /// The snapshot shipped with this build.
    pub fn shipped() -> Self {
        Self::from_snapshot(SNAPSHOT).expect("the shipped snapshot parses (tested)")
    }

    /// Parses a snapshot file.
    pub fn from_snapshot(json: &str) -> Result<Self, PricingError> {
        let file: SnapshotFile = serde_json::from_str(json).map_err(|e| PricingError::Malformed {
            at: format!("line {} column {}", e.line(), e.column()),
            reason: e.to_string(),
        })?;
        let mut table = Self {
            snapshot_date: file.snapshot_date,
            source: file.source,
            ccu_micro_usd: parse_usd(&file.ccu_usd)?,
            prices: BTreeMap::new(),
            aliases: BTreeMap::new(),
        };
        for row in file.models {
            for (kind, price) in [
                (TokenKind::Input, &row.input),
                (TokenKind::Output, &row.output),
                (TokenKind::CacheRead, &row.cache_read),
                (TokenKind::CacheWrite, &row.cache_write),
                (TokenKind::CacheWrite1h, &row.cache_write_1h),
            ] {
                if let Some(p) = price {
                    let price = MicroUsdPerMillion(parse_usd(p)?);
                    for region in row.regions.iter().chain(&row.region) {
                        table.prices.insert((row.model_id.clone(), region.clone(), kind), (price, "shipped snapshot"));
                    }
                }
            }
            table.aliases.entry(row.usage_name).or_default().push(row.model_id);
        }
        Ok(table)
    }

    /// The price of a token kind for a model in a region, and where it came from.
    pub fn price(
        &self,
        model: &ModelId,
        region: &Region,
        kind: TokenKind,
    ) -> Result<(MicroUsdPerMillion, &'static str), PricingError> {
        // A cross-region inference profile names its model with a geography prefix: a
        // `global.` profile has its own (lower) rate where AWS sets one, a geographic one
        // (`us.`, `eu.`, `apac.`…) costs what the source region charges.
        let id = model.as_str();
        let (base, global) = match id.split_once('.') {
            Some(("global", rest)) => (rest, true),
            Some((geo, rest)) if INFERENCE_PROFILE_GEOGRAPHIES.contains(&geo) => (rest, false),
            _ => (id, false),
        };
        let found = global
            .then(|| self.prices.get(&(base.to_owned(), "global".to_owned(), kind)))
            .flatten()
            .or_else(|| self.prices.get(&(base.to_owned(), region.to_string(), kind)));
        found.copied().ok_or_else(|| PricingError::NoPrice {
            model: model.to_string(),
            region: region.to_string(),
            kind,
            snapshot: self.snapshot_date.clone(),
        })
    }

    /// Applies prices read from an AWS Price List offer file (see [`read_offer_file`]);
    /// returns how many prices changed or were added.
    pub fn apply_offer(&mut self, offer: &[OfferPrice]) -> usize {
        let mut applied = 0;
        for price in offer {
            for model in self.aliases.get(&price.usage_name).cloned().unwrap_or_default() {
                self.prices.insert((model, price.region.clone(), price.kind), (price.price, "Price List offer file"));
                applied += 1;
            }
        }
        applied
    }
}

/// One on-demand price read from an offer file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferPrice {
    /// The model's name inside the usage type (`Claude3Haiku`).
    pub usage_name: String,
    /// The region code.
    pub region: String,
    /// The token kind.
    pub kind: TokenKind,
    /// The price.
    pub price: MicroUsdPerMillion,
}

/// Reads on-demand token prices from an AWS Price List offer file (`AmazonBedrock`,
/// `AmazonBedrockService` or `AmazonBedrockFoundationModels`), in the shape documented in
/// CUR-REFERENCE.md §4.1. Batch, flex and other non-on-demand SKUs are skipped.
pub fn read_offer_file(json: &str) -> Result<Vec<OfferPrice>, PricingError> {
    let malformed = |at: &str, reason: &str| PricingError::Malformed { at: at.to_owned(), reason: reason.to_owned() };
    let doc: serde_json::Value = serde_json::from_str(json).map_err(|e| PricingError::Malformed {
        at: format!("line {} column {}", e.line(), e.column()),
        reason: e.to_string(),
    })?;
    let products = doc["products"].as_object().ok_or_else(|| malformed("products", "missing or not an object"))?;
    let terms =
        doc["terms"]["OnDemand"].as_object().ok_or_else(|| malformed("terms.OnDemand", "missing or not an object"))?;
    let mut out = Vec::new();
    for (sku, product) in products {
        let attrs = &product["attributes"];
        let usage = attrs["usagetype"].as_str().unwrap_or_default();
        let region = attrs["regionCode"].as_str().unwrap_or_default();
        let feature = attrs["feature"].as_str().unwrap_or("On-demand Inference");
        if !feature.eq_ignore_ascii_case("On-demand Inference") || region.is_empty() {
            continue;
        }
        let Some((usage_name, kind)) = usage_kind(usage) else { continue };
        let Some(offer_terms) = terms.get(sku).and_then(|t| t.as_object()) else { continue };
        for term in offer_terms.values() {
            let Some(dimensions) = term["priceDimensions"].as_object() else { continue };
            for (dim_key, dim) in dimensions {
                let at = format!("terms.OnDemand.{sku}.priceDimensions.{dim_key}");
                let usd = dim["pricePerUnit"]["USD"].as_str().ok_or_else(|| malformed(&at, "no pricePerUnit.USD"))?;
                let per_unit =
                    parse_price_per_unit(usd).ok_or_else(|| malformed(&at, &format!("`{usd}` is not a price")))?;
                let unit = dim["unit"].as_str().unwrap_or_default().to_ascii_lowercase();
                // First-party SKUs are priced per 1K tokens; Marketplace per 1M (unit "Units").
                let per_million = if unit.contains("1k") { per_unit.saturating_mul(1_000) } else { per_unit };
                out.push(OfferPrice {
                    usage_name: usage_name.to_owned(),
                    region: region.to_owned(),
                    kind,
                    price: MicroUsdPerMillion(per_million / 1_000_000),
                });
            }
        }
    }
    out.sort_by(|a, b| (&a.usage_name, &a.region, a.kind).cmp(&(&b.usage_name, &b.region, b.kind)));
    Ok(out)
}

/// Price List prices carry up to 10 decimals: read them as pico-dollars (10⁻¹²) so that
/// multiplying by 1 000 for per-1K units loses nothing.
fn parse_price_per_unit(text: &str) -> Option<u64> {
    let (whole, frac) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac: String = frac.chars().chain(std::iter::repeat('0')).take(12).collect();
    whole.parse::<u64>().ok()?.checked_mul(1_000_000_000_000)?.checked_add(frac.parse().ok()?)
}

/// `USE1-Claude3Haiku-input-tokens` → (`Claude3Haiku`, Input).
fn usage_kind(usage_type: &str) -> Option<(&str, TokenKind)> {
    let rest = usage_type.split_once('-').map(|(_, r)| r)?;
    for (suffix, kind) in [
        ("-cache-write-input-token-count-1h", TokenKind::CacheWrite1h),
        ("-cache-read-input-token-count", TokenKind::CacheRead),
        ("-cache-write-input-token-count", TokenKind::CacheWrite),
        ("-input-tokens", TokenKind::Input),
        ("-output-tokens", TokenKind::Output),
    ] {
        if let Some(name) = rest.strip_suffix(suffix) {
            return Some((name, kind));
        }
    }
    None
}

/// How developers use a coding assistant, per hour of active use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageProfile {
    /// Tokens per active hour by type.
    pub tokens_per_active_hour: TokenBreakdown,
    /// Working hours per day.
    pub hours_per_day: u64,
    /// Working days per month.
    pub days_per_month: u64,
    /// The model coding is priced on.
    pub reference_model: ModelId,
    /// The region it is priced in.
    pub reference_region: Region,
}

impl Default for UsageProfile {
    /// An agentic coding assistant with prompt caching: per active hour 60 K input,
    /// 12 K output, 240 K cache-read and 24 K cache-write tokens; 8-hour days, 21 days a
    /// month; priced on Claude Sonnet 4 in us-east-1.
    fn default() -> Self {
        Self {
            tokens_per_active_hour: TokenBreakdown {
                input: 60_000,
                output: 12_000,
                cache_read: 240_000,
                cache_write: 24_000,
            },
            hours_per_day: 8,
            days_per_month: 21,
            reference_model: ModelId::parse("anthropic.claude-sonnet-4-20250514-v1:0").expect("valid"),
            reference_region: Region::parse("us-east-1").expect("valid"),
        }
    }
}

/// A monthly estimate and what it rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Estimate {
    /// The monthly cost.
    pub monthly: Cents,
    /// The monthly tokens, when the estimate was priced from tokens.
    pub tokens: Option<TokenBreakdown>,
    /// Every assumption, in words.
    pub assumptions: Vec<String>,
}

/// The High Availability premium, percent (DOMAIN.md §2: about 10 %).
pub const DEFAULT_HA_PREMIUM_PERCENT: u64 = 10;

fn price_tokens(
    table: &PriceTable,
    model: &ModelId,
    region: &Region,
    tokens: &TokenBreakdown,
    assumptions: &mut Vec<String>,
) -> Result<u128, PricingError> {
    let mut micro: u128 = 0;
    for (kind, count) in [
        (TokenKind::Input, tokens.input),
        (TokenKind::Output, tokens.output),
        (TokenKind::CacheRead, tokens.cache_read),
        (TokenKind::CacheWrite, tokens.cache_write),
    ] {
        if count == 0 {
            continue;
        }
        let (price, from) = table.price(model, region, kind)?;
        micro += u128::from(count) * u128::from(price.0) / 1_000_000;
        assumptions.push(format!(
            "{count} {kind:?} tokens at ${}.{:06} per 1M ({from}, {})",
            price.0 / 1_000_000,
            price.0 % 1_000_000,
            table.snapshot_date
        ));
    }
    Ok(micro)
}

fn finish(micro: u128, availability: Availability, ha_premium_percent: u64, assumptions: &mut Vec<String>) -> Cents {
    let micro = match availability {
        Availability::Standard => micro,
        Availability::HighAvailability => {
            assumptions.push(format!(
                "High Availability premium of {ha_premium_percent} % for the cross-region inference profile"
            ));
            micro * u128::from(100 + ha_premium_percent) / 100
        }
    };
    Cents(u64::try_from((micro + 5_000) / 10_000).unwrap_or(u64::MAX))
}

/// Estimates a Coding request: developers × active share of the day × the profile.
pub fn estimate_coding(
    developers: u32,
    active_percent: u8,
    profile: &UsageProfile,
    table: &PriceTable,
) -> Result<Estimate, PricingError> {
    // Active hours per month, in hundredths to keep the percentage exact.
    let active_centi_hours =
        u64::from(developers) * profile.hours_per_day * profile.days_per_month * u64::from(active_percent);
    let per_hour = profile.tokens_per_active_hour;
    let scale = |t: u64| t * active_centi_hours / 100;
    let tokens = TokenBreakdown {
        input: scale(per_hour.input),
        output: scale(per_hour.output),
        cache_read: scale(per_hour.cache_read),
        cache_write: scale(per_hour.cache_write),
    };
    let mut assumptions = vec![format!(
        "{developers} developers × {active_percent} % of {} h days × {} days = {}.{:02} active hours a month",
        profile.hours_per_day,
        profile.days_per_month,
        active_centi_hours / 100,
        active_centi_hours % 100
    )];
    assumptions.push(format!(
        "per active hour: {} input, {} output, {} cache-read, {} cache-write tokens",
        per_hour.input, per_hour.output, per_hour.cache_read, per_hour.cache_write
    ));
    assumptions.push(format!("priced on {} in {}", profile.reference_model, profile.reference_region));
    let micro = price_tokens(table, &profile.reference_model, &profile.reference_region, &tokens, &mut assumptions)?;
    let monthly = finish(micro, Availability::Standard, 0, &mut assumptions);
    Ok(Estimate { monthly, tokens: Some(tokens), assumptions })
}

/// Estimates an Operations request (or an FA Confirmed Estimate): dollars are taken as
/// stated; tokens are priced on the model and region, plus the HA premium.
pub fn estimate_operations(
    amount: &crate::vocabulary::MonthlyAmount,
    priced_on: Option<(&ModelId, &Region)>,
    availability: Availability,
    ha_premium_percent: u64,
    table: &PriceTable,
) -> Result<Estimate, PricingError> {
    match amount {
        crate::vocabulary::MonthlyAmount::Dollars(c) => Ok(Estimate {
            monthly: *c,
            tokens: None,
            assumptions: vec![format!("the stated monthly budget of {c}, taken as given (no premium added)")],
        }),
        crate::vocabulary::MonthlyAmount::Tokens(tokens) => {
            let (model, region) = priced_on.ok_or(PricingError::NeedsModel)?;
            let mut assumptions = vec![format!("priced on {model} in {region}")];
            let micro = price_tokens(table, model, region, tokens, &mut assumptions)?;
            let monthly = finish(micro, availability, ha_premium_percent, &mut assumptions);
            Ok(Estimate { monthly, tokens: Some(*tokens), assumptions })
        }
    }
}

/// Claude Platform: dollars to Claude Consumption Units at the table's CCU price.
pub fn ccu_for(amount: Cents, table: &PriceTable) -> u64 {
    (u128::from(amount.0) * 10_000 / u128::from(table.ccu_micro_usd.max(1))) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::MonthlyAmount;
    use proptest::prelude::*;

    fn haiku() -> ModelId {
        ModelId::parse("anthropic.claude-3-haiku-20240307-v1:0").unwrap()
    }
    fn east() -> Region {
        Region::parse("us-east-1").unwrap()
    }

    #[test]
    fn the_shipped_snapshot_has_the_reference_prices() {
        let t = PriceTable::shipped();
        assert_eq!(t.snapshot_date, "2026-12-02");
        assert_eq!(t.price(&haiku(), &east(), TokenKind::Input).unwrap().0, MicroUsdPerMillion(250_000));
        let nova = ModelId::parse("amazon.nova-micro-v1:0").unwrap();
        assert_eq!(t.price(&nova, &east(), TokenKind::CacheRead).unwrap().0, MicroUsdPerMillion(8_750));
        assert_eq!(t.ccu_micro_usd, 10_000, "$0.01 per CCU");
        let err = t.price(&haiku(), &Region::parse("eu-west-3").unwrap(), TokenKind::Input).unwrap_err();
        assert!(err.to_string().contains("in eu-west-3 (snapshot 2026-12-02)"), "{err}");
    }

    /// Regression (issue 10.5): Claude 3.5 Sonnet in us-west-2, which a Product Owner can
    /// request, had no price. Every model × region of the reference is priced, and the
    /// cross-region inference profiles with it.
    #[test]
    fn every_reference_model_and_region_and_inference_profile_is_priced() {
        let t = PriceTable::shipped();
        let price = |model: &str, region: &str, kind| {
            t.price(&ModelId::parse(model).unwrap(), &Region::parse(region).unwrap(), kind).map(|p| p.0.0)
        };
        assert_eq!(price("anthropic.claude-3-5-sonnet-20240620-v1:0", "us-west-2", TokenKind::Input), Ok(3_000_000));
        for row in SNAPSHOT_MODELS.iter() {
            for region in ["us-east-1", "us-east-2", "us-west-2"] {
                assert!(price(row, region, TokenKind::Input).is_ok(), "{row} in {region}");
            }
            assert!(price(&format!("us.{row}"), "us-east-1", TokenKind::Input).is_ok(), "us.{row}");
        }
        assert_eq!(price("amazon.nova-pro-v1:0", "ap-northeast-1", TokenKind::Output), Ok(3_840_000));
        assert_eq!(price("anthropic.claude-haiku-4-5-20251001-v1:0", "eu-north-1", TokenKind::Input), Ok(1_100_000));
        // Claude 4.5+: the global profile's rate, 10 % under the regional one.
        let sonnet = "anthropic.claude-sonnet-4-5-20250929-v1:0";
        assert_eq!(price(&format!("global.{sonnet}"), "us-east-1", TokenKind::Input), Ok(3_000_000));
        assert_eq!(price(&format!("us.{sonnet}"), "us-east-1", TokenKind::Input), Ok(3_300_000));
        // Older models: no global rate, so a global profile costs the source region's price.
        assert_eq!(price("global.anthropic.claude-3-haiku-20240307-v1:0", "us-west-2", TokenKind::Input), Ok(250_000));
        assert!(price("amazon.nova-micro-v1:0", "eu-central-1", TokenKind::Input).is_err(), "not in the reference");
    }

    /// Every model the shipped snapshot prices.
    const SNAPSHOT_MODELS: [&str; 21] = [
        "anthropic.claude-3-haiku-20240307-v1:0",
        "anthropic.claude-3-5-haiku-20241022-v1:0",
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "anthropic.claude-3-5-sonnet-20241022-v2:0",
        "anthropic.claude-3-7-sonnet-20250219-v1:0",
        "anthropic.claude-sonnet-4-20250514-v1:0",
        "anthropic.claude-opus-4-20250514-v1:0",
        "anthropic.claude-opus-4-1-20250805-v1:0",
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
        "anthropic.claude-sonnet-4-6-v1:0",
        "anthropic.claude-haiku-4-5-20251001-v1:0",
        "claude-sonnet-4-5",
        "amazon.nova-micro-v1:0",
        "amazon.nova-lite-v1:0",
        "amazon.nova-pro-v1:0",
        "amazon.nova-premier-v1:0",
        "meta.llama3-8b-instruct-v1:0",
        "meta.llama3-70b-instruct-v1:0",
        "meta.llama3-1-8b-instruct-v1:0",
        "meta.llama3-1-70b-instruct-v1:0",
        "meta.llama3-1-405b-instruct-v1:0",
    ];

    #[test]
    fn coding_follows_the_documented_profile() {
        let e = estimate_coding(40, 25, &UsageProfile::default(), &PriceTable::shipped()).unwrap();
        // 40 × 25 % × 8 h × 21 d = 1 680 h: 100.8 M input ($302.40), 20.16 M output
        // ($302.40), 403.2 M cache read ($120.96), 40.32 M cache write ($151.20).
        assert_eq!(e.monthly, Cents(87_696));
        assert_eq!(e.tokens.unwrap().input, 100_800_000);
        assert!(e.assumptions[0].contains("1680.00 active hours"), "{:?}", e.assumptions);
        assert!(e.assumptions.iter().any(|a| a.contains("priced on anthropic.claude-sonnet-4")));
    }

    #[test]
    fn operations_price_tokens_and_add_the_ha_premium() {
        let t = PriceTable::shipped();
        let tokens = MonthlyAmount::Tokens(TokenBreakdown {
            input: 10_000_000,
            output: 2_000_000,
            cache_read: 0,
            cache_write: 0,
        });
        let standard = estimate_operations(&tokens, Some((&haiku(), &east())), Availability::Standard, 10, &t).unwrap();
        assert_eq!(standard.monthly, Cents(500), "10 M × $0.25 + 2 M × $1.25 = $5.00");
        let ha =
            estimate_operations(&tokens, Some((&haiku(), &east())), Availability::HighAvailability, 10, &t).unwrap();
        assert_eq!(ha.monthly, Cents(550));
        assert!(ha.assumptions.iter().any(|a| a.contains("10 % for the cross-region")));
        let dollars =
            estimate_operations(&MonthlyAmount::Dollars(Cents(250_000)), None, Availability::HighAvailability, 10, &t)
                .unwrap();
        assert_eq!(dollars.monthly, Cents(250_000));
        assert_eq!(ccu_for(Cents(250_000), &t), 250_000, "$2 500 is 250 000 CCU");
        assert_eq!(estimate_operations(&tokens, None, Availability::Standard, 10, &t), Err(PricingError::NeedsModel));
        let cache = MonthlyAmount::Tokens(TokenBreakdown { input: 0, output: 0, cache_read: 5, cache_write: 0 });
        assert!(
            estimate_operations(&cache, Some((&haiku(), &east())), Availability::Standard, 10, &t).is_err(),
            "Haiku 3 has no cache price: say so"
        );
    }

    #[test]
    fn an_offer_file_refreshes_and_extends_the_table() {
        let offer = r#"{
          "formatVersion": "v1.0", "offerCode": "AmazonBedrock", "version": "20260529224655",
          "products": {
            "KMZFVEBPVFAP5FUF": {"sku": "KMZFVEBPVFAP5FUF", "productFamily": "Amazon Bedrock",
              "attributes": {"servicecode": "AmazonBedrock", "regionCode": "us-east-1", "usagetype": "USE1-Claude3Haiku-input-tokens",
                "inferenceType": "Input tokens", "feature": "On-demand Inference"}},
            "EUW3HAIKUOUT": {"sku": "EUW3HAIKUOUT",
              "attributes": {"regionCode": "eu-west-3", "usagetype": "EUW3-Claude3Haiku-output-tokens", "feature": "On-demand Inference"}},
            "BATCHSKU": {"sku": "BATCHSKU",
              "attributes": {"regionCode": "us-east-1", "usagetype": "USE1-Claude3Haiku-batch-input-tokens", "feature": "Batch Inference"}}
          },
          "terms": {"OnDemand": {
            "KMZFVEBPVFAP5FUF": {"KMZFVEBPVFAP5FUF.JRTCKXETXF": {"priceDimensions": {"KMZFVEBPVFAP5FUF.JRTCKXETXF.6YS6EN2CT7": {"unit": "1K tokens", "pricePerUnit": {"USD": "0.0002400000"}}}}},
            "EUW3HAIKUOUT": {"EUW3HAIKUOUT.JRTCKXETXF": {"priceDimensions": {"EUW3HAIKUOUT.JRTCKXETXF.6YS6EN2CT7": {"unit": "1K tokens", "pricePerUnit": {"USD": "0.0015000000"}}}}},
            "BATCHSKU": {"BATCHSKU.JRTCKXETXF": {"priceDimensions": {"BATCHSKU.JRTCKXETXF.X": {"unit": "1K tokens", "pricePerUnit": {"USD": "0.000125"}}}}}
          }}
        }"#;
        let prices = read_offer_file(offer).unwrap();
        assert_eq!(prices.len(), 2, "the batch SKU is skipped: {prices:?}");
        let mut t = PriceTable::shipped();
        assert_eq!(t.apply_offer(&prices), 2);
        let (input, from) = t.price(&haiku(), &east(), TokenKind::Input).unwrap();
        assert_eq!((input, from), (MicroUsdPerMillion(240_000), "Price List offer file"));
        let paris = Region::parse("eu-west-3").unwrap();
        assert_eq!(t.price(&haiku(), &paris, TokenKind::Output).unwrap().0, MicroUsdPerMillion(1_500_000));
        let err = read_offer_file(r#"{"products": {}}"#).unwrap_err();
        assert!(err.to_string().contains("terms.OnDemand"), "{err}");
    }

    proptest! {
        /// Any amount with up to six decimals parses exactly.
        #[test]
        fn dollar_amounts_parse_exactly(whole in 0u64..1_000_000, micro in 0u64..1_000_000) {
            let text = format!("{whole}.{micro:06}");
            prop_assert_eq!(parse_usd(&text).unwrap(), whole * 1_000_000 + micro);
        }

        #[test]
        fn garbage_is_refused_not_misread(text in "[^0-9.]{1,8}|[0-9]+\\.[0-9]{7,9}[1-9]") {
            prop_assert!(parse_usd(&text).is_err());
        }
    }
}
