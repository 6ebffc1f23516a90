//! The governance tables of the states questions were last asked about, kept so that the
//! next question about the same state — or about a state attribution reads alike — does
//! not build them again (issue 14.4).
//!
//! Building a state's tables (the approved workloads with their budgets, scopes, claims
//! and generated names, as Arrow batches) costs time in proportion to the workloads ever
//! approved: about half a second at a million events, where classifying a month's lines
//! takes a tenth of that. The state itself comes from the server's one
//! [`GovernanceTimeline`](finops_governance::timeline::GovernanceTimeline), whose
//! [`StateKey`] names it: equal keys, same state, same tables. "Now" keeps its key until
//! the next event is appended; a past instant keeps its own for good.
//!
//! Most events appended do not change what attribution reads (task steps, Business
//! Requests submitted or rejected): a state with a new key is first compared with the kept
//! ones ([`GovernanceState::attributes_alike`], cheap for states of one timeline, which
//! share their unchanged parts), and a kept state read alike lends its tables. When none
//! is alike, the closest kept state (fewest changes between) has its tables amended
//! ([`GovernanceTables::amended`]: an approval or a claim costs its own rows, not every
//! workload's), and only states far from every kept one are built from nothing.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use finops_attribution::{Governance, GovernanceTables, GovernanceView};
use finops_domain::governance_state::{GovernanceState, VIEW_DIFF_LIMIT};
use finops_governance::timeline::{GovernanceTimeline, StateKey};

/// Sets of tables kept: "now" and a couple of instants Finance keeps asking about. Each
/// holds a row per approved workload, scope entry and claim period (80 000 workloads and
/// 160 000 claim rows at a million events of the benchmark's log); states read alike share
/// one set, so "now" moving on through events that change nothing attribution reads does
/// not push an instant's tables out.
const KEPT: usize = 3;

/// States read alike whose tables were asked for: the keys asked about (newest first, at
/// most [`KEYS`]), the newest state (what a later state is compared with) and the tables.
struct Kept {
    keys: VecDeque<StateKey>,
    state: GovernanceState,
    tables: Arc<GovernanceTables>,
}

/// Keys kept per set of tables: "now" after each of the last few appends.
const KEYS: usize = 8;

/// The tables of the last [`KEPT`] states asked about, newest first. Keys must come from
/// one timeline (the server has one).
#[derive(Default)]
pub struct KeptTables {
    kept: Mutex<VecDeque<Kept>>,
}

/// How a question came by its tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// Kept for this very state.
    Kept,
    /// Kept for another state that attribution reads alike.
    Alike,
    /// Amended from the tables kept for an earlier (or later) state.
    Amended,
    /// Built for this question.
    Built,
}

impl KeptTables {
    /// The tables of `state`, named by `key`: kept ones, or amended or built now (off the
    /// async runtime's threads) and kept.
    pub async fn of(&self, state: &GovernanceState, key: StateKey) -> Arc<GovernanceTables> {
        self.found(state, key).await.0
    }

    /// [`of`](Self::of), and how the tables were come by.
    pub async fn found(&self, state: &GovernanceState, key: StateKey) -> (Arc<GovernanceTables>, Found) {
        if let Some(tables) = self.find(&key) {
            return (tables, Found::Kept);
        }
        // Compared outside the lock and off the async threads: a comparison walks up to
        // `VIEW_DIFF_LIMIT` changes. One diff per kept state serves both the comparison and
        // the amendment.
        let candidates: Vec<(GovernanceState, Arc<GovernanceTables>)> =
            self.lock().iter().map(|k| (k.state.clone(), k.tables.clone())).collect();
        let state = state.clone();
        // Two questions about a new state at once may both build; the second keeps its own.
        let (state, tables, found) = tokio::task::spawn_blocking(move || {
            // Newest first. Once a kept state is close enough to amend from, the others are
            // compared only as far as it is: a kept past instant far from "now" is not walked
            // to the limit after every approval. (An alike state farther than an amendable
            // one is passed over: the amendment of so few changes is cheap too.)
            let mut close = Vec::new();
            let mut limit = VIEW_DIFF_LIMIT;
            for (kept, tables) in &candidates {
                let Some(changes) = state.view_changes_within(kept, limit) else { continue };
                if state.alike_given(kept, &changes) {
                    return (state, tables.clone(), Found::Alike);
                }
                limit = limit.min(changes.compared);
                close.push((kept, tables, changes));
            }
            close.sort_by_key(|(_, _, changes)| changes.compared);
            match close.iter().find_map(|(kept, tables, changes)| tables.amended(kept, &state, changes)) {
                Some(tables) => (state, Arc::new(tables), Found::Amended),
                None => {
                    let tables = Arc::new(GovernanceTables::new(GovernanceView::from(&state)));
                    (state, tables, Found::Built)
                }
            }
        })
        .await
        .expect("building governance tables does not panic");
        self.keep(key, state, tables.clone());
        (tables, found)
    }

    /// What a question that reads only the rows its month can meet (attribution by
    /// workload and gap, the unbacked workloads, exports) is judged by: the tables kept for
    /// this very state, else the state itself — its rows looked up by name as the question
    /// needs them, nothing built for every workload (a quarter of a second at a million
    /// events, for the first question after each approval or about a new instant).
    pub fn kept_or_state(&self, state: &GovernanceState, key: &StateKey) -> Governance {
        match self.find(key) {
            Some(tables) => Governance::Tables(tables),
            None => Governance::State(Arc::new(state.clone())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Kept>> {
        self.kept.lock().expect("the kept tables' lock is never poisoned")
    }

    /// Keeps `tables` for `key` at the front: beside the keys already kept with the same
    /// tables (`state` then stands for them), else as a new set, the oldest set dropped.
    fn keep(&self, key: StateKey, state: GovernanceState, tables: Arc<GovernanceTables>) {
        let mut kept = self.lock();
        let mut entry = match kept.iter().position(|k| Arc::ptr_eq(&k.tables, &tables)) {
            Some(at) => kept.remove(at).expect("found just now"),
            None => Kept { keys: VecDeque::new(), state: state.clone(), tables },
        };
        for other in kept.iter_mut() {
            other.keys.retain(|k| *k != key);
        }
        kept.retain(|k| !k.keys.is_empty());
        entry.keys.retain(|k| *k != key);
        entry.keys.push_front(key);
        entry.keys.truncate(KEYS);
        entry.state = state;
        kept.push_front(entry);
        kept.truncate(KEPT);
    }

    /// The kept tables of `key`, moved to the front.
    fn find(&self, key: &StateKey) -> Option<Arc<GovernanceTables>> {
        let mut kept = self.lock();
        let at = kept.iter().position(|k| k.keys.contains(key))?;
        let found = kept.remove(at)?;
        let tables = found.tables.clone();
        kept.push_front(found);
        Some(tables)
    }

    /// Builds (or finds) the tables of the timeline's state now, so that the next question
    /// about "now" finds them: run by the server after it follows the log, so that the
    /// question after an approval does not wait for the build.
    pub async fn prepare_now(
        &self,
        timeline: &GovernanceTimeline,
    ) -> Result<Found, finops_governance::GovernanceError> {
        let (state, key) = timeline.keyed_state_as_of(None).await?;
        Ok(self.found(&state, key).await.1)
    }
}
