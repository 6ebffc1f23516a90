//! `line_item_resource_id` for Bedrock lines.

use serde::{Deserialize, Serialize};

/// What a Bedrock line's resource id names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum BedrockResource {
    /// `arn:aws:bedrock:{region}::foundation-model/{model}`
    FoundationModel {
        /// Region.
        region: String,
        /// Model id.
        model: String,
    },
    /// `arn:aws:bedrock:{region}:{account}:inference-profile/{geo}.{model}` (system-defined,
    /// cross-region).
    SystemInferenceProfile {
        /// Region.
        region: String,
        /// Account.
        account: String,
        /// Profile id (`us.meta.llama3-1-70b-instruct-v1:0`).
        profile: String,
    },
    /// `arn:aws:bedrock:{region}:{account}:application-inference-profile/{id}` (tagged by
    /// its owner; the tags land in `resource_tags`).
    ApplicationInferenceProfile {
        /// Region.
        region: String,
        /// Account.
        account: String,
        /// Profile id.
        id: String,
    },
    /// `arn:aws:bedrock:{region}:{account}:guardrail/{id}`
    Guardrail {
        /// Region.
        region: String,
        /// Account.
        account: String,
        /// Guardrail id.
        id: String,
    },
}

impl BedrockResource {
    /// Parses a resource id; `None` for an empty id or anything that is not one of these
    /// Bedrock ARNs (CUR leaves many ids empty, and other services' ids are not ours).
    pub fn parse(value: &str) -> Option<BedrockResource> {
        let parts: Vec<&str> = value.trim().splitn(6, ':').collect();
        let [arn, partition, "bedrock", region, account, resource] = parts.as_slice() else { return None };
        if *arn != "arn" || !partition.starts_with("aws") || region.is_empty() {
            return None;
        }
        let (kind, id) = resource.split_once('/')?;
        if id.is_empty() {
            return None;
        }
        let (region, account, id) = ((*region).to_owned(), (*account).to_owned(), id.to_owned());
        match kind {
            "foundation-model" if account.is_empty() => Some(Self::FoundationModel { region, model: id }),
            "inference-profile" if !account.is_empty() => {
                Some(Self::SystemInferenceProfile { region, account, profile: id })
            }
            "application-inference-profile" if !account.is_empty() => {
                Some(Self::ApplicationInferenceProfile { region, account, id })
            }
            "guardrail" if !account.is_empty() => Some(Self::Guardrail { region, account, id }),
            _ => None,
        }
    }

    /// The model a line ran on, when the resource id says (a system profile's id is the
    /// model id behind a geography prefix).
    pub fn model(&self) -> Option<&str> {
        match self {
            Self::FoundationModel { model, .. } => Some(model),
            Self::SystemInferenceProfile { profile, .. } => {
                Some(profile.split_once('.').map_or(profile.as_str(), |(_, m)| m))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn each_bedrock_resource_form() {
        let fm = BedrockResource::parse(
            "arn:aws:bedrock:us-west-2::foundation-model/anthropic.claude-3-5-sonnet-20240620-v1:0",
        )
        .unwrap();
        assert_eq!(fm.model(), Some("anthropic.claude-3-5-sonnet-20240620-v1:0"));
        let sp = BedrockResource::parse(
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3-1-70b-instruct-v1:0",
        )
        .unwrap();
        assert_eq!(sp.model(), Some("meta.llama3-1-70b-instruct-v1:0"));
        let ap =
            BedrockResource::parse("arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/0xumpou8xusv")
                .unwrap();
        assert_eq!(
            ap,
            BedrockResource::ApplicationInferenceProfile {
                region: "us-east-1".into(),
                account: "123456789012".into(),
                id: "0xumpou8xusv".into()
            }
        );
        let gr = BedrockResource::parse("arn:aws:bedrock:us-east-1:123456789012:guardrail/abc123").unwrap();
        assert!(matches!(gr, BedrockResource::Guardrail { .. }));
        for other in [
            "",
            "i-0abc123",
            "arn:aws:s3:::bucket/key",
            "arn:aws:bedrock:us-east-1::foundation-model/",
            "arn:aws:bedrock:us-east-1:123456789012:knowledge-base/x",
        ] {
            assert_eq!(BedrockResource::parse(other), None, "{other}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,120}") {
            let _ = BedrockResource::parse(&text);
        }

        #[test]
        fn foundation_models_round_trip(region in "[a-z]{2}-[a-z]{4,9}-[1-9]", model in "[a-z]{2,10}\\.[a-z0-9-]{1,30}(:[0-9])?") {
            let arn = format!("arn:aws:bedrock:{region}::foundation-model/{model}");
            prop_assert_eq!(BedrockResource::parse(&arn), Some(BedrockResource::FoundationModel { region, model }));
        }
    }
}
