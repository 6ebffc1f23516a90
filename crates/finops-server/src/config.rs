//! Server configuration, layered: command-line flags over environment variables over an
//! optional TOML file over defaults. The binary parses flags and environment (clap does
//! both); this module owns the file format, the defaults and the merge.

use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;

/// Where `finops serve` listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
/// The embedded store used unless told otherwise: one SQLite file, no server needed.
pub const DEFAULT_STORE: &str = "sqlite://finops-data/finops.db";
/// Where CUR batches are kept unless told otherwise: a local folder.
pub const DEFAULT_OBJECTS: &str = "finops-data/objects";

/// The resolved configuration of a running server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The gRPC listen address.
    pub listen: SocketAddr,
    /// The event store URL: `sqlite://PATH` or `postgres://…`.
    pub store: String,
    /// Where to export spans over OTLP/gRPC, if anywhere.
    pub otlp_endpoint: Option<String>,
    /// How bearer tokens are verified.
    pub auth: AuthMode,
    /// The IAM Identity Center instance ARN that Coding tasks' commands name.
    pub identity_center_instance_arn: String,
    /// The High Availability price premium, percent.
    pub ha_premium_percent: u64,
    /// AWS Price List offer files applied over the shipped price snapshot.
    pub price_offer_files: Vec<std::path::PathBuf>,
    /// Business days after which an unimplemented task is overdue.
    pub task_sla_business_days: u32,
    /// A Spend Card's variance over this percentage of its estimate is flagged.
    pub card_variance_threshold_percent: u32,
    /// How Coding requests are estimated.
    pub coding_profile: finops_domain::pricing::UsageProfile,
    /// Where CUR batches are kept: a local folder, `file:///…` or `s3://bucket/prefix`.
    pub objects: String,
    /// The folder `IngestCur` may read local deliveries from (relative paths under it);
    /// `None`: only `s3://` sources.
    pub cur_ingest_root: Option<std::path::PathBuf>,
    /// Broad and dedicated role patterns for attribution.
    pub role_patterns: finops_attribution::RolePatterns,
    /// Where Prometheus metrics are served (`GET /metrics`); off when `None`.
    pub metrics_listen: Option<SocketAddr>,
    /// Endpoints that receive threshold alerts as signed webhooks.
    pub webhooks: Vec<finops_processes::WebhookEndpoint>,
    /// The investigation detectors' thresholds.
    pub detectors: finops_domain::investigations::DetectorSettings,
    /// Who runs the kill switch's IAM calls.
    pub kill_switch: KillSwitchMode,
    /// The AWS credentials the kill switch's enforcer signs with (the standard
    /// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, read by `finops
    /// serve`); required when the kill switch is automatic.
    pub aws_credentials: Option<finops_aws::Credentials>,
    /// Fold the log into the read models before saying it serves (`finops serve --demo`:
    /// the first command must see what was seeded). Off otherwise: a server started on an
    /// existing log serves at once while its read models follow the log, as a rebuild for
    /// a new projector version must not hold the old generation's readers.
    pub read_models_current_before_serving: bool,
}

/// Who runs a suspension's IAM calls (issue 13.4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum KillSwitchMode {
    /// Shown to a person as `aws iam …` commands (the default: no AWS access needed).
    #[default]
    Manual,
    /// Run by the server's enforcer through the IAM API at `iam_endpoint`.
    Automatic {
        /// `https://iam.amazonaws.com`, or a stand-in such as moto's server.
        iam_endpoint: String,
        /// The role assumed in each workload account (`arn:aws:iam::{account}:role/…`);
        /// `None`: the credentials act in their own account.
        role_template: Option<String>,
        /// Where roles are assumed.
        sts_endpoint: String,
    },
}

/// The `[coding_profile]` table: any key left out keeps the documented default
/// (see `finops_domain::pricing::UsageProfile`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodingProfileLayer {
    /// Input tokens per active hour.
    pub input_tokens_per_hour: Option<u64>,
    /// Output tokens per active hour.
    pub output_tokens_per_hour: Option<u64>,
    /// Cache-read tokens per active hour.
    pub cache_read_tokens_per_hour: Option<u64>,
    /// Cache-write tokens per active hour.
    pub cache_write_tokens_per_hour: Option<u64>,
    /// Working hours per day.
    pub hours_per_day: Option<u64>,
    /// Working days per month.
    pub days_per_month: Option<u64>,
    /// The model Coding is priced on.
    pub reference_model: Option<String>,
    /// The region it is priced in.
    pub reference_region: Option<String>,
}

