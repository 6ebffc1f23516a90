//! AWS Signature Version 4, for the one shape of request this crate sends: a Query API
//! call (`POST /`, form body) or, in the test vector, its `GET` form. Written out rather
//! than pulled from an SDK: IAM's few calls do not justify the SDK's build, and the
//! algorithm is small and pinned by AWS's published example (see the tests).

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Long-term or temporary AWS credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `AKIA…` / `ASIA…`
    pub access_key_id: String,
    /// The secret.
    pub secret_access_key: String,
    /// The session token of temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    // The secret never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

impl Credentials {
    /// From the standard environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`); `None` when the key pair is not set.
    pub fn from_env() -> Option<Self> {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.trim().is_empty());
        Some(Self {
            access_key_id: var("AWS_ACCESS_KEY_ID")?,
            secret_access_key: var("AWS_SECRET_ACCESS_KEY")?,
            session_token: var("AWS_SESSION_TOKEN"),
        })
    }
}

/// What to sign.
pub struct Signable<'a> {
    /// `GET` or `POST`.
    pub method: &'a str,
    /// The `Host` header.
    pub host: &'a str,
    /// The canonical query string (already sorted and encoded), empty for a POST.
    pub query: &'a str,
    /// Headers besides `host` and `x-amz-date`, lower-case names.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body.
    pub payload: &'a [u8],
    /// Signing region (`us-east-1` for IAM).
    pub region: &'a str,
    /// Signing service (`iam`).
    pub service: &'a str,
    /// The request time.
    pub at: DateTime<Utc>,
}

/// The headers to add: `x-amz-date`, `authorization` and, for temporary credentials,
/// `x-amz-security-token`.
pub fn sign(request: &Signable<'_>, credentials: &Credentials) -> Vec<(&'static str, String)> {
    let amz_date = request.at.format("%Y%m%dT%H%M%SZ").to_string();
    let day = request.at.format("%Y%m%d").to_string();
    let mut headers: Vec<(String, String)> =
        request.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned())).collect();
    headers.push(("host".into(), request.host.to_owned()));
    headers.push(("x-amz-date".into(), amz_date.clone()));
    if let Some(token) = &credentials.session_token {
        headers.push(("x-amz-security-token".into(), token.clone()));
    }
    headers.sort();
    let signed_headers = headers.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(";");
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let canonical_request = format!(
        "{}\n/\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        request.method,
        request.query,
        hex::encode(Sha256::digest(request.payload))
    );
    let scope = format!("{day}/{}/{}/aws4_request", request.region, request.service);
    let string_to_sign =
        format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex::encode(Sha256::digest(canonical_request)));
    let key = [day.as_str(), request.region, request.service, "aws4_request"]
        .iter()
        .fold(format!("AWS4{}", credentials.secret_access_key).into_bytes(), |key, part| hmac(&key, part.as_bytes()));
    let signature = hex::encode(hmac(&key, string_to_sign.as_bytes()));
    let mut out = vec![
        ("x-amz-date", amz_date),
        (
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
                credentials.access_key_id
            ),
        ),
    ];
    if let Some(token) = &credentials.session_token {
        out.push(("x-amz-security-token", token.clone()));
    }
    out
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's worked example (General Reference, "Create a signed AWS API request"):
    /// IAM `ListUsers` on 2015-08-30 with the documentation's example key.
    #[test]
    fn signs_awss_published_example_exactly() {
        let credentials = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        };
        let at = DateTime::parse_from_rfc3339("2015-08-30T12:36:00Z").unwrap().with_timezone(&Utc);
        let headers = sign(
            &Signable {
                method: "GET",
                host: "iam.amazonaws.com",
                query: "Action=ListUsers&Version=2010-05-08",
                headers: &[("content-type", "application/x-www-form-urlencoded; charset=utf-8")],
                payload: b"",
                region: "us-east-1",
                service: "iam",
                at,
            },
            &credentials,
        );
        let authorization = &headers.iter().find(|(k, _)| *k == "authorization").unwrap().1;
        assert_eq!(
            authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
        assert!(format!("{credentials:?}").contains("AKIDEXAMPLE") && !format!("{credentials:?}").contains("wJal"));
    }
}
