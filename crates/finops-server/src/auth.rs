//! Who is calling, and may they? Every finops.v1 call carries `authorization: Bearer
//! <JWT>`; the token is verified (HS256 against the configured key) and its claims name
//! the subject and the role. Authorisation follows DOMAIN.md §1's role table; ownership
//! checks (a Product Owner acts on their own requests only) are made by each service on
//! the resource it loaded. A denied call is refused before any command is decided, so it
//! leaves no event.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tonic::{Request, Status};

/// The roles of DOMAIN.md §1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Submits requests, claims, owns workloads.
    ProductOwner,
    /// Reviews, approves, runs the catalog; sees everything.
    FinopsLead,
    /// Works the task queue; no spend.
    CloudEngineer,
    /// Approves the weekly roll-up of a portfolio.
    PortfolioOwner,
    /// Reads chargeback and attribution; everything, read-only.
    Finance,
    /// Replays and verifies; everything, read-only.
    Auditor,
    /// Ingests CUR, rebuilds projections.
    Operator,
}

impl Role {
    /// The snake_case name used in tokens and metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProductOwner => "product_owner",
            Self::FinopsLead => "finops_lead",
            Self::CloudEngineer => "cloud_engineer",
            Self::PortfolioOwner => "portfolio_owner",
            Self::Finance => "finance",
            Self::Auditor => "auditor",
            Self::Operator => "operator",
        }
    }

    /// Reads everything (and acts on nothing it does not own).
    pub fn sees_everything(self) -> bool {
        matches!(self, Self::FinopsLead | Self::Finance | Self::Auditor)
    }
}

/// The caller, as the token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`.
    pub subject: String,
    /// The token's `role`.
    pub role: Role,
}

impl Principal {
    /// This principal deciding now, for `rationale` (who, role, why, when).
    pub fn decider(&self, rationale: &str) -> finops_domain::gaps::Decider {
        finops_domain::gaps::Decider {
            by: self.subject.clone(),
            role: self.role.as_str().to_owned(),
            rationale: rationale.to_owned(),
            at: chrono::Utc::now(),
        }
    }

    /// The context of a command this principal issues, for the request whose digest is
    /// `fingerprint` ([`fingerprint`]): a retry with the same `request_id` must repeat it.
    pub fn context(
        &self,
        fingerprint: &str,
        request_id: uuid::Uuid,
        rationale: Option<String>,
    ) -> finops_governance::CommandContext {
        finops_governance::CommandContext {
            actor_id: self.subject.clone(),
            actor_role: self.role.as_str().to_owned(),
            request_id,
            rationale,
            correlation_id: Some(request_id),
            causation_id: None,
            fingerprint: Some(fingerprint.to_owned()),
        }
    }

    /// Refuses unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role], action: &str) -> Result<(), Status> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            let allowed: Vec<_> = roles.iter().map(|r| r.as_str()).collect();
            Err(Status::permission_denied(format!(
                "{} ({}) may not {action}; allowed: {}",
                self.subject,
                self.role.as_str(),
                allowed.join(", ")
            )))
        }
    }
}

/// A digest of a request message (its protobuf bytes, `request_id` included), the
/// fingerprint a retry is compared by.
pub fn fingerprint<M: prost::Message>(message: &M) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(message.encode_to_vec()))
}

/// The token's claims.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Subject: the user's id.
    pub sub: String,
    /// The role they act in.
    pub role: Role,
    /// Expiry (seconds since the epoch).
    pub exp: u64,
    /// Issuer.
    pub iss: String,
}

/// The issuer every FinOps Center token names.
pub const ISSUER: &str = "finops-center";