impl CodingProfileLayer {
    fn resolve(self) -> Result<finops_domain::pricing::UsageProfile, ConfigError> {
        use finops_domain::vocabulary::{ModelId, Region};
        let mut p = finops_domain::pricing::UsageProfile::default();
        let t = &mut p.tokens_per_active_hour;
        t.input = self.input_tokens_per_hour.unwrap_or(t.input);
        t.output = self.output_tokens_per_hour.unwrap_or(t.output);
        t.cache_read = self.cache_read_tokens_per_hour.unwrap_or(t.cache_read);
        t.cache_write = self.cache_write_tokens_per_hour.unwrap_or(t.cache_write);
        p.hours_per_day = self.hours_per_day.unwrap_or(p.hours_per_day);
        p.days_per_month = self.days_per_month.unwrap_or(p.days_per_month);
        if !(1..=24).contains(&p.hours_per_day) || !(1..=31).contains(&p.days_per_month) {
            return Err(ConfigError::Value {
                field: "coding_profile",
                value: format!("{} h/day, {} days/month", p.hours_per_day, p.days_per_month),
                reason: "hours_per_day must be 1–24 and days_per_month 1–31".into(),
            });
        }
        if let Some(m) = self.reference_model {
            p.reference_model = ModelId::parse(&m).map_err(|reason| ConfigError::Value {
                field: "coding_profile.reference_model",
                value: m,
                reason,
            })?;
        }
        if let Some(r) = self.reference_region {
            p.reference_region = Region::parse(&r).map_err(|reason| ConfigError::Value {
                field: "coding_profile.reference_region",
                value: r,
                reason,
            })?;
        }
        Ok(p)
    }
}

/// How bearer tokens are verified.
#[derive(Clone, PartialEq, Eq)]
pub enum AuthMode {
    /// HS256 with this secret (at least 32 bytes).
    Secret(String),
    /// Development: the published [`DEV_JWT_SECRET`]; `finops dev-token` issues tokens.
    /// Never for production: anyone can mint a token.
    Dev,
}

impl std::fmt::Debug for AuthMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Secret(_) => "Secret(***)",
            Self::Dev => "Dev",
        })
    }
}

impl AuthMode {
    /// The secret tokens are checked against.
    pub fn secret(&self) -> &[u8] {
        match self {
            Self::Secret(s) => s.as_bytes(),
            Self::Dev => DEV_JWT_SECRET.as_bytes(),
        }
    }
}

/// The development signing key. Public on purpose: dev mode is for laptops and demos.
pub const DEV_JWT_SECRET: &str = "finops-center-dev-mode-secret-not-for-production";

/// Used in Coding tasks when no Identity Center instance is configured.
pub const DEFAULT_IDENTITY_CENTER_INSTANCE: &str = "arn:aws:sso:::instance/ssoins-CONFIGURE-ME";

/// The `[detectors]` table: the investigation detectors' thresholds; any key left out
/// keeps its default (`finops_domain::investigations::DetectorSettings`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorsLayer {
    /// A spike is at least this many times the trailing daily baseline (default 3)…
    pub spike_factor: Option<u32>,
    /// …and at least this many dollars above it (default 250).
    pub spike_floor_dollars: Option<u32>,
    /// A model surge is at least this many times its baseline (default 10)…
    pub surge_factor: Option<u32>,
    /// …and at least this many dollars above it (default 100).
    pub surge_floor_dollars: Option<u32>,
    /// The trailing window in days (default 7).
    pub baseline_days: Option<u32>,
    /// On the invocation logs' hours: a spike at least this many dollars above the hourly
    /// baseline (default 250).
    pub hourly_spike_floor_dollars: Option<u32>,
    /// On hours: a model surge at least this many dollars above it (default 250).
    pub hourly_surge_floor_dollars: Option<u32>,
}

