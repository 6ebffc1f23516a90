//! A set that every state of one fold shares, each seeing it as of its own place in the
//! fold (issue 14.4): what the timeline's thousand kept states need of the lookups without
//! each holding a copy of them.
//!
//! A persistent set (what the lookups were first) shares what did not change, but a kept
//! state still copies every tree node a change since the last one touched — and the
//! lookups' keys are names and ids, scattered, so each of a thousand kept states copied
//! hundreds of nodes: 0.5–0.7 GiB more at a million events. Here the set is its history
//! instead — each key with the spans of changes it was in the set for — written by one
//! state, the fold's own ([`HistorySet::default`] makes it): a change numbers itself, and
//! a state sees a key when one of its spans holds the number of changes it has seen. A
//! copy of a state ([`Clone`]) keeps that number and never writes the history; what it
//! changes itself (a question folding a few events past a kept state) goes into its own
//! small persistent overlay. So a kept state costs a number, a fold's history costs each
//! change once, and every state still answers exactly as its own fold would.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::RangeBounds;
use std::sync::{Arc, PoisonError, RwLock};

/// The changes during which a key was in the set: from the change that added it (its
/// number) until the change that removed it (`u64::MAX` while it stays).
#[derive(Debug, Clone, Copy)]
struct Span {
    from: u64,
    until: u64,
}

/// Every key the set ever held, with its spans; `changes` numbers the last change.
#[derive(Debug)]
struct History<K> {
    keys: BTreeMap<K, Vec<Span>>,
    changes: u64,
}

impl<K: Ord> History<K> {
    /// Whether `key` was in the set after `seen` changes.
    fn held(spans: &[Span], seen: u64) -> bool {
        spans.iter().rev().any(|s| s.from <= seen && seen < s.until)
    }
}

/// A set shared along one fold (see the module's documentation).
pub struct HistorySet<K> {
    history: Arc<RwLock<History<K>>>,
    /// How many changes of the history this state has seen.
    seen: u64,
    /// Whether this state writes the history (the fold's own; never a copy).
    writer: bool,
    /// A copy's own changes: each key added (`true`) or removed (`false`).
    overlay: imbl::OrdMap<K, bool>,
}

impl<K: Ord + Clone> Default for HistorySet<K> {
    /// An empty set with a history of its own, written by this state.
    fn default() -> Self {
        Self {
            history: Arc::new(RwLock::new(History { keys: BTreeMap::new(), changes: 0 })),
            seen: 0,
            writer: true,
            overlay: imbl::OrdMap::new(),
        }
    }
}

impl<K: Ord + Clone> Clone for HistorySet<K> {
    /// The same set as of the same change; the copy keeps its own changes to itself.
    fn clone(&self) -> Self {
        Self { history: self.history.clone(), seen: self.seen, writer: false, overlay: self.overlay.clone() }
    }
}

impl<K: Ord + Clone> HistorySet<K> {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, History<K>> {
        // A panic while writing leaves the spans whole (each change is one push or one
        // assignment), so a poisoned lock's data is still right.
        self.history.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `key` is in the set.
    pub fn contains(&self, key: &K) -> bool {
        if let Some(added) = self.overlay.get(key) {
            return *added;
        }
        self.read().keys.get(key).is_some_and(|spans| History::<K>::held(spans, self.seen))
    }

    /// Adds `key`.
    pub fn insert(&mut self, key: K) {
        self.change(key, true);
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &K) {
        self.change(key.clone(), false);
    }

    fn change(&mut self, key: K, add: bool) {
        if self.contains(&key) == add {
            return;
        }
        if !self.writer {
            self.overlay.insert(key, add);
            return;
        }
        let mut history = self.history.write().unwrap_or_else(PoisonError::into_inner);
        history.changes += 1;
        let change = history.changes;
        let spans = history.keys.entry(key).or_default();
        if add {
            spans.push(Span { from: change, until: u64::MAX });
        } else if let Some(open) = spans.last_mut() {
            open.until = change;
        }
        self.seen = change;
    }

    /// The keys in `range`, in order.
    pub fn range<R: RangeBounds<K> + Clone>(&self, range: R) -> Vec<K> {
        self.range_while(range, |_| true)
    }

    /// The keys in `range`, in order, up to the first that `keep` refuses.
    pub fn range_while<R: RangeBounds<K> + Clone>(&self, range: R, keep: impl Fn(&K) -> bool) -> Vec<K> {
        let mut keys: Vec<K> = {
            let history = self.read();
            let entries = history.keys.range(range.clone()).take_while(|(k, _)| keep(k));
            entries.filter(|(_, spans)| History::<K>::held(spans, self.seen)).map(|(k, _)| k.clone()).collect()
        };
        let mut overlay = self.overlay.range(range).take_while(|(k, _)| keep(k)).peekable();
        if overlay.peek().is_some() {
            let mut merged: std::collections::BTreeSet<K> = keys.into_iter().collect();
            for (key, added) in overlay {
                if *added {
                    merged.insert(key.clone());
                } else {
                    merged.remove(key);
                }
            }
            keys = merged.into_iter().collect();
        }
        keys
    }