/// Verifies tokens (and, in dev mode, issues them).
#[derive(Clone)]
pub struct Authenticator {
    decoding: DecodingKey,
    encoding: EncodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Verifies HS256 tokens signed with `secret` (at least 32 bytes).
    pub fn hs256(secret: &[u8]) -> Result<Self, String> {
        if secret.len() < 32 {
            return Err(format!("the JWT secret is {} bytes; use at least 32", secret.len()));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        Ok(Self { decoding: DecodingKey::from_secret(secret), encoding: EncodingKey::from_secret(secret), validation })
    }

    /// Issues a token (dev mode and tests): `subject` in `role` for `ttl_seconds`. A
    /// subject no server would accept (see [`check_subject`]) is refused here too.
    pub fn issue(&self, subject: &str, role: Role, ttl_seconds: u64) -> Result<String, String> {
        check_subject(subject)?;
        let claims = Claims {
            sub: subject.to_owned(),
            role,
            exp: jsonwebtoken::get_current_timestamp() + ttl_seconds,
            iss: ISSUER.to_owned(),
        };
        Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing cannot fail"))
    }

    /// The principal a request's bearer token names, or `UNAUTHENTICATED`.
    pub fn principal<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .ok_or_else(|| Status::unauthenticated("no `authorization: Bearer <token>` header; sign in first"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .ok_or_else(|| Status::unauthenticated("the authorization header is not `Bearer <token>`"))?;
        let data = jsonwebtoken::decode::<Claims>(token.trim(), &self.decoding, &self.validation)
            .map_err(|e| Status::unauthenticated(format!("the bearer token was refused: {e}")))?;
        check_subject(&data.claims.sub)
            .map_err(|reason| Status::unauthenticated(format!("the bearer token was refused: {reason}")))?;
        Ok(Principal { subject: data.claims.sub, role: data.claims.role })
    }
}

/// Longest subject a token may name.
pub const MAX_SUBJECT_LEN: usize = 256;

/// A subject names a person: every decision records it as *who*, so an empty, blank or
/// padded one (or one with control characters, which would forge lines in a printed trail)
/// would leave a decision nobody made.
pub fn check_subject(subject: &str) -> Result<(), String> {
    if subject.trim().is_empty() {
        Err("its subject (`sub`) is empty; every decision must name who made it".to_owned())
    } else if subject.trim() != subject {
        Err(format!("its subject `{subject}` has leading or trailing white space"))
    } else if subject.chars().any(char::is_control) {
        Err("its subject contains control characters".to_owned())
    } else if subject.len() > MAX_SUBJECT_LEN {
        Err(format!("its subject is {} bytes long; at most {MAX_SUBJECT_LEN}", subject.len()))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Authenticator {
        Authenticator::hs256(b"0123456789abcdef0123456789abcdef").unwrap()
    }

    fn request_with(token: &str) -> Request<()> {
        let mut r = Request::new(());
        r.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        r
    }

    #[test]
    fn issued_tokens_verify_and_name_the_principal() {
        let a = auth();
        let p = a.principal(&request_with(&a.issue("po-maria", Role::ProductOwner, 60).unwrap())).unwrap();
        assert_eq!(p, Principal { subject: "po-maria".into(), role: Role::ProductOwner });
    }

    #[test]
    fn missing_forged_and_expired_tokens_are_unauthenticated() {
        let a = auth();
        let other = Authenticator::hs256(b"another-secret-another-secret-xx").unwrap();
        for request in [
            Request::new(()),
            request_with("not-a-jwt"),
            request_with(&other.issue("mallory", Role::FinopsLead, 60).unwrap()),
        ] {
            let err = a.principal(&request).unwrap_err();
            assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err:?}");
        }
        let expired = Claims { sub: "x".into(), role: Role::Auditor, exp: 1, iss: ISSUER.into() };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &expired,
            &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
        )
        .unwrap();
        assert!(a.principal(&request_with(&token)).unwrap_err().message().contains("refused"));
        assert!(Authenticator::hs256(b"short").is_err());
    }

    /// Regression (issue 10.9): a validly signed token with an empty or blank subject was
    /// accepted and its decisions recorded `actor_id: ""`.
    #[test]
    fn a_token_naming_nobody_is_unauthenticated_and_never_issued() {
        let a = auth();
        for subject in ["", "   ", " po-maria", "po\nmaria"] {
            let forged = Claims {
                sub: subject.into(),
                role: Role::FinopsLead,
                exp: jsonwebtoken::get_current_timestamp() + 60,
                iss: ISSUER.into(),
            };
            let token = jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &forged,
                &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
            )
            .unwrap();
            let err = a.principal(&request_with(&token)).unwrap_err();
            assert_eq!(err.code(), tonic::Code::Unauthenticated, "{subject:?}: {err:?}");
            assert!(err.message().contains("subject"), "{}", err.message());
            assert!(a.issue(subject, Role::FinopsLead, 60).is_err(), "{subject:?} must not be minted");
        }
    }

    #[test]
    fn a_role_outside_the_table_is_denied_with_the_allowed_roles_named() {
        let p = Principal { subject: "ce-li".into(), role: Role::CloudEngineer };
        let err = p.require(&[Role::FinopsLead], "approve business requests").unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied);
        assert_eq!(err.message(), "ce-li (cloud_engineer) may not approve business requests; allowed: finops_lead");
    }
}
