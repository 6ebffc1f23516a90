//! The governance state as the log stood at an instant: every event recorded at or before
//! it, folded in log order. This is what point-in-time attribution reads (DOMAIN.md §6):
//! asked twice about the same instant, it folds the same events and answers the same.

use chrono::{DateTime, Utc};
use finops_domain::governance_state::GovernanceState;
use finops_eventlog::{AllRead, EventStore, Position, RecordedEvent};
use uuid::Uuid;

use crate::streams::{
    BUSINESS_REQUEST, CLAIM, CUR_PERIOD, GATEWAY_RULE, INVOCATION_LOGS, ORGANISATION, ROLE_PATTERNS, WORKLOAD,
};
use crate::{GovernanceError, decode};

const PAGE: usize = 2_000;

/// Folds the governance state from `store`, counting events recorded at or before `as_of`
/// (all of them when `None`): the whole log, every time — the definition a
/// [`GovernanceTimeline`](crate::timeline::GovernanceTimeline) answers by and is tested
/// against; a server asks its timeline. Events committed but not yet in the global order are sealed
/// first, so "now" includes every command that has returned.
pub async fn state_as_of(
    store: &dyn EventStore,
    as_of: Option<DateTime<Utc>>,
) -> Result<GovernanceState, GovernanceError> {
    store.seal_committed().await?;
    fold(store, |event| as_of.is_none_or(|t| event.metadata.recorded_at <= t)).await
}

/// The governance state kept by a process between the events it reacts to: each reaction
/// folds only the events after the last one it folded, where folding the state afresh
/// read the whole log every time (a process reacting to every page of a long log read it again for
/// each: quadratic). It holds only what was folded from the log.
#[derive(Debug, Clone, Default)]
pub struct StateFold {
    state: GovernanceState,
    through: Position,
}

impl StateFold {
    /// The state through `through` (every event up to and including it): only the events after
    /// the kept position are read, unless `through` is behind it (a re-run from an earlier
    /// checkpoint), which folds again from the start.
    pub async fn through(
        &mut self,
        store: &dyn EventStore,
        through: Position,
    ) -> Result<&GovernanceState, GovernanceError> {
        if through < self.through {
            *self = Self::default();
        }
        let state = &mut self.state;
        if let Err(e) = each_event_between(store, self.through, Some(through), |event| apply(state, event)).await {
            // Some events may be folded and the position not moved past them: folding them
            // again would count them twice, so the next call starts over.
            *self = Self::default();
            return Err(e);
        }
        self.through = through;
        Ok(&self.state)
    }

    /// The position the kept state is folded through.
    pub fn position(&self) -> Position {
        self.through
    }

    /// The kept state, as last folded.
    pub fn state(&self) -> &GovernanceState {
        &self.state
    }
}

async fn fold(
    store: &dyn EventStore,
    keep: impl Fn(&RecordedEvent) -> bool,
) -> Result<GovernanceState, GovernanceError> {
    let mut state = GovernanceState::default();
    each_event(store, |event| if keep(event) { apply(&mut state, event) } else { Ok(()) }).await?;
    Ok(state)
}

/// Shows `visit` every sealed event of the log, in the global order, a page at a time:
/// the one scan every fold of the whole log (the state, a process's own aggregates, an
/// `as_of` read) is made of.
pub async fn each_event(
    store: &dyn EventStore,
    visit: impl FnMut(&RecordedEvent) -> Result<(), GovernanceError>,
) -> Result<(), GovernanceError> {
    each_event_between(store, Position::START, None, visit).await.map(|_| ())
}

/// Shows `visit` every sealed event after `after` — through `until` when given, else to
/// the head — in the global order, a page at a time: what a fold kept between calls reads
/// to catch up. Returns the position of the last event shown (`after` when none was).
pub async fn each_event_between(
    store: &dyn EventStore,
    after: Position,
    until: Option<Position>,
    mut visit: impl FnMut(&RecordedEvent) -> Result<(), GovernanceError>,
) -> Result<Position, GovernanceError> {
    let mut after = after;
    loop {
        if until.is_some_and(|until| after >= until) {
            return Ok(after);
        }
        // Positions are dense: no more than the events up to `until` are asked for.
        let wanted = until.map_or(PAGE, |until| PAGE.min(usize::try_from(until.0 - after.0).unwrap_or(PAGE)));
        let page = store.read_all(AllRead::forwards_after(after, wanted)).await?;
        let Some(last) = page.last().and_then(|e| e.position) else { return Ok(after) };
        for event in &page {
            if until.is_some_and(|until| event.position.is_none_or(|p| p > until)) {
                return Ok(after);
            }
            visit(event)?;
            after = event.position.unwrap_or(after);
        }
        after = last;
        if page.len() < wanted {
            return Ok(after);
        }
    }
}

/// Folds one event into the state, if its stream is one the state is made of.
pub fn apply(state: &mut GovernanceState, event: &RecordedEvent) -> Result<(), GovernanceError> {
    let stream = event.stream_id.to_string();
    let id = |rest: &str| {
        Uuid::parse_str(rest).map_err(|e| GovernanceError::Undecodable {
            stream: stream.clone(),
            event_id: event.event_id,
            event_type: event.event_type.clone(),
            reason: format!("stream name does not end in a UUID: {e}"),
        })
    };
    if stream == ORGANISATION {
        state.apply_org(&decode(event)?);
    } else if stream == ROLE_PATTERNS {
        state.apply_role_patterns(&decode(event)?);
    } else if let Some(rest) = stream.strip_prefix(BUSINESS_REQUEST) {
        state.apply_request(id(rest)?, &decode(event)?);
    } else if let Some(key) = stream.strip_prefix(CLAIM) {
        state.apply_claim(key, &decode(event)?);
    } else if let Some(rest) = stream.strip_prefix(WORKLOAD) {
        state.apply_plan(id(rest)?, &decode(event)?);
    } else if let Some(rest) = stream.strip_prefix(GATEWAY_RULE) {
        state.apply_gateway_rule(id(rest)?, &decode(event)?);
    } else if let Some(period) = stream.strip_prefix(CUR_PERIOD) {
        state.apply_cur_period(period, &decode(event)?);
    } else if let Some(day) = stream.strip_prefix(INVOCATION_LOGS) {
        let day = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|e| GovernanceError::Undecodable {
            stream: stream.clone(),
            event_id: event.event_id,
            event_type: event.event_type.clone(),
            reason: format!("stream name does not end in a day: {e}"),
        })?;
        state.apply_invocation_logs(day, &decode(event)?);
    }
    Ok(())
}
