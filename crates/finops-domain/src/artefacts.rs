//! What a Cloud Engineer pastes: exact AWS CLI commands and the IAM JSON documents they
//! carry, generated from an approval. The engineer authors nothing (DOMAIN.md §3).
//!
//! The permission policy grants the approved invoke actions on the approved model only —
//! by resource ARN, plus the system cross-region inference profile for High Availability
//! (whose destination-region model ARNs are usable only through that profile, by the
//! `bedrock:InferenceProfileArn` condition). The seed's `bedrock:InvokedModelId` key could
//! not be confirmed in AWS's documentation, so scoping is by resource, which IAM enforces.

use serde_json::{Value, json};

use crate::request::Availability;
use crate::role::RoleName;
use crate::vocabulary::{AccountId, InvokeAction, ModelId, Region};

/// IAM's limit on an inline role policy (characters, white space excluded).
pub const INLINE_POLICY_LIMIT: usize = 10_240;

/// A command as argument words; [`CliCommand::render`] quotes them for a POSIX shell.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CliCommand {
    /// `aws`, the service, the operation and its arguments, unquoted.
    pub argv: Vec<String>,
}

impl CliCommand {
    fn new(words: &[&str]) -> Self {
        Self { argv: words.iter().map(|w| (*w).to_owned()).collect() }
    }

    fn arg(mut self, flag: &str, value: impl Into<String>) -> Self {
        self.argv.push(flag.to_owned());
        self.argv.push(value.into());
        self
    }

    /// One line to paste into a shell: every word that needs it single-quoted.
    pub fn render(&self) -> String {
        self.argv.iter().map(|w| shell_quote(w)).collect::<Vec<_>>().join(" ")
    }
}

/// Quotes `word` for a POSIX shell so that it stays one word, verbatim.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+%".contains(c));
    if plain { word.to_owned() } else { format!("'{}'", word.replace('\'', r"'\''")) }
}

/// The geography prefix of the system cross-region inference profile for `region`.
fn geography(region: &Region) -> &'static str {
    match region.as_str().split('-').next() {
        Some("eu") => "eu",
        Some("ap") => "apac",
        Some("ca") => "ca",
        _ => "us",
    }
}

/// `arn:aws:bedrock:{region}::foundation-model/{model}`
pub fn foundation_model_arn(region: &str, model: &ModelId) -> String {
    format!("arn:aws:bedrock:{region}::foundation-model/{model}")
}

/// The system cross-region inference profile used for High Availability.
pub fn inference_profile_arn(account: &AccountId, region: &Region, model: &ModelId) -> String {
    format!("arn:aws:bedrock:{region}:{account}:inference-profile/{}.{model}", geography(region))
}

/// Who may assume the workload role: principals of the workload's own account (whose
/// own policies then decide which compute identities assume it).
pub fn trust_policy(account: &AccountId) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "WorkloadAccountAssumesRole",
            "Effect": "Allow",
            "Principal": { "AWS": format!("arn:aws:iam::{account}:root") },
            "Action": "sts:AssumeRole"
        }]
    })
}

/// The workload's invoke policy: the approved actions on the approved model, nothing else.
pub fn permission_policy(
    account: &AccountId,
    region: &Region,
    model: &ModelId,
    actions: &std::collections::BTreeSet<InvokeAction>,
    availability: Availability,
) -> Value {
    let actions: Vec<&str> = actions.iter().map(|a| a.iam_action()).collect();
    match availability {
        Availability::Standard => json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "InvokeApprovedModel",
                "Effect": "Allow",
                "Action": actions,
                "Resource": foundation_model_arn(region.as_str(), model)
            }]
        }),
        Availability::HighAvailability => {
            let profile = inference_profile_arn(account, region, model);
            json!({
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "InvokeApprovedInferenceProfile",
                        "Effect": "Allow",
                        "Action": actions,
                        "Resource": profile
                    },
                    {
                        "Sid": "InvokeApprovedModelThroughProfileOnly",
                        "Effect": "Allow",
                        "Action": actions,
                        "Resource": foundation_model_arn("*", model),
                        "Condition": { "StringEquals": { "bedrock:InferenceProfileArn": profile } }
                    }
                ]
            })
        }
    }
}

