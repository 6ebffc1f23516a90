//! What a process that retries owes between rounds (the kill switch's enforcer, the
//! webhook outbox): the log is read once past the cursor, each event that leaves
//! something owed adds a key with its position, a key is settled when nothing more is
//! owed, and the checkpoint never passes the earliest key still owed — so after a restart
//! the owed work is read again and retried.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use finops_eventlog::{AllRead, EventStore, Position, RecordedEvent};
use finops_projections::ReadModels;

use crate::ProcessError;

/// Events read per page.
const PAGE: usize = 500;

/// A retrying process's owed work.
pub(crate) struct Backlog {
    name: &'static str,
    store: Arc<dyn EventStore>,
    checkpoints: ReadModels,
    /// The position read up to, and each owed key with the position that owes it.
    state: Mutex<(Option<u64>, BTreeMap<String, u64>)>,
}

impl Backlog {
    /// The backlog of the process `name` (its checkpoint's key).
    pub(crate) fn new(name: &'static str, store: Arc<dyn EventStore>, checkpoints: ReadModels) -> Self {
        Self { name, store, checkpoints, state: Mutex::new((None, BTreeMap::new())) }
    }

    /// Reads the log past the cursor (the checkpoint after a restart), adds what `owes`
    /// names (`Some(key)` for an event that leaves work owed), and returns the checkpoint
    /// read and every key owed now.
    pub(crate) async fn owed(
        &self,
        owes: impl Fn(&RecordedEvent) -> Option<String>,
    ) -> Result<(u64, Vec<String>), ProcessError> {
        let checkpoint = self.checkpoints.process_checkpoint(self.name).await?;
        let mut cursor = self.state.lock().expect("not poisoned").0.unwrap_or(checkpoint).max(checkpoint);
        let mut found = Vec::new();
        loop {
            let page = self.store.read_all(AllRead::forwards_after(Position(cursor), PAGE)).await?;
            let Some(last) = page.last().and_then(|e| e.position) else { break };
            for event in &page {
                if let Some(key) = owes(event) {
                    found.push((key, event.position.map_or(last.0, |p| p.0)));
                }
            }
            cursor = last.0;
            if page.len() < PAGE {
                break;
            }
        }
        let mut state = self.state.lock().expect("not poisoned");
        state.0 = Some(cursor);
        for (key, position) in found {
            state.1.entry(key).or_insert(position);
        }
        Ok((checkpoint, state.1.keys().cloned().collect()))
    }

    /// Nothing more is owed for `key`.
    pub(crate) fn settle(&self, key: &str) {
        self.state.lock().expect("not poisoned").1.remove(key);
    }

    /// Moves the checkpoint (read as `checkpoint`) up to the cursor, but never past the
    /// earliest key still owed.
    pub(crate) async fn advance(&self, checkpoint: u64) -> Result<(), ProcessError> {
        let to = {
            let state = self.state.lock().expect("not poisoned");
            let cursor = state.0.unwrap_or(checkpoint);
            let hold = state.1.values().min().map(|p| p - 1);
            hold.map_or(cursor, |h| h.min(cursor)).max(checkpoint)
        };
        if to > checkpoint {
            self.checkpoints.advance_process(self.name, checkpoint, to).await?;
        }
        Ok(())
    }
}