impl DetectorsLayer {
    fn resolve(self) -> Result<finops_domain::investigations::DetectorSettings, ConfigError> {
        let mut d = finops_domain::investigations::DetectorSettings::default();
        d.spike_factor = self.spike_factor.unwrap_or(d.spike_factor);
        d.spike_floor_cents = self.spike_floor_dollars.map_or(d.spike_floor_cents, |f| i64::from(f) * 100);
        d.surge_factor = self.surge_factor.unwrap_or(d.surge_factor);
        d.surge_floor_cents = self.surge_floor_dollars.map_or(d.surge_floor_cents, |f| i64::from(f) * 100);
        d.baseline_days = self.baseline_days.unwrap_or(d.baseline_days);
        d.hourly_spike_floor_cents =
            self.hourly_spike_floor_dollars.map_or(d.hourly_spike_floor_cents, |f| i64::from(f) * 100);
        d.hourly_surge_floor_cents =
            self.hourly_surge_floor_dollars.map_or(d.hourly_surge_floor_cents, |f| i64::from(f) * 100);
        for (field, value, range) in [
            ("detectors.spike_factor", d.spike_factor, 2..=1000),
            ("detectors.surge_factor", d.surge_factor, 2..=1000),
            ("detectors.baseline_days", d.baseline_days, 3..=31),
        ] {
            if !range.contains(&value) {
                return Err(ConfigError::Value {
                    field: "detectors",
                    value: format!("{field} = {value}"),
                    reason: format!("must be {}–{}", range.start(), range.end()),
                });
            }
        }
        Ok(d)
    }
}

/// One `[[webhooks]]` entry: an endpoint that receives threshold alerts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookLayer {
    /// `url = "https://hooks.example.com/finops"`
    pub url: String,
    /// `secret = "whsec_…"` (base64 of 24–64 random bytes)
    pub secret: String,
}

/// One layer of configuration; unset fields fall through to the next layer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigLayer {
    /// `listen = "0.0.0.0:50051"`
    pub listen: Option<String>,
    /// `store = "postgres://…"`
    pub store: Option<String>,
    /// `otlp_endpoint = "http://collector:4317"`
    pub otlp_endpoint: Option<String>,
    /// `jwt_secret = "…"` (32 bytes or more)
    pub jwt_secret: Option<String>,
    /// `dev = true`: development authentication (see [`AuthMode::Dev`]).
    pub dev: Option<bool>,
    /// `identity_center_instance_arn = "arn:aws:sso:::instance/ssoins-…"`
    pub identity_center_instance_arn: Option<String>,
    /// `ha_premium_percent = 10`
    pub ha_premium_percent: Option<u64>,
    /// `price_offer_files = ["AmazonBedrock-us-east-1.json"]`
    pub price_offer_files: Option<Vec<std::path::PathBuf>>,
    /// `task_sla_business_days = 2`
    pub task_sla_business_days: Option<u32>,
    /// `card_variance_threshold_percent = 20`
    pub card_variance_threshold_percent: Option<u32>,
    /// `[coding_profile]` (TOML only)
    pub coding_profile: Option<CodingProfileLayer>,
    /// `objects = "s3://bucket/finops"` (or a local folder)
    pub objects: Option<String>,
    /// `cur_ingest_root = "/srv/cur"`: where `IngestCur` may read local deliveries (off by
    /// default: `s3://` only)
    pub cur_ingest_root: Option<std::path::PathBuf>,
    /// `broad_role_patterns = ["*AdministratorAccess*"]` (globs over role names)
    pub broad_role_patterns: Option<Vec<String>>,
    /// `dedicated_role_patterns = ["finops-ai-*"]`
    pub dedicated_role_patterns: Option<Vec<String>>,
    /// `metrics_listen = "127.0.0.1:9464"` (off by default)
    pub metrics_listen: Option<String>,
    /// `[[webhooks]]` (TOML only)
    pub webhooks: Option<Vec<WebhookLayer>>,
    /// `[detectors]` (TOML only)
    pub detectors: Option<DetectorsLayer>,
    /// `kill_switch = "manual"` (default) or `"automatic"` (needs AWS credentials)
    pub kill_switch: Option<String>,
    /// `kill_switch_iam_endpoint = "https://iam.amazonaws.com"` (the default)
    pub kill_switch_iam_endpoint: Option<String>,
    /// `kill_switch_role = "arn:aws:iam::{account}:role/finops-kill-switch"`: assumed in each
    /// workload account (default: none, the credentials act in their own account)
    pub kill_switch_role: Option<String>,
    /// `kill_switch_sts_endpoint = "https://sts.amazonaws.com"` (the default)
    pub kill_switch_sts_endpoint: Option<String>,
}

