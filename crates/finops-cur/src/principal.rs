//! `line_item_iam_principal`: who called Bedrock.

use serde::{Deserialize, Serialize};

/// A caller identity as CUR records it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Principal {
    /// `arn:aws:iam::{account}:user/{path/}{name}`; Bedrock API keys appear as users named
    /// `BedrockAPIKey-…`.
    IamUser {
        /// The account.
        account: String,
        /// The user name.
        name: String,
    },
    /// `arn:aws:sts::{account}:assumed-role/{role}/{session}`: an application, a federated
    /// user (session = e-mail or user id) or a gateway (session per user or tenant).
    AssumedRole {
        /// The account.
        account: String,
        /// The role name.
        role: String,
        /// The session name.
        session: String,
    },
    /// `arn:aws:sts::{account}:federated-user/{name}`: a user federated by
    /// `GetFederationToken` (a broker or an old SSO set-up), no role behind it.
    FederatedUser {
        /// The account.
        account: String,
        /// The name the broker gave.
        name: String,
    },
    /// `arn:aws:iam::{account}:root`: the account's root user.
    Root {
        /// The account.
        account: String,
    },
    /// An IAM Identity Center session:
    /// `arn:aws:sts::{account}:assumed-role/AWSReservedSSO_{permission_set}_{hex}/{user}`.
    IdentityCenter {
        /// The account.
        account: String,
        /// The permission set's name.
        permission_set: String,
        /// The role's hex suffix.
        hash: String,
        /// The user (usually an e-mail).
        user: String,
    },
}

/// Why a principal could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not an IAM principal ARN: {reason}")]
pub struct PrincipalError {
    /// The value.
    pub value: String,
    /// What is wrong.
    pub reason: &'static str,
}