/// Step 1: confirm the model is reachable in the account and region.
pub fn verify_model_access(model: &ModelId, region: &Region) -> CliCommand {
    CliCommand::new(&["aws", "bedrock", "get-foundation-model"])
        .arg("--model-identifier", model.as_str())
        .arg("--region", region.as_str())
}

/// Step 2: create the dedicated role, tagged with its workload.
pub fn create_role(role: &RoleName, account: &AccountId, workload_name: &str, workload_id: &str) -> CliCommand {
    CliCommand::new(&["aws", "iam", "create-role"])
        .arg("--role-name", role.as_str())
        .arg("--assume-role-policy-document", trust_policy(account).to_string())
        .arg("--description", format!("FinOps Center dedicated role for {}", printable(workload_name, 900)))
        .arg("--tags", format!("Key=finops:workload-id,Value={workload_id}"))
}

/// Step 3: put the generated invoke policy on the role.
pub fn put_role_policy(role: &RoleName, policy: &Value) -> CliCommand {
    CliCommand::new(&["aws", "iam", "put-role-policy"])
        .arg("--role-name", role.as_str())
        .arg("--policy-name", "finops-invoke-approved-model")
        .arg("--policy-document", policy.to_string())
}

/// MAP task: an application inference profile tagged `map-migrated=mig{MPEID}`.
pub fn create_map_inference_profile(role: &RoleName, region: &Region, model: &ModelId, mpe_id: &str) -> CliCommand {
    CliCommand::new(&["aws", "bedrock", "create-inference-profile"])
        .arg("--inference-profile-name", format!("{}-map", role.as_str()))
        .arg("--model-source", format!("copyFrom={}", foundation_model_arn(region.as_str(), model)))
        .arg("--tags", format!("key=map-migrated,value=mig{mpe_id}"))
        .arg("--region", region.as_str())
}

/// Coding path: the permission set named like the role, within Identity Center's limit.
/// A long name loses letters from its slug, never its 4-character suffix: the suffix is
/// what keeps two workloads with long, similar names apart (`finops-customer-support-
/// assistant-x7k2` and `…-assistant-q9z1` must not share a permission set). CUR then
/// shows the developers as `AWSReservedSSO_{this name}_{hex}/{user}`.
pub fn permission_set_name(role: &RoleName) -> String {
    crate::role::permission_set_for(role.as_str())
}

/// Coding path, step 1: create the permission set.
pub fn create_permission_set(instance_arn: &str, role: &RoleName) -> CliCommand {
    CliCommand::new(&["aws", "sso-admin", "create-permission-set"])
        .arg("--instance-arn", instance_arn)
        .arg("--name", permission_set_name(role))
        .arg("--session-duration", "PT8H")
}

/// Coding path, step 2: put the invoke policy on the permission set.
pub fn put_permission_set_policy(instance_arn: &str, permission_set_arn: &str, policy: &Value) -> CliCommand {
    CliCommand::new(&["aws", "sso-admin", "put-inline-policy-to-permission-set"])
        .arg("--instance-arn", instance_arn)
        .arg("--permission-set-arn", permission_set_arn)
        .arg("--inline-policy", policy.to_string())
}

