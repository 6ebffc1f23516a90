//! The IAM Query API: `POST /` with a form body, XML answers.

use std::time::Duration;

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
        let host = endpoint
            .strip_prefix("https://")
            .or_else(|| endpoint.strip_prefix("http://"))
            .filter(|h| !h.is_empty() && !h.contains('/'))
            .ok_or_else(|| format!("`{endpoint}` is not an http(s) endpoint without a path"))?
            .to_owned();
        let http = reqwest::Client::builder().timeout(CALL_TIMEOUT).build().map_err(|e| e.to_string())?;
        Ok(Self { http, endpoint, host, credentials })
    }

    /// Where it sends.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Sends `action` with `parameters`; IAM's answer (XML) on success.
    pub async fn call(&self, action: &str, parameters: &[(&str, String)]) -> Result<String, IamError> {
        let body = {
            // The serializer is not Send: finished before the first await.
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("Action", action).append_pair("Version", "2010-05-08");
            for (name, value) in parameters {
                form.append_pair(name, value);
            }
            form.finish()
        };
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let signed = sign(
            &Signable {
                method: "POST",
                host: &self.host,
                query: "",
                headers: &[("content-type", content_type)],
                payload: body.as_bytes(),
                region: SIGNING_REGION,
                service: "iam",
                at: chrono::Utc::now(),
            },
            &self.credentials,
        );
        let mut request = self.http.post(format!("{}/", self.endpoint)).header("content-type", content_type);
        for (name, value) in signed {
            request = request.header(name, value);
        }
        let transport = |reason: String| IamError::Transport { endpoint: self.endpoint.clone(), reason };
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
        let result = self.call(call.action(), &call.parameters()).await;
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
