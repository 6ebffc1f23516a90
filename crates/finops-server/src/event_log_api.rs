//! `finops.v1.EventLogService`: the log over gRPC — its head and chain for auditors, and
//! its events for auditors and other platforms: one entity's stream, the global order a
//! page at a time, and a live subscription from a checkpoint (issue 14.1).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use finops_eventlog::{
    AllRead, BreakKind, ChainHash, Delivery, Direction, EventStore, Position, RecordedEvent, StreamId, StreamRead,
    subscribe_where, verify_chain,
};
use finops_proto::v1 as pb;
use finops_proto::v1::event_log_service_server::EventLogService;
use finops_proto::v1::{ChainBreak, GetLogHeadRequest, LogHead, VerifyLogRequest, VerifyLogResponse};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::auth::{Authenticator, Role};
use crate::wire::Fields;

/// Most events one read returns (AIP-158: a larger `page_size` is coerced to it).
const MAX_PAGE: usize = 1_000;
/// How often a caught-up subscription looks at the log when no head signal arrives (the
/// signal only sees appends made by this process).
const SUBSCRIPTION_POLL: Duration = Duration::from_millis(250);

/// An event as other platforms read it.
fn log_event(event: &RecordedEvent) -> pb::LogEvent {
    let id = |u: Option<uuid::Uuid>| u.map(|u| u.to_string()).unwrap_or_default();
    pb::LogEvent {
        position: event.position.map_or(0, |p| p.0),
        event_id: event.event_id.to_string(),
        stream: event.stream_id.as_str().to_owned(),
        stream_version: event.stream_version,
        event_type: event.event_type.clone(),
        schema_version: event.schema_version,
        // The stored text when the event is in its stored shape: no parse, no print.
        payload_json: event.payload.to_string(),
        actor_id: event.metadata.actor_id.clone(),
        actor_role: event.metadata.actor_role.clone(),
        recorded_at: event.metadata.recorded_at.to_rfc3339(),
        rationale: event.metadata.rationale.clone().unwrap_or_default(),
        correlation_id: id(event.metadata.correlation_id),
        causation_id: id(event.metadata.causation_id),
        hash: event.hash.map(|h| h.to_hex()).unwrap_or_default(),
    }
}

/// Which events a reader wants: streams by prefix, events by type (empty: all).
#[derive(Clone)]
struct EventFilter {
    prefixes: Vec<String>,
    types: Vec<String>,
}

impl EventFilter {
    fn new(fields: &mut Fields, prefixes: Vec<String>, types: Vec<String>) -> Self {
        for (i, p) in prefixes.iter().enumerate() {
            if p.trim().is_empty() {
                fields.add(format!("stream_prefixes[{i}]"), "is empty: leave the list out to read every stream");
            }
        }
        for (i, t) in types.iter().enumerate() {
            if t.trim().is_empty() {
                fields.add(format!("event_types[{i}]"), "is empty: leave the list out to read every type");
            }
        }
        Self { prefixes, types }
    }

    fn keeps(&self, event: &RecordedEvent) -> bool {
        (self.prefixes.is_empty() || self.prefixes.iter().any(|p| event.stream_id.as_str().starts_with(p.as_str())))
            && (self.types.is_empty() || self.types.contains(&event.event_type))
    }
}

fn page_size(requested: u32) -> usize {
    match requested as usize {
        0 => MAX_PAGE,
        n => n.min(MAX_PAGE),
    }
}

/// Serves head and verification from the configured store.
#[derive(Clone)]
pub struct EventLogApi {
    store: Arc<dyn EventStore>,
    read_models: finops_projections::ReadModels,
    auth: Arc<Authenticator>,
}

impl EventLogApi {
    /// Serves `store`.
    pub fn new(
        store: Arc<dyn EventStore>,
        read_models: finops_projections::ReadModels,
        auth: Arc<Authenticator>,
    ) -> Self {
        Self { store, read_models, auth }
    }

    /// The events themselves are for those who audit or run the service (other platforms
    /// read as a service identity in one of these roles).
    fn authorise_events<T>(&self, request: &Request<T>) -> Result<(), Status> {
        self.auth.principal(request)?.require(&[Role::Auditor, Role::Operator], "read the event log's events")
    }

    /// The log's integrity is for those who answer for it.
    fn authorise<T>(&self, request: &Request<T>) -> Result<(), Status> {
        self.auth.principal(request)?.require(
            &[Role::Auditor, Role::FinopsLead, Role::Operator, Role::Finance],
            "read the event log's head or verify it",
        )
    }
}

/// The stream a subscription answers with.
type Events = Pin<Box<dyn Stream<Item = Result<pb::SubscribeResponse, Status>> + Send>>;