impl Principal {
    /// Parses the column's value; an empty value (non-Bedrock rows, or caller identity not
    /// enabled) is `Ok(None)`.
    pub fn parse(value: &str) -> Result<Option<Principal>, PrincipalError> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(None);
        }
        let err = |reason| PrincipalError { value: value.to_owned(), reason };
        let parts: Vec<&str> = value.splitn(6, ':').collect();
        let [arn, partition, service, region, account, resource] = parts.as_slice() else {
            return Err(err("expected arn:partition:service::account:resource"));
        };
        if *arn != "arn" || !partition.starts_with("aws") {
            return Err(err("does not start with arn:aws"));
        }
        if !region.is_empty() {
            return Err(err("IAM and STS ARNs have no region"));
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("the account is not 12 digits"));
        }
        let account = (*account).to_owned();
        match *service {
            "iam" if *resource == "root" => Ok(Some(Principal::Root { account })),
            "iam" => {
                let path = resource
                    .strip_prefix("user/")
                    .ok_or_else(|| err("an IAM principal in CUR is a user or the root user"))?;
                let name =
                    path.rsplit('/').next().filter(|n| !n.is_empty()).ok_or_else(|| err("the user name is empty"))?;
                Ok(Some(Principal::IamUser { account, name: name.to_owned() }))
            }
            "sts" if resource.starts_with("federated-user/") => {
                let name = &resource["federated-user/".len()..];
                if name.is_empty() || name.contains('/') {
                    return Err(err("a federated user ARN names one user"));
                }
                Ok(Some(Principal::FederatedUser { account, name: name.to_owned() }))
            }
            "sts" => {
                let rest = resource
                    .strip_prefix("assumed-role/")
                    .ok_or_else(|| err("an STS principal is an assumed-role session or a federated user"))?;
                let (role, session) =
                    rest.split_once('/').ok_or_else(|| err("an assumed-role ARN names a role and a session"))?;
                if role.is_empty() || session.is_empty() {
                    return Err(err("the role or the session name is empty"));
                }
                if let Some((set, hash)) = role.strip_prefix("AWSReservedSSO_").and_then(|r| r.rsplit_once('_'))
                    && !set.is_empty()
                    && !hash.is_empty()
                    && hash.bytes().all(|b| b.is_ascii_hexdigit())
                {
                    return Ok(Some(Principal::IdentityCenter {
                        account,
                        permission_set: set.to_owned(),
                        hash: hash.to_owned(),
                        user: session.to_owned(),
                    }));
                }
                Ok(Some(Principal::AssumedRole { account, role: role.to_owned(), session: session.to_owned() }))
            }
            _ => Err(err("the service is neither iam nor sts")),
        }
    }

    /// The account the principal lives in.
    pub fn account(&self) -> &str {
        match self {
            Self::IamUser { account, .. }
            | Self::AssumedRole { account, .. }
            | Self::FederatedUser { account, .. }
            | Self::Root { account }
            | Self::IdentityCenter { account, .. } => account,
        }
    }

    /// The role behind a session (`None` for users): what claims and dedicated-role rules
    /// are about.
    pub fn role_name(&self) -> Option<String> {
        match self {
            Self::IamUser { .. } | Self::FederatedUser { .. } | Self::Root { .. } => None,
            Self::AssumedRole { role, .. } => Some(role.clone()),
            Self::IdentityCenter { permission_set, hash, .. } => {
                Some(format!("AWSReservedSSO_{permission_set}_{hash}"))
            }
        }
    }

    /// A Bedrock API key (an IAM user Bedrock created for the key).
    pub fn is_bedrock_api_key(&self) -> bool {
        matches!(self, Self::IamUser { name, .. } if name.starts_with("BedrockAPIKey-"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_documented_form_parses() {
        let user = Principal::parse("arn:aws:iam::123456789012:user/alice").unwrap().unwrap();
        assert_eq!(user, Principal::IamUser { account: "123456789012".into(), name: "alice".into() });
        let key = Principal::parse("arn:aws:iam::123456789012:user/BedrockAPIKey-234s").unwrap().unwrap();
        assert!(key.is_bedrock_api_key());
        let app = Principal::parse("arn:aws:sts::123456789012:assumed-role/Role-1/session-123").unwrap().unwrap();
        assert_eq!(app.role_name().as_deref(), Some("Role-1"));
        let fed =
            Principal::parse("arn:aws:sts::123456789012:assumed-role/BedrockRole/user-1@acme.org").unwrap().unwrap();
        assert!(matches!(fed, Principal::AssumedRole { ref session, .. } if session == "user-1@acme.org"));
        let sso = Principal::parse(
            "arn:aws:sts::210987654321:assumed-role/AWSReservedSSO_DataScience_3f2a9c1b0e4d5a67/ana@acme.org",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            sso,
            Principal::IdentityCenter {
                account: "210987654321".into(),
                permission_set: "DataScience".into(),
                hash: "3f2a9c1b0e4d5a67".into(),
                user: "ana@acme.org".into()
            }
        );
        assert_eq!(sso.role_name().as_deref(), Some("AWSReservedSSO_DataScience_3f2a9c1b0e4d5a67"));
        let agent =
            Principal::parse("arn:aws:sts::123456789012:assumed-role/agent-role/BedrockAgentCore-0b425b4e").unwrap();
        assert!(matches!(agent, Some(Principal::AssumedRole { .. })));
        let federated = Principal::parse("arn:aws:sts::123456789012:federated-user/bob@acme.org").unwrap().unwrap();
        assert_eq!(federated, Principal::FederatedUser { account: "123456789012".into(), name: "bob@acme.org".into() });
        assert_eq!(federated.role_name(), None, "no role behind a federated user: nothing a role claim can match");
        let root = Principal::parse("arn:aws:iam::123456789012:root").unwrap().unwrap();
        assert_eq!(root, Principal::Root { account: "123456789012".into() });
        assert_eq!(Principal::parse("").unwrap(), None, "non-Bedrock rows have no principal");
        assert_eq!(Principal::parse("  ").unwrap(), None);
    }

    #[test]
    fn malformed_values_say_what_is_wrong() {
        for (bad, reason) in [
            ("arn:aws:iam::12345:user/x", "the account is not 12 digits"),
            ("arn:aws:iam::123456789012:role/x", "an IAM principal in CUR is a user or the root user"),
            ("arn:aws:sts::123456789012:federated-user/", "a federated user ARN names one user"),
            ("arn:aws:sts::123456789012:federated-user/a/b", "a federated user ARN names one user"),
            ("arn:aws:sts::123456789012:role/x", "an STS principal is an assumed-role session or a federated user"),
            ("arn:aws:sts::123456789012:assumed-role/only-role", "an assumed-role ARN names a role and a session"),
            ("arn:aws:s3:::bucket", "the account is not 12 digits"),
            ("not an arn", "expected arn:partition:service::account:resource"),
        ] {
            assert_eq!(Principal::parse(bad).unwrap_err().reason, reason, "{bad}");
        }
    }

    fn session() -> impl Strategy<Value = String> {
        "[A-Za-z0-9+=,.@_-]{1,64}"
    }

    proptest! {
        #[test]
        fn assumed_roles_round_trip(account in "[0-9]{12}", role in "[A-Za-z0-9+=,.@_-]{1,64}", session in session()) {
            let arn = format!("arn:aws:sts::{account}:assumed-role/{role}/{session}");
            let parsed = Principal::parse(&arn).unwrap().unwrap();
            prop_assert_eq!(parsed.account(), account.as_str());
            prop_assert!(parsed.role_name().is_some());
        }

        #[test]
        fn identity_center_sessions_are_recognised(set in "[A-Za-z0-9]{1,20}", hash in "[0-9a-f]{16}", user in session()) {
            let arn = format!("arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_{set}_{hash}/{user}");
            let is_sso = matches!(Principal::parse(&arn).unwrap(), Some(Principal::IdentityCenter { .. }));
            prop_assert!(is_sso);
        }

        #[test]
        fn federated_users_round_trip(account in "[0-9]{12}", name in "[A-Za-z0-9+=,.@_-]{2,32}") {
            let arn = format!("arn:aws:sts::{account}:federated-user/{name}");
            let parsed = Principal::parse(&arn).unwrap().unwrap();
            prop_assert_eq!(parsed, Principal::FederatedUser { account, name });
        }

        #[test]
        fn any_text_yields_a_value_or_an_error_never_a_panic(text in "\\PC{0,120}") {
            let _ = Principal::parse(&text);
        }
    }
}
