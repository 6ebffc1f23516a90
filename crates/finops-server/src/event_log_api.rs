//! `finops.v1.EventLogService`: the auditor's view of the log over gRPC.

use std::sync::Arc;

use finops_eventlog::{BreakKind, ChainHash, EventStore, Position, verify_chain};
use finops_proto::v1::event_log_service_server::EventLogService;
use finops_proto::v1::{ChainBreak, GetLogHeadRequest, LogHead, VerifyLogRequest, VerifyLogResponse};
use tonic::{Request, Response, Status};

use crate::auth::{Authenticator, Role};

/// Serves head and verification from the configured store.
#[derive(Clone)]
pub struct EventLogApi {
    store: Arc<dyn EventStore>,
    auth: Arc<Authenticator>,
}

impl EventLogApi {
    /// Serves `store`.
    pub fn new(store: Arc<dyn EventStore>, auth: Arc<Authenticator>) -> Self {
        Self { store, auth }
    }

    /// The log's integrity is for those who answer for it.
    fn authorise<T>(&self, request: &Request<T>) -> Result<(), Status> {
        self.auth.principal(request)?.require(
            &[Role::Auditor, Role::FinopsLead, Role::Operator, Role::Finance],
            "read the event log's head or verify it",
        )
    }
}

#[tonic::async_trait]
impl EventLogService for EventLogApi {
    #[tracing::instrument(skip_all)]
    async fn get_log_head(&self, request: Request<GetLogHeadRequest>) -> Result<Response<LogHead>, Status> {
        self.authorise(&request)?;
        let head = self.store.head().await.map_err(crate::status::from_log)?;
        Ok(Response::new(LogHead {
            position: head.position.0,
            hash: head.hash.to_hex(),
            backend: self.store.backend().to_string(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn verify_log(&self, request: Request<VerifyLogRequest>) -> Result<Response<VerifyLogResponse>, Status> {
        self.authorise(&request)?;
        let request = request.into_inner();
        let expected = if request.expected_head_hash.is_empty() {
            None
        } else {
            let hash = ChainHash::from_hex(&request.expected_head_hash).ok_or_else(|| {
                Status::invalid_argument(format!(
                    "expected_head_hash `{}` is not 64 hex digits",
                    request.expected_head_hash
                ))
            })?;
            Some((Position(request.expected_head_position), hash))
        };
        let report = verify_chain(self.store.as_ref(), expected).await.map_err(crate::status::from_log)?;
        let first_break = report.first_break.as_ref().map(|b| ChainBreak {
            position: b.position.0,
            kind: match b.kind {
                BreakKind::HashMismatch { .. } => "HASH_MISMATCH",
                BreakKind::MissingPosition { .. } => "MISSING_POSITION",
                BreakKind::MissingEvent => "MISSING_EVENT",
                BreakKind::HeadMismatch { .. } => "HEAD_MISMATCH",
            }
            .to_owned(),
            description: b.to_string(),
        });
        Ok(Response::new(VerifyLogResponse {
            intact: first_break.is_none(),
            verified_through: report.verified_through.0,
            head_hash: report.head_hash.to_hex(),
            first_break,
        }))
    }
}
