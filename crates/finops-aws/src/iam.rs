//! The IAM Query API: `POST /` with a form body, XML answers.

use std::time::Duration;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use finops_domain::kill_switch::{AwsCall, CallOutcome};

use crate::sigv4::{Credentials, Signable, sign};

/// IAM's global endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://iam.amazonaws.com";

/// IAM signs in this region whatever the caller's.
const SIGNING_REGION: &str = "us-east-1";

/// How long one call may take before it counts as failed (and is retried).
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IamError {
    /// AWS answered with an error.
    #[error("{code}: {message}")]
    Aws {
        /// `AccessDenied`, `NoSuchEntity`, …
        code: String,
        /// AWS's words.
        message: String,
    },
    /// No answer (connection, timeout) or one that is not IAM's.
    #[error("no usable answer from IAM at {endpoint}: {reason}")]
    Transport {
        /// Where.
        endpoint: String,
        /// Why.
        reason: String,
    },
}

/// Sends IAM calls with one set of credentials.
#[derive(Clone)]
pub struct IamClient {
    http: reqwest::Client,
    endpoint: String,
    host: String,
    credentials: Credentials,
    /// Per-account roles to assume, when configured (see [`IamClient::assuming`]).
    assume: Option<Arc<AssumeRole>>,
}

/// How the client reaches each workload account: STS `AssumeRole` into the account's role
/// (`arn:aws:iam::{account}:role/…`), the session's credentials kept until shortly before
/// they expire.
struct AssumeRole {
    endpoint: String,
    host: String,
    role_template: String,
    sessions: Mutex<BTreeMap<String, (Credentials, DateTime<Utc>)>>,
}

/// STS signs in this region at its global endpoint.
const STS_VERSION: &str = "2011-06-15";

/// The default STS endpoint.
pub const DEFAULT_STS_ENDPOINT: &str = "https://sts.amazonaws.com";

fn host_of(endpoint: &str) -> Result<String, String> {
    endpoint
        .strip_prefix("https://")
        .or_else(|| endpoint.strip_prefix("http://"))
        .filter(|h| !h.is_empty() && !h.contains('/'))
        .map(str::to_owned)
        .ok_or_else(|| format!("`{endpoint}` is not an http(s) endpoint without a path"))
}

impl std::fmt::Debug for IamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IamClient").field("endpoint", &self.endpoint).field("credentials", &self.credentials).finish()
    }
}

impl IamClient {
    /// A client of the IAM endpoint `endpoint` (`https://iam.amazonaws.com`, or a local
    /// stand-in such as moto's server), or why the endpoint is unusable.
    pub fn new(endpoint: &str, credentials: Credentials) -> Result<Self, String> {
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        let host = host_of(&endpoint)?;
        let http = reqwest::Client::builder().timeout(CALL_TIMEOUT).build().map_err(|e| e.to_string())?;
        Ok(Self { http, endpoint, host, credentials, assume: None })
    }

    /// This client acting in each workload account through the role `role_template` names
    /// (`arn:aws:iam::{account}:role/finops-kill-switch`; `{account}` is the call's
    /// account), assumed with STS at `sts_endpoint` with the client's own credentials.
    pub fn assuming(mut self, sts_endpoint: &str, role_template: &str) -> Result<Self, String> {
        if !role_template.contains("{account}") || !role_template.starts_with("arn:") {
            return Err(format!("`{role_template}` is not a role ARN template with {{account}}"));
        }
        let endpoint = sts_endpoint.trim_end_matches('/').to_owned();
        self.assume = Some(Arc::new(AssumeRole {
            host: host_of(&endpoint)?,
            endpoint,
            role_template: role_template.to_owned(),
            sessions: Mutex::new(BTreeMap::new()),
        }));
        Ok(self)
    }

