//! Tamper evidence: every sealed event carries a SHA-256 hash over its own stored bytes
//! and the hash of the event before it in the global order.
//!
//! The hash covers the bytes exactly as stored (payload and metadata JSON text, never a
//! re-serialisation), so verification never depends on how a JSON library orders keys.
//! The chain proves the log was not edited *in place*; a writer with database access who
//! rewrites every later hash too is caught only by comparing the head hash with one
//! recorded elsewhere (`finops-replay verify --expect-head`).

use std::fmt;

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::model::Position;

/// A SHA-256 chain hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainHash(pub [u8; 32]);

impl ChainHash {
    /// The hash "before" the first event.
    pub const GENESIS: ChainHash = ChainHash([0; 32]);

    /// Reads a hash from stored bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut out).ok()?;
        Some(Self(out))
    }

    /// The hash as 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainHash({})", self.to_hex())
    }
}

impl fmt::Display for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The stored form of an event, the exact bytes the chain covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// The event id.
    pub event_id: Uuid,
    /// The stream name.
    pub stream_id: String,
    /// Version within the stream.
    pub stream_version: u64,
    /// Type name.
    pub event_type: String,
    /// Schema version as stored.
    pub schema_version: u32,
    /// Payload JSON text as stored.
    pub payload: String,
    /// Metadata JSON text as stored.
    pub metadata: String,
}

/// The hash of `event` sealed at `position` after `previous`.
pub fn link(previous: &ChainHash, position: Position, event: &StoredEvent) -> ChainHash {
    // Length prefixes keep field boundaries unambiguous ("ab"+"c" ≠ "a"+"bc").
    fn put(h: &mut Sha256, field: &[u8]) {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field);
    }
    let mut h = Sha256::new();
    h.update(previous.0);
    h.update(position.0.to_be_bytes());
    h.update(event.event_id.as_bytes());
    put(&mut h, event.stream_id.as_bytes());
    h.update(event.stream_version.to_be_bytes());
    put(&mut h, event.event_type.as_bytes());
    h.update(event.schema_version.to_be_bytes());
    put(&mut h, event.payload.as_bytes());
    put(&mut h, event.metadata.as_bytes());
    ChainHash(h.finalize().into())
}

/// One entry of the ledger as read back for verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainLink {
    /// The ledger position.
    pub position: Position,
    /// The hash stored in the ledger (`None` if it is not 32 bytes).
    pub stored_hash: Option<ChainHash>,
    /// The event the ledger entry points at; `None` if that event row is gone.
    pub event: Option<StoredEvent>,
}

/// Why the chain is broken at a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakKind {
    /// The recomputed hash differs from the stored one: the event, its position or an
    /// earlier link was changed, or a row was inserted.
    HashMismatch {
        /// What the hash should be given everything before it.
        expected: ChainHash,
        /// What is stored (`None` if the stored value is not a hash at all).
        stored: Option<ChainHash>,
    },
    /// A position is missing: the ledger jumps from the previous position to this one.
    MissingPosition {
        /// The position that should have come next.
        expected: Position,
    },
    /// The ledger entry exists but the event row it points at is gone.
    MissingEvent,
    /// The chain verifies, but the hash an auditor recorded for this position is not the
    /// one stored: the whole chain from here on was rewritten.
    HeadMismatch {
        /// The hash the auditor recorded.
        recorded: ChainHash,
        /// What the ledger holds at that position now (`None`: no such position).
        found: Option<ChainHash>,
    },
}

/// The first broken link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// Where verification stopped.
    pub position: Position,
    /// What was wrong there.
    pub kind: BreakKind,
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            BreakKind::HashMismatch { expected, stored } => write!(
                f,
                "position {}: hash mismatch (expected {}, stored {})",
                self.position,
                expected,
                stored.map_or_else(|| "a malformed value".to_owned(), |h| h.to_hex())
            ),
            BreakKind::MissingPosition { expected } => write!(
                f,
                "position {expected} is missing: the ledger continues at {} (an event was deleted)",
                self.position
            ),
            BreakKind::MissingEvent => {
                write!(f, "position {}: the ledger entry points at an event row that no longer exists", self.position)
            }
            BreakKind::HeadMismatch { recorded, found } => write!(
                f,
                "head mismatch at position {}: recorded {recorded}, found {} (the chain was rewritten)",
                self.position,
                found.map_or_else(|| "no entry".to_owned(), |h| h.to_hex())
            ),
        }
    }
}

/// Walks links in position order, carrying the running hash.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    previous: ChainHash,
    next: Position,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self { previous: ChainHash::GENESIS, next: Position(1) }
    }
}

