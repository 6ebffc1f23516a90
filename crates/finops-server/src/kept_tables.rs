//! The governance tables of the states questions were last asked about, kept so that the
//! next question about the same state does not build them again (issue 14.4).
//!
//! Building a state's tables (the approved workloads with their budgets, scopes, claims
//! and generated names, as Arrow batches) costs time in proportion to the workloads ever
//! approved: about half a second at a million events, where classifying a month's lines
//! takes a tenth of that. The state itself comes from the server's one
//! [`GovernanceTimeline`](finops_governance::timeline::GovernanceTimeline), whose
//! [`StateKey`] names it: equal keys, same state, same tables. "Now" keeps its key until
//! the next event is appended; a past instant keeps its own for good.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use finops_attribution::{GovernanceTables, GovernanceView};
use finops_domain::governance_state::GovernanceState;
use finops_governance::timeline::StateKey;

/// States whose tables are kept: "now" and a couple of instants Finance keeps asking about.
/// Each holds a row per approved workload, scope entry and claim period (80 000 workloads
/// and 160 000 claim rows at a million events of the benchmark's log).
const KEPT: usize = 3;

/// The tables of the last [`KEPT`] states asked about, newest first. Keys must come from
/// one timeline (the server has one).
#[derive(Default)]
pub struct KeptTables {
    kept: Mutex<VecDeque<(StateKey, Arc<GovernanceTables>)>>,
}

impl KeptTables {
    /// The tables of `state`, named by `key`: kept ones, or built now (off the async
    /// runtime's threads) and kept.
    pub async fn of(&self, state: &GovernanceState, key: StateKey) -> Arc<GovernanceTables> {
        if let Some(tables) = self.find(&key) {
            return tables;
        }
        // Two questions about a new state at once may both build; the second keeps its own.
        let state = state.clone();
        let tables = tokio::task::spawn_blocking(move || Arc::new(GovernanceTables::new(GovernanceView::from(&state))))
            .await
            .expect("building governance tables does not panic");
        let mut kept = self.kept.lock().expect("the kept tables' lock is never poisoned");
        kept.retain(|(k, _)| *k != key);
        kept.push_front((key, tables.clone()));
        kept.truncate(KEPT);
        tables
    }

    /// The kept tables of `key`, moved to the front.
    fn find(&self, key: &StateKey) -> Option<Arc<GovernanceTables>> {
        let mut kept = self.kept.lock().expect("the kept tables' lock is never poisoned");
        let at = kept.iter().position(|(k, _)| k == key)?;
        let found = kept.remove(at)?;
        let tables = found.1.clone();
        kept.push_front(found);
        Some(tables)
    }
}