/// A configuration that cannot be used, named precisely.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {reason}")]
    Unreadable {
        /// The file.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// The file is not valid TOML for this schema.
    #[error("config file {path} is invalid: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What the TOML parser said (with line and column).
        reason: String,
    },
    /// A value has the wrong form.
    #[error("invalid `{field}` = `{value}`: {reason}")]
    Value {
        /// The setting.
        field: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ConfigLayer {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Unreadable { path: path.display().to_string(), reason: e.to_string() })?;
        toml::from_str(&text)
            .map_err(|e| ConfigError::Invalid { path: path.display().to_string(), reason: e.to_string() })
    }

    /// This layer with the gaps filled from `lower`.
    pub fn over(self, lower: ConfigLayer) -> ConfigLayer {
        ConfigLayer {
            listen: self.listen.or(lower.listen),
            store: self.store.or(lower.store),
            otlp_endpoint: self.otlp_endpoint.or(lower.otlp_endpoint),
            jwt_secret: self.jwt_secret.or(lower.jwt_secret),
            dev: self.dev.or(lower.dev),
            identity_center_instance_arn: self.identity_center_instance_arn.or(lower.identity_center_instance_arn),
            ha_premium_percent: self.ha_premium_percent.or(lower.ha_premium_percent),
            price_offer_files: self.price_offer_files.or(lower.price_offer_files),
            task_sla_business_days: self.task_sla_business_days.or(lower.task_sla_business_days),
            card_variance_threshold_percent: self
                .card_variance_threshold_percent
                .or(lower.card_variance_threshold_percent),
            coding_profile: self.coding_profile.or(lower.coding_profile),
            objects: self.objects.or(lower.objects),
            cur_ingest_root: self.cur_ingest_root.or(lower.cur_ingest_root),
            broad_role_patterns: self.broad_role_patterns.or(lower.broad_role_patterns),
            dedicated_role_patterns: self.dedicated_role_patterns.or(lower.dedicated_role_patterns),
            metrics_listen: self.metrics_listen.or(lower.metrics_listen),
            webhooks: self.webhooks.or(lower.webhooks),
            detectors: self.detectors.or(lower.detectors),
            kill_switch: self.kill_switch.or(lower.kill_switch),
            kill_switch_iam_endpoint: self.kill_switch_iam_endpoint.or(lower.kill_switch_iam_endpoint),
            kill_switch_role: self.kill_switch_role.or(lower.kill_switch_role),
            kill_switch_sts_endpoint: self.kill_switch_sts_endpoint.or(lower.kill_switch_sts_endpoint),
        }
    }

    /// Fills what is still unset with the defaults and checks the values.
    pub fn resolve(self) -> Result<ServerConfig, ConfigError> {
        let listen = self.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen.parse().map_err(|e: std::net::AddrParseError| ConfigError::Value {
            field: "listen",
            value: listen.clone(),
            reason: format!("{e} (expected HOST:PORT such as 127.0.0.1:50051)"),
        })?;
        let store = self.store.unwrap_or_else(|| DEFAULT_STORE.to_owned());
        if !(store.starts_with("sqlite:") || store.starts_with("postgres://") || store.starts_with("postgresql://")) {
            return Err(ConfigError::Value {
                field: "store",
                value: store,
                reason: "expected sqlite://PATH or postgres://USER@HOST/DB".into(),
            });
        }
        let otlp_endpoint = self.otlp_endpoint.filter(|e| !e.trim().is_empty());
        let auth = match (self.jwt_secret.filter(|s| !s.is_empty()), self.dev.unwrap_or(false)) {
            (Some(secret), _) if secret.len() < 32 => {
                return Err(ConfigError::Value {
                    field: "jwt_secret",
                    value: "***".into(),
                    reason: format!("is {} bytes; use at least 32", secret.len()),
                });
            }
            (Some(secret), _) => AuthMode::Secret(secret),
            (None, true) => AuthMode::Dev,
            (None, false) => {
                return Err(ConfigError::Value {
                    field: "jwt_secret",
                    value: String::new(),
                    reason: "is not set: set FINOPS_JWT_SECRET (32+ bytes), or run with --dev for development tokens"
                        .into(),
                });
            }
        };
        let identity_center_instance_arn =
            self.identity_center_instance_arn.unwrap_or_else(|| DEFAULT_IDENTITY_CENTER_INSTANCE.to_owned());
        let ha_premium_percent = self.ha_premium_percent.unwrap_or(finops_domain::pricing::DEFAULT_HA_PREMIUM_PERCENT);
        if ha_premium_percent > 100 {
            return Err(ConfigError::Value {
                field: "ha_premium_percent",
                value: ha_premium_percent.to_string(),
                reason: "must be 0–100".into(),
            });
        }
        let kill_switch = match self.kill_switch.as_deref().map(str::trim) {
            None | Some("manual") => KillSwitchMode::Manual,
            Some("automatic") => KillSwitchMode::Automatic {
                iam_endpoint: self
                    .kill_switch_iam_endpoint
                    .filter(|e| !e.trim().is_empty())
                    .unwrap_or_else(|| finops_aws::iam::DEFAULT_ENDPOINT.to_owned()),
                role_template: self.kill_switch_role.filter(|r| !r.trim().is_empty()),
                sts_endpoint: self
                    .kill_switch_sts_endpoint
                    .filter(|e| !e.trim().is_empty())
                    .unwrap_or_else(|| finops_aws::iam::DEFAULT_STS_ENDPOINT.to_owned()),
            },
            Some(other) => {
                return Err(ConfigError::Value {
                    field: "kill_switch",
                    value: other.to_owned(),
                    reason: "expected manual (commands for a person) or automatic (the server calls IAM)".into(),
                });
            }
        };
        let metrics_listen = match self.metrics_listen.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
            None => None,
            Some(text) => Some(text.parse().map_err(|e: std::net::AddrParseError| ConfigError::Value {
                field: "metrics_listen",
                value: text.to_owned(),
                reason: format!("{e} (expected HOST:PORT such as 127.0.0.1:9464)"),
            })?),
        };
        let webhooks = self
            .webhooks
            .unwrap_or_default()
            .iter()
            .map(|w| {
                finops_processes::WebhookEndpoint::new(&w.url, &w.secret).map_err(|reason| ConfigError::Value {
                    field: "webhooks",
                    value: w.url.clone(),
                    reason,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ServerConfig {
            metrics_listen,
            webhooks,
            detectors: self.detectors.unwrap_or_default().resolve()?,
            kill_switch,
            aws_credentials: None,
            read_models_current_before_serving: false,
            listen,
            store,
            otlp_endpoint,
            auth,
            identity_center_instance_arn,
            ha_premium_percent,
            price_offer_files: self.price_offer_files.unwrap_or_default(),
            task_sla_business_days: self
                .task_sla_business_days
                .unwrap_or(finops_domain::tasks::DEFAULT_SLA_BUSINESS_DAYS),
            card_variance_threshold_percent: match self.card_variance_threshold_percent {
                Some(p) if p > 1_000 => {
                    return Err(ConfigError::Value {
                        field: "card_variance_threshold_percent",
                        value: p.to_string(),
                        reason: "must be 0–1000 (percent of the week's estimate)".into(),
                    });
                }
                Some(p) => p,
                None => finops_domain::spend_cards::DEFAULT_VARIANCE_THRESHOLD_PERCENT,
            },
            coding_profile: self.coding_profile.unwrap_or_default().resolve()?,
            objects: self.objects.filter(|o| !o.trim().is_empty()).unwrap_or_else(|| DEFAULT_OBJECTS.to_owned()),
            cur_ingest_root: self.cur_ingest_root.filter(|r| !r.as_os_str().is_empty()),
            role_patterns: {
                let defaults = finops_attribution::RolePatterns::default();
                finops_attribution::RolePatterns {
                    broad: self.broad_role_patterns.unwrap_or(defaults.broad),
                    dedicated: self.dedicated_role_patterns.unwrap_or(defaults.dedicated),
                }
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_environment_beat_file_beat_defaults() {
        let flags = ConfigLayer { listen: Some("0.0.0.0:1".into()), ..Default::default() };
        let file: ConfigLayer = toml::from_str("listen = \"0.0.0.0:2\"\nstore = \"postgres://db/x\"").unwrap();
        let config = flags.over(file).over(ConfigLayer { dev: Some(true), ..Default::default() }).resolve().unwrap();
        assert_eq!(config.listen.port(), 1);
        assert_eq!(config.store, "postgres://db/x");
        assert_eq!(config.otlp_endpoint, None);
        let defaults = ConfigLayer { dev: Some(true), ..Default::default() }.resolve().unwrap();
        assert_eq!(defaults.auth, AuthMode::Dev);
        assert_eq!(defaults.store, DEFAULT_STORE);
        assert_eq!(defaults.listen.to_string(), DEFAULT_LISTEN);
    }

    #[test]
    fn the_coding_profile_and_sla_come_from_the_file() {
        let file: ConfigLayer = toml::from_str(
            "dev = true\ntask_sla_business_days = 5\n[coding_profile]\nhours_per_day = 6\nreference_model = \"amazon.nova-pro-v1:0\"",
        )
        .unwrap();
        let config = file.resolve().unwrap();
        assert_eq!(config.task_sla_business_days, 5);
        assert_eq!(config.card_variance_threshold_percent, 20, "the default threshold");
        let file: ConfigLayer = toml::from_str("dev = true\ncard_variance_threshold_percent = 35").unwrap();
        assert_eq!(file.resolve().unwrap().card_variance_threshold_percent, 35);
        let file: ConfigLayer = toml::from_str("dev = true\ncard_variance_threshold_percent = 5000").unwrap();
        assert!(file.resolve().unwrap_err().to_string().contains("card_variance_threshold_percent"));
        assert_eq!(config.coding_profile.hours_per_day, 6);
        assert_eq!(config.coding_profile.days_per_month, 21, "unset keys keep the default");
        assert_eq!(config.coding_profile.reference_model.as_str(), "amazon.nova-pro-v1:0");
        let bad: ConfigLayer = toml::from_str("dev = true\n[coding_profile]\nreference_region = \"moon-1\"").unwrap();
        assert!(bad.resolve().unwrap_err().to_string().contains("coding_profile.reference_region"));
    }

    #[test]
    fn near_real_time_settings_come_from_the_file_and_bad_ones_are_named() {
        let text = r#"
            dev = true
            metrics_listen = "127.0.0.1:9464"
            kill_switch = "automatic"
            kill_switch_role = "arn:aws:iam::{account}:role/finops-kill-switch"
            [detectors]
            spike_factor = 4
            spike_floor_dollars = 500
            hourly_spike_floor_dollars = 400
            [[webhooks]]
            url = "https://hooks.example.com/finops"
            secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
        "#;
        let config = toml::from_str::<ConfigLayer>(text).unwrap().resolve().unwrap();
        assert_eq!(config.metrics_listen, Some("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(
            config.kill_switch,
            KillSwitchMode::Automatic {
                iam_endpoint: "https://iam.amazonaws.com".into(),
                role_template: Some("arn:aws:iam::{account}:role/finops-kill-switch".into()),
                sts_endpoint: "https://sts.amazonaws.com".into(),
            }
        );
        assert_eq!((config.detectors.spike_factor, config.detectors.spike_floor_cents), (4, 50_000));
        assert_eq!(
            (config.detectors.hourly_spike_floor_cents, config.detectors.hourly_surge_floor_cents),
            (40_000, 25_000),
            "an hourly floor set, the other its default"
        );
        assert_eq!(config.detectors.surge_factor, 10, "a key left out keeps its default");
        assert_eq!(config.webhooks.len(), 1);
        let defaults = ConfigLayer { dev: Some(true), ..Default::default() }.resolve().unwrap();
        assert_eq!((defaults.kill_switch, defaults.metrics_listen), (KillSwitchMode::Manual, None), "off by default");
        for (bad, named) in [
            ("dev = true\nkill_switch = \"sometimes\"", "kill_switch"),
            ("dev = true\nmetrics_listen = \"nowhere\"", "metrics_listen"),
            ("dev = true\n[detectors]\nbaseline_days = 1", "detectors"),
            ("dev = true\n[[webhooks]]\nurl = \"https://x\"\nsecret = \"plain\"", "webhooks"),
        ] {
            let err = toml::from_str::<ConfigLayer>(bad).unwrap().resolve().unwrap_err();
            assert!(err.to_string().contains(named), "{bad}: {err}");
        }
    }

    #[test]
    fn bad_values_name_the_setting() {
        let err = ConfigLayer { listen: Some("nowhere".into()), dev: Some(true), ..Default::default() }
            .resolve()
            .unwrap_err();
        assert!(err.to_string().starts_with("invalid `listen` = `nowhere`"), "{err}");
        let err = ConfigLayer { store: Some("mysql://x".into()), dev: Some(true), ..Default::default() }
            .resolve()
            .unwrap_err();
        assert!(err.to_string().contains("`store`"), "{err}");
        let err = ConfigLayer::default().resolve().unwrap_err();
        assert!(err.to_string().contains("run with --dev"), "no silent insecure default: {err}");
        let err = ConfigLayer { jwt_secret: Some("short".into()), ..Default::default() }.resolve().unwrap_err();
        assert!(err.to_string().contains("at least 32"), "{err}");
        let err = toml::from_str::<ConfigLayer>("lissten = \"x\"").unwrap_err();
        assert!(err.to_string().contains("lissten"), "{err}");
    }
}