impl ChainVerifier {
    /// Checks the next link; on success it becomes the new head.
    pub fn check(&mut self, link_entry: &ChainLink) -> Result<(), ChainBreak> {
        if link_entry.position != self.next {
            return Err(ChainBreak {
                position: link_entry.position,
                kind: BreakKind::MissingPosition { expected: self.next },
            });
        }
        let Some(event) = &link_entry.event else {
            return Err(ChainBreak { position: link_entry.position, kind: BreakKind::MissingEvent });
        };
        let expected = link(&self.previous, link_entry.position, event);
        if link_entry.stored_hash != Some(expected) {
            return Err(ChainBreak {
                position: link_entry.position,
                kind: BreakKind::HashMismatch { expected, stored: link_entry.stored_hash },
            });
        }
        self.previous = expected;
        self.next = Position(self.next.0 + 1);
        Ok(())
    }

    /// The last verified position and its hash.
    pub fn head(&self) -> (Position, ChainHash) {
        (Position(self.next.0 - 1), self.previous)
    }
}

/// The outcome of walking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// The last position whose link verified.
    pub verified_through: Position,
    /// The hash at `verified_through`.
    pub head_hash: ChainHash,
    /// The first broken link, if any.
    pub first_break: Option<ChainBreak>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u64) -> StoredEvent {
        StoredEvent {
            event_id: Uuid::from_u128(n as u128),
            stream_id: "s".into(),
            stream_version: n,
            event_type: "T".into(),
            schema_version: 1,
            payload: format!("{{\"n\":{n}}}"),
            metadata: "{}".into(),
        }
    }

    fn chain(n: u64) -> Vec<ChainLink> {
        let mut prev = ChainHash::GENESIS;
        (1..=n)
            .map(|i| {
                let e = event(i);
                prev = link(&prev, Position(i), &e);
                ChainLink { position: Position(i), stored_hash: Some(prev), event: Some(e) }
            })
            .collect()
    }

    fn first_break(links: &[ChainLink]) -> Option<ChainBreak> {
        let mut v = ChainVerifier::default();
        links.iter().find_map(|l| v.check(l).err())
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(first_break(&chain(5)), None);
    }

    #[test]
    fn a_modified_payload_breaks_at_its_position() {
        let mut links = chain(5);
        links[2].event.as_mut().unwrap().payload = "{\"n\":99}".into();
        let b = first_break(&links).unwrap();
        assert_eq!(b.position, Position(3));
        assert!(matches!(b.kind, BreakKind::HashMismatch { .. }));
    }

    #[test]
    fn a_deleted_link_is_named_by_the_missing_position() {
        let mut links = chain(5);
        links.remove(1);
        let b = first_break(&links).unwrap();
        assert_eq!(b.kind, BreakKind::MissingPosition { expected: Position(2) });
        assert_eq!(b.position, Position(3));
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        let mut a = event(1);
        let mut b = event(1);
        a.stream_id = "ab".into();
        a.event_type = "c".into();
        b.stream_id = "a".into();
        b.event_type = "bc".into();
        assert_ne!(link(&ChainHash::GENESIS, Position(1), &a), link(&ChainHash::GENESIS, Position(1), &b));
    }

    #[test]
    fn hex_round_trips() {
        let h = chain(1)[0].stored_hash.unwrap();
        assert_eq!(ChainHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(ChainHash::from_hex("zz"), None);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever is changed in whichever event, verification stops exactly there.
            #[test]
            fn any_edit_is_caught_at_its_position(len in 1u64..40, at in 0usize..40, field in 0u8..4, text in "[a-z]{1,8}") {
                let mut links = chain(len);
                let at = at % links.len();
                let event = links[at].event.as_mut().unwrap();
                match field {
                    0 => event.payload.push_str(&text),
                    1 => event.metadata.push_str(&text),
                    2 => event.event_type.push_str(&text),
                    _ => event.stream_version += 1,
                }
                let broken = first_break(&links).unwrap();
                prop_assert_eq!(broken.position, Position(at as u64 + 1));
            }

            /// Dropping any run of links is named by the first missing position.
            #[test]
            fn any_deletion_is_caught(len in 2u64..40, from in 0usize..40, count in 1usize..5) {
                let mut links = chain(len);
                let original = links.len();
                let from = from % original;
                let to = (from + count).min(original);
                links.drain(from..to);
                match first_break(&links) {
                    Some(b) => prop_assert_eq!(b.kind, BreakKind::MissingPosition { expected: Position(from as u64 + 1) }),
                    // Deleting the tail is invisible to the chain alone: that is what a
                    // recorded head is for.
                    None => prop_assert_eq!(to, original),
                }
            }
        }
    }
}