    /// The credentials to act in `account` with: the role's session there when roles are
    /// assumed, else the client's own.
    async fn credentials_for(&self, account: Option<&str>) -> Result<Credentials, IamError> {
        let (Some(assume), Some(account)) = (&self.assume, account) else { return Ok(self.credentials.clone()) };
        if let Some((credentials, until)) = assume.sessions.lock().expect("not poisoned").get(account)
            && Utc::now() + chrono::Duration::minutes(5) < *until
        {
            return Ok(credentials.clone());
        }
        let role = assume.role_template.replace("{account}", account);
        let parameters = [
            ("RoleArn", role.clone()),
            ("RoleSessionName", "finops-kill-switch".to_owned()),
            ("DurationSeconds", "900".to_owned()),
        ];
        let answer = self
            .post(&assume.endpoint, &assume.host, "sts", STS_VERSION, "AssumeRole", &parameters, &self.credentials)
            .await?;
        let field = |name: &str| {
            element(&answer, name).ok_or_else(|| IamError::Transport {
                endpoint: assume.endpoint.clone(),
                reason: format!("AssumeRole of {role} answered without {name}"),
            })
        };
        let credentials = Credentials {
            access_key_id: field("AccessKeyId")?,
            secret_access_key: field("SecretAccessKey")?,
            session_token: Some(field("SessionToken")?),
        };
        let until = DateTime::parse_from_rfc3339(&field("Expiration")?)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|_| Utc::now() + chrono::Duration::minutes(10));
        assume.sessions.lock().expect("not poisoned").insert(account.to_owned(), (credentials.clone(), until));
        Ok(credentials)
    }

    /// Where it sends.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Sends `action` with `parameters` with the client's own credentials; IAM's answer
    /// (XML) on success.
    pub async fn call(&self, action: &str, parameters: &[(&str, String)]) -> Result<String, IamError> {
        self.call_in(None, action, parameters).await
    }

    /// [`IamClient::call`] in `account` (through its assumed role, when configured).
    pub async fn call_in(
        &self,
        account: Option<&str>,
        action: &str,
        parameters: &[(&str, String)],
    ) -> Result<String, IamError> {
        let credentials = self.credentials_for(account).await?;
        self.post(&self.endpoint, &self.host, "iam", "2010-05-08", action, parameters, &credentials).await
    }

    /// One signed Query API call.
    #[allow(clippy::too_many_arguments)]
    async fn post(
        &self,
        endpoint: &str,
        host: &str,
        service: &str,
        version: &str,
        action: &str,
        parameters: &[(&str, String)],
        credentials: &Credentials,
    ) -> Result<String, IamError> {
        let body = {
            // The serializer is not Send: finished before the first await.
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("Action", action).append_pair("Version", version);
            for (name, value) in parameters {
                form.append_pair(name, value);
            }
            form.finish()
        };
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let signed = sign(
            &Signable {
                method: "POST",
                host,
                query: "",
                headers: &[("content-type", content_type)],
                payload: body.as_bytes(),
                region: SIGNING_REGION,
                service,
                at: chrono::Utc::now(),
            },
            credentials,
        );
        let mut request = self.http.post(format!("{endpoint}/")).header("content-type", content_type);
        for (name, value) in signed {
            request = request.header(name, value);
        }
        let transport = |reason: String| IamError::Transport { endpoint: endpoint.to_owned(), reason };
        let response = request.body(body).send().await.map_err(|e| transport(e.to_string()))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| transport(e.to_string()))?;
        if status.is_success() {
            return Ok(text);
        }
        match (element(&text, "Code"), element(&text, "Message")) {
            (Some(code), message) => Err(IamError::Aws { code, message: message.unwrap_or_default() }),
            _ => Err(transport(format!("HTTP {status}: {}", text.chars().take(200).collect::<String>()))),
        }
    }

    /// Sends one decided call; what came of it, as the decision records it. Deleting what
    /// is already gone counts as done (a retry after a crash, or a person ran it first).
    pub async fn apply(&self, index: usize, call: &AwsCall) -> CallOutcome {
        let result = self.call_in(Some(call.account().as_str()), call.action(), &call.parameters()).await;
        let (ok, detail) = match result {
            Ok(answer) => (true, format!("done (request {})", element(&answer, "RequestId").unwrap_or_default())),
            Err(IamError::Aws { code, message })
                if code == "NoSuchEntity" && matches!(call, AwsCall::DeleteRolePolicy { .. }) =>
            {
                (true, format!("already absent ({code}: {message})"))
            }
            Err(e) => (false, e.to_string()),
        };
        if !ok {
            tracing::warn!(action = call.action(), role = call.role_name(), %detail, "IAM call failed");
        }
        CallOutcome { call: index, ok, detail }
    }
}

/// The text of the first `<name>…</name>` in an XML answer (IAM's answers are flat enough
/// that this is all that is read: a request id, an error's code and message).
fn element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(unescape(xml[start..end].trim()))
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_code_and_message_of_an_iam_error() {
        let xml = "<ErrorResponse><Error><Type>Sender</Type><Code>NoSuchEntity</Code>\
                   <Message>The role with name x cannot be found &amp; so on.</Message></Error>\
                   <RequestId>r-1</RequestId></ErrorResponse>";
        assert_eq!(element(xml, "Code").as_deref(), Some("NoSuchEntity"));
        assert_eq!(element(xml, "Message").as_deref(), Some("The role with name x cannot be found & so on."));
        assert_eq!(element(xml, "RequestId").as_deref(), Some("r-1"));
        assert_eq!(element(xml, "Nope"), None);
    }

    #[test]
    fn refuses_an_endpoint_with_a_path() {
        let credentials = Credentials { access_key_id: "a".into(), secret_access_key: "b".into(), session_token: None };
        assert!(IamClient::new("http://127.0.0.1:5000", credentials.clone()).is_ok());
        assert!(IamClient::new("iam.amazonaws.com", credentials.clone()).is_err());
        assert!(IamClient::new("https://iam.amazonaws.com/x", credentials).is_err());
    }
}
