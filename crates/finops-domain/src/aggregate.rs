//! The decide/evolve shape every aggregate shares, and the given/when/then harness its
//! tests use.

/// An aggregate: its state is a fold of its events; a command is decided against the state.
///
/// Deciding must be idempotent in the Equinox sense: deciding a command again on the state
/// folded from the events it produced yields no new events. A retried command is then
/// harmless even without the log's own idempotency.
pub trait Aggregate: Default + Clone {
    /// What may be asked of it.
    type Command;
    /// What it records.
    type Event: Clone;
    /// Why a command is refused.
    type Error;

    /// The version of what [`Self::evolve`] folds a stream into. Raise it whenever the
    /// state's shape or any event's effect on it changes: snapshots of the aggregate
    /// written under another version are then ignored (`finops_governance::stream_snapshots`).
    const FOLD_VERSION: u32 = 1;

    /// The events a command produces from this state, or why it is refused.
    fn decide(&self, command: &Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// The state after one event. Never fails: events are facts.
    fn evolve(self, event: &Self::Event) -> Self;

    /// The state after a history.
    fn fold<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self
    where
        Self::Event: 'a,
    {
        events.into_iter().fold(Self::default(), Self::evolve)
    }
}

/// Given/when/then for aggregate tests: `given(history).when(command)` then assert.
#[cfg(test)]
pub(crate) mod spec {
    use super::Aggregate;

    pub(crate) struct Given<A: Aggregate> {
        state: A,
    }

    pub(crate) fn given<A: Aggregate>(history: &[A::Event]) -> Given<A> {
        Given { state: A::fold(history) }
    }

    impl<A: Aggregate> Given<A>
    where
        A::Event: std::fmt::Debug + PartialEq,
        A::Error: std::fmt::Debug,
    {
        pub(crate) fn when(self, command: A::Command) -> Result<Vec<A::Event>, A::Error> {
            let decided = self.state.decide(&command);
            // Every successful decision must be idempotent: decide again on the new state.
            if let Ok(events) = &decided {
                let after = events.iter().fold(self.state.clone(), A::evolve);
                let again = after.decide(&command);
                assert!(
                    matches!(&again, Ok(e) if e.is_empty()),
                    "deciding again after {events:?} should yield nothing, got {again:?}"
                );
            }
            decided
        }
    }
}