    /// Whether this state writes the history (the fold's own) rather than reading it.
    pub fn writes_history(&self) -> bool {
        self.writer
    }

    /// How many keys a copy changed itself (held in its overlay; 0 for the fold's own).
    pub fn own_changes(&self) -> usize {
        self.overlay.len()
    }

    /// Every key, in order.
    pub fn keys(&self) -> Vec<K> {
        self.range(..)
    }
}

impl<K: Ord + Clone> PartialEq for HistorySet<K> {
    /// Equal when they hold the same keys, whatever their histories.
    fn eq(&self, other: &Self) -> bool {
        self.keys() == other.keys()
    }
}

impl<K: Ord + Clone> Eq for HistorySet<K> {}

impl<K: Ord + Clone + fmt::Debug> fmt::Debug for HistorySet<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.keys()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::HistorySet;

    #[test]
    fn a_copy_sees_the_set_as_it_was_copied_while_the_writer_goes_on() {
        let mut fold = HistorySet::default();
        fold.insert(3);
        fold.insert(1);
        let early = fold.clone();
        fold.remove(&3);
        fold.insert(2);
        fold.insert(3);
        let late = fold.clone();
        fold.remove(&1);
        assert!(fold.writes_history() && !late.writes_history());
        assert_eq!((fold.own_changes(), late.own_changes()), (0, 0));
        assert_eq!(early.keys(), vec![1, 3]);
        assert_eq!(late.keys(), vec![1, 2, 3]);
        assert_eq!(fold.keys(), vec![2, 3]);
        assert!(early.contains(&3) && !early.contains(&2));
        assert_eq!(late.range(2..), vec![2, 3]);
    }

    #[test]
    fn a_copy_changed_keeps_its_changes_to_itself() {
        let mut fold = HistorySet::default();
        fold.insert("a");
        let mut copy = fold.clone();
        copy.remove(&"a");
        copy.insert("b");
        fold.insert("c");
        assert_eq!(copy.keys(), vec!["b"]);
        assert_eq!(fold.keys(), vec!["a", "c"]);
        // A copy of a copy starts from the first copy's overlay, and is a copy too.
        let mut again = copy.clone();
        again.insert("a");
        assert_eq!(again.keys(), vec!["a", "b"]);
        assert_eq!(copy.keys(), vec!["b"]);
        assert_eq!(fold.clone().keys(), fold.keys());
    }

    #[test]
    fn inserting_twice_or_removing_what_is_absent_changes_nothing() {
        let mut fold = HistorySet::default();
        fold.insert(1);
        let before = fold.clone();
        fold.insert(1);
        fold.remove(&2);
        assert_eq!(before.keys(), vec![1]);
        fold.remove(&1);
        assert!(fold.keys().is_empty() && before.contains(&1));
        assert_eq!(before, before.clone());
        assert_ne!(before, fold);
    }

    proptest::proptest! {
        /// Any interleaving of changes to the fold's set and to copies taken along the way:
        /// every copy answers as a set of its own that took the same changes would.
        #[test]
        fn every_copy_answers_as_its_own_set_would(
            steps in proptest::collection::vec((0u8..4, 0u8..12, proptest::bool::ANY), 0..200)
        ) {
            use std::collections::BTreeSet;
            let mut sets = vec![(HistorySet::default(), BTreeSet::new())];
            for (which, key, add) in steps {
                match which {
                    // Mostly the fold's own set; now and then a copy of any set, or a change to one.
                    0 | 1 => {
                        let (set, model) = &mut sets[0];
                        if add { set.insert(key); model.insert(key); } else { set.remove(&key); model.remove(&key); }
                    }
                    2 => {
                        let i = usize::from(key) % sets.len();
                        let copy = (sets[i].0.clone(), sets[i].1.clone());
                        sets.push(copy);
                    }
                    _ => {
                        let i = usize::from(key) % sets.len();
                        let (set, model) = &mut sets[i];
                        if add { set.insert(key); model.insert(key); } else { set.remove(&key); model.remove(&key); }
                    }
                }
                for (set, model) in &sets {
                    proptest::prop_assert_eq!(set.keys(), model.iter().copied().collect::<Vec<_>>());
                    proptest::prop_assert_eq!(set.range(3..=7), model.range(3..=7).copied().collect::<Vec<_>>());
                    let below_nine = model.range(2..).copied().take_while(|k| *k < 9).collect::<Vec<_>>();
                    proptest::prop_assert_eq!(set.range_while(2.., |k| *k < 9), below_nine);
                    for k in 0..12 {
                        proptest::prop_assert_eq!(set.contains(&k), model.contains(&k));
                    }
                }
            }
        }
    }
}
