//! # Command handling for the governance workflow
//!
//! The one path every command takes: read the aggregate's stream, fold it, decide, and
//! append the new events with the version that was read as the expected version. A
//! command that another writer overtook fails with [`GovernanceError::Conflict`] (gRPC
//! `ABORTED`); nothing is retried behind the caller's back, because the decision was made
//! on state the caller did not see.
//!
//! Idempotency: the events of a command get ids derived from the caller's `request_id`
//! (UUID v5), so a retried command either decides nothing (the domain is idempotent) or
//! re-appends the same ids, which the log recognises and writes nothing. Either way the
//! caller gets the state after the first attempt.

use std::marker::PhantomData;
use std::sync::Arc;

use finops_domain::{Aggregate, DomainError};
use finops_eventlog::{
    EventLogError, EventMetadata, EventStore, ExpectedVersion, NewEvent, RecordedEvent, StreamId, StreamRead,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// Why a command was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum GovernanceError {
    /// The domain refused it.
    #[error(transparent)]
    Refused(#[from] DomainError),
    /// Another command changed the aggregate between read and append.
    #[error("{stream} changed while the command was decided (read at version {read}, now {actual}); reload and retry")]
    Conflict {
        /// The stream.
        stream: String,
        /// The version the decision was made on.
        read: u64,
        /// The version the stream is at.
        actual: u64,
    },
    /// A request id already used for a different request (AIP-155: a retry must repeat
    /// the request exactly).
    #[error("request_id {request_id} was already used for a different request; send a new request_id")]
    RequestIdReused {
        /// The id.
        request_id: Uuid,
    },
    /// The aggregate does not exist.
    #[error("{0} does not exist")]
    NotFound(String),
    /// The log failed, or holds an event this build cannot read.
    #[error(transparent)]
    Log(#[from] EventLogError),
    /// A stored event does not decode into the aggregate's events.
    #[error("event {event_id} ({event_type}) in {stream} does not decode: {reason}")]
    Undecodable {
        /// The stream.
        stream: String,
        /// The event.
        event_id: Uuid,
        /// Its type.
        event_type: String,
        /// The decoder's complaint.
        reason: String,
    },
}

/// Who asks, in which role, why, and under which idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandContext {
    /// The authenticated subject.
    pub actor_id: String,
    /// The role they act in.
    pub actor_role: String,
    /// The client's idempotency key (AIP-155 `request_id`); a fresh one if absent.
    pub request_id: Uuid,
    /// The rationale, when the command has one.
    pub rationale: Option<String>,
    /// Ties the events of one user action together.
    pub correlation_id: Option<Uuid>,
    /// The event this command reacts to, when a process issues it.
    pub causation_id: Option<Uuid>,
    /// A digest of the client's request (see `EventMetadata::request_fingerprint`).
    pub fingerprint: Option<String>,
}

impl CommandContext {
    /// An operator's command (ingest, a demo's data, a rebuild) under `request_id`: no
    /// rationale, correlation, cause or fingerprint.
    pub fn operator(actor_id: impl Into<String>, request_id: Uuid) -> Self {
        Self {
            actor_id: actor_id.into(),
            actor_role: "operator".into(),
            request_id,
            rationale: None,
            correlation_id: None,
            causation_id: None,
            fingerprint: None,
        }
    }
}

/// An aggregate folded from its stream, with the version it was read at.
#[derive(Debug, Clone)]
pub struct Loaded<A> {
    /// The state.
    pub state: A,
    /// The stream's version (0: no events).
    pub version: u64,
}

/// Reads, decides and appends for one aggregate type.
pub struct CommandHandler<A> {
    store: Arc<dyn EventStore>,
    snapshots: Option<StreamSnapshots<A>>,
    _aggregate: PhantomData<fn() -> A>,
}

impl<A> Clone for CommandHandler<A> {
    fn clone(&self) -> Self {
        Self { store: self.store.clone(), snapshots: self.snapshots.clone(), _aggregate: PhantomData }
    }
}

/// An aggregate folded for a command: the state, the events read (all of the stream, or
/// those after the snapshot it started from), and that snapshot's version.
struct Folded<A> {
    loaded: Loaded<A>,
    recorded: Vec<RecordedEvent>,
    from_snapshot: Option<u64>,
}

impl<A> CommandHandler<A>
where
    A: Aggregate<Error = DomainError> + Serialize + DeserializeOwned,
    A::Event: Serialize + DeserializeOwned,
{
    /// Starts from the snapshot of a stream in `snapshots` (when the stream holds it) and
    /// writes one there every [`SNAPSHOT_EVERY`](stream_snapshots::SNAPSHOT_EVERY) events
    /// this handler appends past it: for aggregates whose stream grows without end.
    pub fn with_snapshots(mut self, snapshots: Arc<dyn StreamSnapshotStore>) -> Self {
        self.snapshots = Some(StreamSnapshots::new(snapshots, stream_snapshots::SNAPSHOT_EVERY));
        self
    }

    /// [`Self::with_snapshots`], writing one every `every` events (tests).
    pub fn with_snapshots_every(mut self, snapshots: Arc<dyn StreamSnapshotStore>, every: u64) -> Self {
        self.snapshots = Some(StreamSnapshots::new(snapshots, every));
        self
    }
}

impl<A> CommandHandler<A>
where
    A: Aggregate<Error = DomainError>,
    A::Event: Serialize + DeserializeOwned,
{
    /// A handler appending to `store`.
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self { store, snapshots: None, _aggregate: PhantomData }
    }

    /// Folds the aggregate from its stream (from its snapshot, when it has one).
    pub async fn load(&self, stream: &StreamId) -> Result<Loaded<A>, GovernanceError> {
        Ok(self.fold(stream).await?.loaded)
    }

    /// The aggregate as its stream stood at `as_of` (its events recorded at or before it;
    /// `None`: now). The version is that of the last event folded.
    pub async fn load_as_of(
        &self,
        stream: &StreamId,
        as_of: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Loaded<A>, GovernanceError> {
        let Some(t) = as_of else { return self.load(stream).await };
        let recorded = self.store.read_stream(stream, StreamRead::all()).await?;
        let then: Vec<&RecordedEvent> = recorded.iter().filter(|e| e.metadata.recorded_at <= t).collect();
        let version = then.last().map_or(0, |e| e.stream_version);
        let events = then.into_iter().map(decode::<A::Event>).collect::<Result<Vec<_>, _>>()?;
        Ok(Loaded { state: A::fold(&events), version })
    }

    /// Folds the aggregate: from its snapshot and the events after it, or from the start.
    async fn fold(&self, stream: &StreamId) -> Result<Folded<A>, GovernanceError> {
        if let Some(folded) = self.fold_from_snapshot(stream).await? {
            return Ok(folded);
        }
        let recorded = self.store.read_stream(stream, StreamRead::all()).await?;
        Self::fold_whole(recorded, |_, _| {})
    }

    /// Folds a whole stream, showing `at_each` the state after every event (a snapshot's
    /// check looks at the state at its version).
    fn fold_whole(
        recorded: Vec<RecordedEvent>,
        mut at_each: impl FnMut(u64, &A),
    ) -> Result<Folded<A>, GovernanceError> {
        let mut state = A::default();
        for event in &recorded {
            state = state.evolve(&decode::<A::Event>(event)?);
            at_each(event.stream_version, &state);
        }
        let version = recorded.last().map_or(0, |e| e.stream_version);
        Ok(Folded { loaded: Loaded { state, version }, recorded, from_snapshot: None })
    }

    /// The aggregate from its snapshot, if it has one the stream holds.
    async fn fold_from_snapshot(&self, stream: &StreamId) -> Result<Option<Folded<A>>, GovernanceError> {
        let Some(snapshots) = &self.snapshots else { return Ok(None) };
        let snapshot = match snapshots.store.load_stream_snapshot(stream.as_str(), A::FOLD_VERSION).await {
            Ok(Some(snapshot)) => snapshot,
            Ok(None) => return Ok(None),
            Err(e) => {
                tracing::warn!(%stream, error = %e, "stream snapshot unreadable; folding the stream from the start");
                return Ok(None);
            }
        };
        if !snapshots.is_checked(&snapshot) {
            return self.fold_checking(stream, &snapshot, snapshots).await.map(Some);
        }
        let read = StreamRead { from_version: Some(snapshot.version), ..StreamRead::all() };
        let mut recorded = self.store.read_stream(stream, read).await?;
        let held =
            recorded.first().is_some_and(|e| e.stream_version == snapshot.version && e.event_id == snapshot.event_id);
        if !held {
            tracing::warn!(%stream, version = snapshot.version, "the stream does not hold its snapshot's event; folding it from the start");
            return Ok(None);
        }
        let state = match (snapshots.decode)(&snapshot.state) {
            Ok(state) => state,
            Err(e) => {
                tracing::warn!(%stream, error = %e, "stream snapshot does not decode; folding the stream from the start");
                return Ok(None);
            }
        };
        recorded.remove(0);
        let version = recorded.last().map_or(snapshot.version, |e| e.stream_version);
        let events = recorded.iter().map(decode::<A::Event>).collect::<Result<Vec<_>, _>>()?;
        let state = events.iter().fold(state, A::evolve);
        Ok(Some(Folded { loaded: Loaded { state, version }, recorded, from_snapshot: Some(snapshot.version) }))
    }

    /// Folds the whole stream (one read) and compares its state at `snapshot`'s version
    /// with the snapshot's: the same, and this handler trusts it from now on; another, and
    /// the fold's state is written in its place (checked too). A stream that does not hold
    /// the snapshot's event leaves it unchecked (and unused).
    async fn fold_checking(
        &self,
        stream: &StreamId,
        snapshot: &stream_snapshots::StreamSnapshot,
        snapshots: &StreamSnapshots<A>,
    ) -> Result<Folded<A>, GovernanceError> {
        let recorded = self.store.read_stream(stream, StreamRead::all()).await?;
        let held = recorded
            .iter()
            .find(|e| e.stream_version == snapshot.version)
            .is_some_and(|e| e.event_id == snapshot.event_id);
        let mut folded_then = None;
        let folded = Self::fold_whole(recorded, |version, state| {
            if held && version == snapshot.version {
                folded_then = (snapshots.encode)(state).ok();
            }
        })?;
        if !held {
            return Ok(folded);
        }
        let stored = (snapshots.decode)(&snapshot.state).ok().and_then(|s| (snapshots.encode)(&s).ok());
        if folded_then.is_some() && folded_then == stored {
            snapshots.note_checked(snapshot);
            return Ok(folded);
        }
        tracing::warn!(%stream, version = snapshot.version, "the stream snapshot differs from the stream's own fold; the fold's replaces it");
        let Some(state) = folded_then else { return Ok(folded) };
        let corrected = stream_snapshots::StreamSnapshot { state, ..snapshot.clone() };
        match snapshots.store.save_stream_snapshot(&corrected).await {
            Ok(()) => snapshots.note_checked(&corrected),
            Err(e) => tracing::warn!(%stream, error = %e, "stream snapshot not corrected"),
        }
        Ok(folded)
    }

    /// Writes `loaded` down as `stream`'s snapshot when enough events were appended since
    /// the last one; a failure is reported, the stream stays the truth.
    async fn snapshot_if_due(&self, stream: &StreamId, loaded: &Loaded<A>, since: u64, last_event: Uuid) {
        let Some(snapshots) = &self.snapshots else { return };
        if loaded.version < since + snapshots.every {
            return;
        }
        let state = match (snapshots.encode)(&loaded.state) {
            Ok(state) => state,
            Err(e) => return tracing::warn!(%stream, error = %e, "aggregate does not serialise; no snapshot written"),
        };
        let snapshot = stream_snapshots::StreamSnapshot {
            stream: stream.as_str().to_owned(),
            fold_version: A::FOLD_VERSION,
            version: loaded.version,
            event_id: last_event,
            state,
        };
        // Folded from a checked snapshot (or the whole stream): checked as written.
        match snapshots.store.save_stream_snapshot(&snapshot).await {
            Ok(()) => snapshots.note_checked(&snapshot),
            Err(e) => tracing::warn!(%stream, error = %e, "stream snapshot not written"),
        }
    }

    /// The first event `context`'s command appended to `stream`, if it did, read from the
    /// whole stream.
    async fn first_event_of(
        &self,
        stream: &StreamId,
        context: &CommandContext,
    ) -> Result<Option<RecordedEvent>, GovernanceError> {
        let first_id = event_id(context, stream, 0);
        let recorded = self.store.read_stream(stream, StreamRead::all()).await?;
        Ok(recorded.into_iter().find(|r| r.event_id == first_id))
    }

    /// When the handler started from a snapshot, the command may be a retry older than it
    /// (its events are not among those read): answered as the first attempt was (`Some`:
    /// the state `now`, or the reused request id named), or `None` when it is not a retry.
    /// Asked only where a retry would otherwise go wrong — a refusal, a decision of nothing,
    /// events the log says it already holds — so a command pays the whole stream's read
    /// only then.
    async fn older_retry(
        &self,
        stream: &StreamId,
        context: &CommandContext,
        from_snapshot: Option<u64>,
        now: &Loaded<A>,
    ) -> Result<Option<Loaded<A>>, GovernanceError> {
        if from_snapshot.is_none() {
            return Ok(None);
        }
        match self.first_event_of(stream, context).await? {
            Some(first) => retried(&first, context, now.clone()).map(Some),
            None => Ok(None),
        }
    }

    /// Whether the command `context` names (by its request id) already took effect on
    /// `stream`: a caller with side effects before the command checks this first, so a
    /// retry is answered rather than refused by a state the first attempt moved on.
    pub async fn is_recorded(&self, stream: &StreamId, context: &CommandContext) -> Result<bool, GovernanceError> {
        Ok(self.first_event_of(stream, context).await?.is_some())
    }

    /// Decides `command` on the current state and appends what it produces. Returns the
    /// state after the command (unchanged when the command decided nothing).
    pub async fn execute(
        &self,
        stream: &StreamId,
        command: &A::Command,
        context: &CommandContext,
    ) -> Result<Loaded<A>, GovernanceError> {
        self.execute_all(stream, std::slice::from_ref(command), context).await
    }

    /// Decides `commands` one after the other, each on the state the previous ones left,
    /// and appends everything they produce in one append: all of them take effect, or —
    /// when any is refused — none does and nothing is written. (A listing followed by an
    /// approval that is then refused must not leave the listing behind.)
    pub async fn execute_all(
        &self,
        stream: &StreamId,
        commands: &[A::Command],
        context: &CommandContext,
    ) -> Result<Loaded<A>, GovernanceError> {
        let Folded { loaded: Loaded { state, version }, recorded, from_snapshot } = self.fold(stream).await?;
        // A retry of a command that already took effect answers with the state now, even
        // if the aggregate has moved on since (when deciding again could be refused).
        let first_id = event_id(context, stream, 0);
        if let Some(first) = recorded.iter().find(|r| r.event_id == first_id) {
            return retried(first, context, Loaded { state, version });
        }
        let mut events = Vec::new();
        let mut decided_on = state.clone();
        for command in commands {
            let produced = match decided_on.decide(command) {
                Ok(produced) => produced,
                // Refused now, but perhaps a retry of a command older than the snapshot.
                Err(refusal) => {
                    let now = Loaded { state, version };
                    return match self.older_retry(stream, context, from_snapshot, &now).await? {
                        Some(answer) => Ok(answer),
                        None => Err(refusal.into()),
                    };
                }
            };
            decided_on = produced.iter().fold(decided_on, A::evolve);
            events.extend(produced);
        }
        if events.is_empty() {
            let now = Loaded { state, version };
            return Ok(self.older_retry(stream, context, from_snapshot, &now).await?.unwrap_or(now));
        }
        let new_events =
            events.iter().enumerate().map(|(i, event)| encode(stream, i, event, context)).collect::<Vec<_>>();
        let expected = if version == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(version) };
        match self.store.append(stream, expected, new_events).await {
            Ok(outcome) if outcome.already_appended => {
                // A retry of a command whose events are stored (older than the snapshot):
                // the same request, or a reused id.
                let now = self.load(stream).await?;
                Ok(self.older_retry(stream, context, from_snapshot, &now).await?.unwrap_or(now))
            }
            Ok(outcome) => {
                tracing::info!(%stream, events = events.len(), version = outcome.next_expected_version, actor = %context.actor_id, "command decided");
                let after =
                    Loaded { state: events.iter().fold(state, A::evolve), version: outcome.next_expected_version };
                let last = event_id(context, stream, events.len() - 1);
                self.snapshot_if_due(stream, &after, from_snapshot.unwrap_or(0), last).await;
                Ok(after)
            }
            Err(EventLogError::WrongExpectedVersion { actual, .. }) => {
                Err(GovernanceError::Conflict { stream: stream.to_string(), read: version, actual })
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// The answer to a retry of the command whose first event is `first`: the state now, or
/// the reused request id when the retry's request differs from the first one's.
fn retried<A>(first: &RecordedEvent, context: &CommandContext, now: Loaded<A>) -> Result<Loaded<A>, GovernanceError> {
    if let (Some(stored), Some(asked)) = (&first.metadata.request_fingerprint, &context.fingerprint)
        && stored != asked
    {
        return Err(GovernanceError::RequestIdReused { request_id: context.request_id });
    }
    Ok(now)
}

/// The event's id: derived from the request id and the event's place in the command's
/// output, so a retry produces the same ids.
fn event_id(context: &CommandContext, stream: &StreamId, index: usize) -> Uuid {
    Uuid::new_v5(&context.request_id, format!("{stream}#{index}").as_bytes())
}

fn encode<E: Serialize>(stream: &StreamId, index: usize, event: &E, context: &CommandContext) -> NewEvent {
    let payload = serde_json::to_value(event).expect("domain events serialise");
    let event_type = payload.get("type").and_then(|t| t.as_str()).unwrap_or("Unknown").to_owned();
    let version = finops_domain::schema::version_of(&event_type);
    NewEvent::new(event_type, payload)
        .with_schema_version(version)
        .with_id(event_id(context, stream, index))
        .with_metadata(EventMetadata {
            actor_id: context.actor_id.clone(),
            actor_role: context.actor_role.clone(),
            rationale: context.rationale.clone(),
            correlation_id: context.correlation_id,
            causation_id: context.causation_id,
            idempotency_key: Some(context.request_id.to_string()),
            request_fingerprint: context.fingerprint.clone(),
            ..EventMetadata::default()
        })
}

/// Decodes a stored event into the aggregate's event type.
pub fn decode<E: DeserializeOwned>(recorded: &RecordedEvent) -> Result<E, GovernanceError> {
    // Straight from the stored text: no `Value` tree per event per fold.
    recorded.payload.decode::<E>().map_err(|e| GovernanceError::Undecodable {
        stream: recorded.stream_id.to_string(),
        event_id: recorded.event_id,
        event_type: recorded.event_type.clone(),
        reason: e.to_string(),
    })
}

pub mod state;
pub mod stream_snapshots;
pub mod timeline;

use stream_snapshots::{StreamSnapshotStore, StreamSnapshots};

/// The log's upcasters for every domain event ([`finops_domain::schema`]): a store
/// opened with them reads every stored version in the current shape.
pub fn upcasters() -> finops_eventlog::Upcasters {
    finops_domain::schema::UPCASTS
        .iter()
        .fold(finops_eventlog::Upcasters::new(), |up, (event_type, from, step)| up.register(*event_type, *from, *step))
}

/// Stream names, one place for all of them.
pub mod streams {
    use finops_eventlog::StreamId;
    use uuid::Uuid;

    /// Prefix of Business Request streams.
    pub const BUSINESS_REQUEST: &str = "business-request-";
    /// Prefix of claimable-resource streams.
    pub const CLAIM: &str = "claim-";
    /// Prefix of workload-plan streams.
    pub const WORKLOAD: &str = "workload-";
    /// Prefix of CUR billing-period streams.
    pub const CUR_PERIOD: &str = "cur-period-";
    /// Prefix of a day's invocation-log files: `invocation-logs-YYYY-MM-DD`.
    pub const INVOCATION_LOGS: &str = "invocation-logs-";
    /// The organisation's stream.
    pub const ORGANISATION: &str = "organisation";
    /// The role patterns' stream.
    pub const ROLE_PATTERNS: &str = "role-patterns";
    /// Allocation gaps, by id: `allocation-gap-{uuid}`.
    pub const GAP: &str = "allocation-gap-";
    /// The gap detector's record of what it evaluated.
    pub const GAP_EVALUATIONS: &str = "gap-evaluations";
    /// A gateway mapping rule's stream: `gateway-rule-{uuid}`.
    pub const GATEWAY_RULE: &str = "gateway-rule-";
    /// A Weekly Spend Card's stream: `spend-card-{uuid}` (the id of workload and week).
    pub const SPEND_CARD: &str = "spend-card-";
    /// A portfolio's weekly roll-up: `spend-rollup-{uuid}` (the id of portfolio and week).
    pub const SPEND_ROLLUP: &str = "spend-rollup-";

    /// A workload's month of threshold alerts: `threshold-alerts-{uuid}` (of workload and month).
    pub const THRESHOLD_ALERTS: &str = "threshold-alerts-";
    /// An investigation's stream: `investigation-{uuid}`.
    pub const INVESTIGATION: &str = "investigation-";

    /// A workload's suspensions and resumptions: `kill-switch-{workload uuid}` (not under
    /// `workload-`, whose streams the governance state folds as workload plans).
    pub const KILL_SWITCH: &str = "kill-switch-";

    fn named(name: String) -> StreamId {
        StreamId::new(name).expect("valid stream id")
    }

    /// `business-request-{id}`
    pub fn business_request(id: Uuid) -> StreamId {
        named(format!("{BUSINESS_REQUEST}{id}"))
    }
    /// `catalog-{platform}-{model}`
    pub fn catalog_model(platform: finops_domain::vocabulary::Platform, model: &str) -> StreamId {
        named(format!("catalog-{}-{model}", platform.as_str()))
    }
    /// `task-{id}`
    pub fn task(id: Uuid) -> StreamId {
        named(format!("task-{id}"))
    }
    /// `claim-{resource key}`
    pub fn claim(key: &str) -> StreamId {
        named(format!("{CLAIM}{key}"))
    }
    /// `workload-{id}`: the workload's estimate and business case.
    pub fn workload(id: Uuid) -> StreamId {
        named(format!("{WORKLOAD}{id}"))
    }
    /// `cur-period-{YYYY-MM}`: the period's CUR batches.
    pub fn cur_period(period: &str) -> StreamId {
        named(format!("{CUR_PERIOD}{period}"))
    }
    /// `invocation-logs-{YYYY-MM-DD}`: the log files whose first hour is on that day.
    pub fn invocation_logs(day: chrono::NaiveDate) -> StreamId {
        named(format!("{INVOCATION_LOGS}{day}"))
    }
    /// The organisation's single stream.
    pub fn organisation() -> StreamId {
        named(ORGANISATION.to_owned())
    }
    /// The role patterns' single stream.
    pub fn role_patterns() -> StreamId {
        named(ROLE_PATTERNS.to_owned())
    }
    /// `allocation-gap-{id}`
    pub fn gap(id: Uuid) -> StreamId {
        named(format!("{GAP}{id}"))
    }
    /// `gateway-rule-{id}`
    pub fn gateway_rule(id: Uuid) -> StreamId {
        named(format!("{GATEWAY_RULE}{id}"))
    }
    /// `spend-card-{id}`
    pub fn spend_card(id: Uuid) -> StreamId {
        named(format!("{SPEND_CARD}{id}"))
    }
    /// `spend-rollup-{id}`
    pub fn spend_rollup(id: Uuid) -> StreamId {
        named(format!("{SPEND_ROLLUP}{id}"))
    }
    /// `threshold-alerts-{id}`
    pub fn threshold_alerts(id: Uuid) -> StreamId {
        named(format!("{THRESHOLD_ALERTS}{id}"))
    }
    /// `investigation-{id}`
    pub fn investigation(id: Uuid) -> StreamId {
        named(format!("{INVESTIGATION}{id}"))
    }
    /// `kill-switch-{workload id}`
    pub fn kill_switch(workload_id: Uuid) -> StreamId {
        named(format!("{KILL_SWITCH}{workload_id}"))
    }
    /// The gap detector's single record.
    pub fn gap_evaluations() -> StreamId {
        named(GAP_EVALUATIONS.to_owned())
    }
}