/// Drops control characters and bounds the length: IAM descriptions refuse them.
fn printable(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// The size IAM counts for an inline policy (white space outside strings excluded).
pub fn policy_size(policy: &Value) -> usize {
    policy.to_string().chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::role::RoleSuffix;
    use proptest::prelude::*;

    fn account() -> AccountId {
        AccountId::parse("123456789012").unwrap()
    }
    fn region() -> Region {
        Region::parse("us-east-1").unwrap()
    }
    fn model() -> ModelId {
        ModelId::parse("anthropic.claude-sonnet-4-20250514-v1:0").unwrap()
    }
    fn actions() -> std::collections::BTreeSet<InvokeAction> {
        [InvokeAction::InvokeModel, InvokeAction::Converse].into()
    }

    /// Every Resource in a policy, flattened.
    fn resources(policy: &Value) -> Vec<String> {
        policy["Statement"].as_array().unwrap().iter().map(|s| s["Resource"].as_str().unwrap().to_owned()).collect()
    }

    #[test]
    fn the_standard_policy_names_only_the_approved_model_and_actions() {
        let policy = permission_policy(&account(), &region(), &model(), &actions(), Availability::Standard);
        let text = policy.to_string();
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["Version"], "2012-10-17");
        assert_eq!(
            resources(&parsed),
            vec!["arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-20250514-v1:0"]
        );
        assert_eq!(parsed["Statement"][0]["Action"], json!(["bedrock:InvokeModel", "bedrock:Converse"]));
        assert!(!text.contains('*'), "no wildcard anywhere in a Standard policy: {text}");
        assert!(policy_size(&policy) < INLINE_POLICY_LIMIT);
    }

    #[test]
    fn high_availability_adds_the_profile_and_only_through_it() {
        let policy = permission_policy(&account(), &region(), &model(), &actions(), Availability::HighAvailability);
        let profile =
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-20250514-v1:0";
        assert_eq!(
            resources(&policy),
            vec![
                profile.to_owned(),
                "arn:aws:bedrock:*::foundation-model/anthropic.claude-sonnet-4-20250514-v1:0".into()
            ]
        );
        assert_eq!(policy["Statement"][1]["Condition"]["StringEquals"]["bedrock:InferenceProfileArn"], profile);
        let eu = permission_policy(
            &account(),
            &Region::parse("eu-west-1").unwrap(),
            &model(),
            &actions(),
            Availability::HighAvailability,
        );
        assert!(resources(&eu)[0].contains("inference-profile/eu."));
    }

    #[test]
    fn commands_carry_the_documents_verbatim() {
        let role = RoleName::generate("Support bot", &RoleSuffix::parse("ab12").unwrap());
        let cmd = create_role(&role, &account(), "Support bot", "w-1");
        let i = cmd.argv.iter().position(|w| w == "--assume-role-policy-document").unwrap();
        let trust: Value = serde_json::from_str(&cmd.argv[i + 1]).unwrap();
        assert_eq!(trust["Statement"][0]["Principal"]["AWS"], "arn:aws:iam::123456789012:root");
        assert_eq!(
            verify_model_access(&model(), &region()).render(),
            "aws bedrock get-foundation-model --model-identifier anthropic.claude-sonnet-4-20250514-v1:0 --region us-east-1"
        );
        let map = create_map_inference_profile(&role, &region(), &model(), "MPE123");
        assert!(map.render().contains("key=map-migrated,value=migMPE123"), "{}", map.render());
        assert_eq!(permission_set_name(&role), role.as_str(), "short names are used as they are");
    }

    proptest! {
        /// Whatever the workload is called, every command splits back into exactly its
        /// words in a POSIX shell, and the role name in it is valid for IAM.
        #[test]
        fn commands_split_into_their_words(name in "\\PC{0,80}", bits in any::<u32>()) {
            let role = RoleName::generate(&name, &RoleSuffix::from_entropy(bits));
            let policy = permission_policy(&account(), &region(), &model(), &actions(), Availability::HighAvailability);
            for cmd in [
                create_role(&role, &account(), &name, "0192f0c4-0000-7000-8000-000000000001"),
                put_role_policy(&role, &policy),
                create_map_inference_profile(&role, &region(), &model(), "MPE1"),
                create_permission_set("arn:aws:sso:::instance/ssoins-1234", &role),
            ] {
                let words = shell_words::split(&cmd.render()).unwrap();
                prop_assert_eq!(&words, &cmd.argv);
            }
            prop_assert!(crate::role::is_valid_iam_role_name(role.as_str()));
        }

        #[test]
        fn quoting_survives_any_text(word in "\\PC{0,40}") {
            let words = shell_words::split(&shell_quote(&word)).unwrap();
            prop_assert_eq!(words, vec![word]);
        }
    }
}