#[tonic::async_trait]
impl EventLogService for EventLogApi {
    type SubscribeStream = Events;

    #[tracing::instrument(skip_all)]
    async fn read_stream(
        &self,
        request: Request<pb::ReadStreamRequest>,
    ) -> Result<Response<pb::ReadStreamResponse>, Status> {
        self.authorise_events(&request)?;
        let body = request.into_inner();
        let mut fields = Fields::default();
        let stream = fields.check("stream", StreamId::new(body.stream.clone()).map_err(|e| e.to_string()));
        fields.finish()?;
        let Some(stream) = stream else { unreachable!("fields checked") };
        // Sealed first: every event returned has its position and hash.
        self.store.seal_committed().await.map_err(crate::status::from_log)?;
        let max = page_size(body.max_count);
        let read = StreamRead {
            direction: Direction::Forwards,
            from_version: Some(body.from_version.max(1)),
            max_count: max + 1,
        };
        let mut events = self.store.read_stream(&stream, read).await.map_err(crate::status::from_log)?;
        let next_version = if events.len() > max {
            events.truncate(max);
            events.last().map_or(0, |e| e.stream_version + 1)
        } else {
            0
        };
        Ok(Response::new(pb::ReadStreamResponse { events: events.iter().map(log_event).collect(), next_version }))
    }

    #[tracing::instrument(skip_all)]
    async fn read_all(&self, request: Request<pb::ReadAllRequest>) -> Result<Response<pb::ReadAllResponse>, Status> {
        self.authorise_events(&request)?;
        let body = request.into_inner();
        let mut fields = Fields::default();
        let filter = EventFilter::new(&mut fields, body.stream_prefixes, body.event_types);
        fields.finish()?;
        let head = self.store.seal_committed().await.map_err(crate::status::from_log)?.position;
        let wanted = page_size(body.page_size);
        // Filtered reads walk pages of the log until the page is full or the head is
        // reached: the answer says how far it read, so the next page starts there.
        let mut after = Position(body.after_position);
        let mut events = Vec::new();
        while events.len() < wanted && after < head {
            let page =
                self.store.read_all(AllRead::forwards_after(after, MAX_PAGE)).await.map_err(crate::status::from_log)?;
            let Some(last) = page.last().and_then(|e| e.position) else { break };
            for event in &page {
                if events.len() == wanted {
                    break;
                }
                after = event.position.unwrap_or(after);
                if filter.keeps(event) {
                    events.push(log_event(event));
                }
            }
            if events.len() < wanted {
                after = last;
            }
        }
        Ok(Response::new(pb::ReadAllResponse { events, next_after: after.0, head_position: head.0 }))
    }

    #[tracing::instrument(skip_all)]
    async fn subscribe(&self, request: Request<pb::SubscribeRequest>) -> Result<Response<Events>, Status> {
        self.authorise_events(&request)?;
        let body = request.into_inner();
        let mut fields = Fields::default();
        let filter = EventFilter::new(&mut fields, body.stream_prefixes, body.event_types);
        fields.finish()?;
        let deliveries =
            subscribe_where(self.store.clone(), Position(body.after_position), SUBSCRIPTION_POLL, move |e| {
                filter.keeps(e)
            });
        let responses = deliveries.map(|d| {
            let item = match d.map_err(crate::status::from_log)? {
                Delivery::Event(e) => pb::subscribe_response::Item::Event(log_event(&e)),
                Delivery::CaughtUp(p) => pb::subscribe_response::Item::Checkpoint(p.0),
            };
            Ok(pb::SubscribeResponse { item: Some(item) })
        });
        Ok(Response::new(Box::pin(responses)))
    }

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
    async fn get_projections(
        &self,
        request: Request<pb::GetProjectionsRequest>,
    ) -> Result<Response<pb::GetProjectionsResponse>, Status> {
        self.authorise_events(&request)?;
        let head = self.store.head().await.map_err(crate::status::from_log)?.position.0;
        let statuses = self.read_models.statuses().await.map_err(crate::wire::read_model_status)?;
        let projections = statuses
            .into_iter()
            .map(|s| pb::ProjectionStatus {
                behind: head.saturating_sub(s.checkpoint),
                name: s.name,
                checkpoint: s.checkpoint,
                active_generation: s.active_generation,
                building_generation: s.building_generation.unwrap_or(0),
                building_checkpoint: s.building_checkpoint.unwrap_or(0),
                projector_version: s.projector_version,
            })
            .collect();
        Ok(Response::new(pb::GetProjectionsResponse { head_position: head, projections }))
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
