//! The offline audit bundle (issue 14.7): the log as it stood at an instant, in one file an
//! auditor can take away and check without a database.
//!
//! JSON lines: a header (format, version, the instant, and the CUR batches current then —
//! per period its content hash), then every event of the global order from position 1 in
//! its stored form (the exact payload and metadata text the chain hashes, with the stored
//! hash), then a closing line with the head position and hash. The events are the prefix
//! of the global order recorded at or before the instant. [`verify`] recomputes every link
//! from the genesis hash, and names the first broken one — a changed event, a missing or
//! extra position, a head that is not the one the file claims, or a file cut short.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use anyhow::Context;
use chrono::{DateTime, Utc};
use finops_domain::Aggregate;
use finops_domain::cur_batches::{CurPeriod, CurPeriodEvent};
use finops_eventlog::{BreakKind, ChainBreak, ChainHash, ChainLink, ChainVerifier, EventStore, Position, StoredEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The format's name and version, in the header.
pub const FORMAT: &str = "finops-audit-bundle";
/// The format's version.
pub const VERSION: u32 = 1;
const PAGE: usize = 1_000;
const CUR_PERIOD: &str = "cur-period-";

/// The first line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// The instant the bundle shows the log at.
    pub until: DateTime<Utc>,
    /// Per billing period, the CUR batch current at the instant.
    pub cur_batches: Vec<BundleBatch>,
}

/// A CUR batch current at the bundle's instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleBatch {
    /// `YYYY-MM`.
    pub period: String,
    /// SHA-256 of the delivered bytes.
    pub hash: String,
    /// Where the bytes are stored.
    pub location: String,
    /// Data rows.
    pub rows: u64,
}

/// One event in its stored form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleEvent {
    /// Its place in the global order.
    pub position: u64,
    /// The chain hash stored for it, hex.
    pub hash: String,
    /// The event id.
    pub event_id: Uuid,
    /// The stream.
    pub stream: String,
    /// Version within the stream.
    pub stream_version: u64,
    /// Type name.
    pub event_type: String,
    /// Schema version as stored.
    pub schema_version: u32,
    /// Payload JSON text, as stored.
    pub payload: String,
    /// Metadata JSON text, as stored.
    pub metadata: String,
}

/// The last line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trailer {
    /// The last position in the bundle (0: none).
    pub head_position: u64,
    /// Its chain hash, hex.
    pub head_hash: String,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    /// The header.
    pub header: Header,
    /// The closing line.
    pub trailer: Trailer,
}

fn recorded_at(metadata: &str) -> anyhow::Result<DateTime<Utc>> {
    #[derive(Deserialize)]
    struct Recorded {
        recorded_at: DateTime<Utc>,
    }
    Ok(serde_json::from_str::<Recorded>(metadata).context("an event's metadata has no recorded_at")?.recorded_at)
}

/// Shows `visit` each event of the prefix of the global order recorded at or before
/// `until`, in its stored form with its stored hash.
async fn walk(
    store: &dyn EventStore,
    until: DateTime<Utc>,
    mut visit: impl FnMut(Position, &StoredEvent, ChainHash) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut after = Position::START;
    loop {
        let links = store.chain_links(after, PAGE).await?;
        let Some(last) = links.last().map(|l| l.position) else { return Ok(()) };
        for link in &links {
            let event = link.event.as_ref().with_context(|| format!("position {} has no event", link.position))?;
            if recorded_at(&event.metadata)? > until {
                return Ok(());
            }
            let hash = link.stored_hash.with_context(|| format!("position {} has no hash", link.position))?;
            visit(link.position, event, hash)?;
        }
        after = last;
        if links.len() < PAGE {
            return Ok(());
        }
    }
}

/// Writes the bundle of `store` as it stood at `until` to `out`: one pass over the log for
/// the CUR batches the header names, one to write the events.
pub async fn export(store: &dyn EventStore, until: DateTime<Utc>, out: &mut impl Write) -> anyhow::Result<Exported> {
    let mut periods: BTreeMap<String, CurPeriod> = BTreeMap::new();
    walk(store, until, |position, event, _| {
        if let Some(period) = event.stream_id.strip_prefix(CUR_PERIOD) {
            let decided: CurPeriodEvent = serde_json::from_str(&event.payload)
                .with_context(|| format!("position {position}: not a CUR period event"))?;
            let p = periods.remove(period).unwrap_or_default().evolve(&decided);
            periods.insert(period.to_owned(), p);
        }
        Ok(())
    })
    .await?;
    let cur_batches = periods
        .iter()
        .filter_map(|(period, p)| {
            p.current_at(until).map(|b| BundleBatch {
                period: period.clone(),
                hash: b.hash.clone(),
                location: b.location.clone(),
                rows: b.rows,
            })
        })
        .collect();
    let header = Header { format: FORMAT.into(), version: VERSION, until, cur_batches };
    writeln!(out, "{}", serde_json::to_string(&header)?)?;
    let mut head = (Position::START, ChainHash::GENESIS);
    walk(store, until, |position, event, hash| {
        let line = BundleEvent {
            position: position.0,
            hash: hash.to_hex(),
            event_id: event.event_id,
            stream: event.stream_id.clone(),
            stream_version: event.stream_version,
            event_type: event.event_type.clone(),
            schema_version: event.schema_version,
            payload: event.payload.clone(),
            metadata: event.metadata.clone(),
        };
        writeln!(out, "{}", serde_json::to_string(&line)?)?;
        head = (position, hash);
        Ok(())
    })
    .await?;
    let trailer = Trailer { head_position: head.0.0, head_hash: head.1.to_hex() };
    writeln!(out, "{}", serde_json::to_string(&trailer)?)?;
    out.flush()?;
    Ok(Exported { header, trailer })
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq)]
pub struct BundleReport {
    /// The header, when it could be read.
    pub header: Header,
    /// The last position whose link verified, and its hash.
    pub verified_through: Position,
    /// The hash there.
    pub head_hash: ChainHash,
    /// The first broken link (a chain break, or the file's own shape), with its line.
    pub problem: Option<(usize, String)>,
}

/// Checks a bundle without a database: every link recomputed from the genesis hash, the
/// closing line's head against the last verified link. A line that is not what the format
/// says is named by its number.
pub fn verify(input: impl BufRead) -> anyhow::Result<BundleReport> {
    let mut lines = input.lines().enumerate().map(|(i, l)| (i + 1, l));
    let (_, first) = lines.next().context("the bundle is empty")?;
    let header: Header =
        serde_json::from_str(&first.context("reading line 1")?).context("line 1 is not a bundle header")?;
    anyhow::ensure!(
        header.format == FORMAT && header.version == VERSION,
        "line 1: format `{}` version {} (this tool reads {FORMAT} version {VERSION})",
        header.format,
        header.version
    );
    let mut verifier = ChainVerifier::default();
    let report = |verifier: &ChainVerifier, problem: Option<(usize, String)>| {
        let (verified_through, head_hash) = verifier.head();
        BundleReport { header: header.clone(), verified_through, head_hash, problem }
    };
    for (number, line) in lines {
        let line = line.with_context(|| format!("reading line {number}"))?;
        if let Ok(trailer) = serde_json::from_str::<Trailer>(&line) {
            let (position, hash) = verifier.head();
            let claimed = ChainHash::from_hex(&trailer.head_hash);
            let problem = (trailer.head_position != position.0 || claimed != Some(hash)).then(|| {
                let break_ = ChainBreak {
                    position: Position(trailer.head_position),
                    kind: BreakKind::HeadMismatch {
                        recorded: claimed.unwrap_or(ChainHash::GENESIS),
                        found: (trailer.head_position == position.0).then_some(hash),
                    },
                };
                (number, format!("the closing line claims a head the events do not reach: {break_}"))
            });
            return Ok(report(&verifier, problem));
        }
        let event: BundleEvent = match serde_json::from_str(&line) {
            Ok(e) => e,
            Err(e) => return Ok(report(&verifier, Some((number, format!("not a bundle event: {e}"))))),
        };
        let link = ChainLink {
            position: Position(event.position),
            stored_hash: ChainHash::from_hex(&event.hash),
            event: Some(StoredEvent {
                event_id: event.event_id,
                stream_id: event.stream,
                stream_version: event.stream_version,
                event_type: event.event_type,
                schema_version: event.schema_version,
                payload: event.payload,
                metadata: event.metadata,
            }),
        };
        if let Err(b) = verifier.check(&link) {
            return Ok(report(&verifier, Some((number, b.to_string()))));
        }
    }
    Ok(report(&verifier, Some((0, "the bundle ends without its closing line: it was cut short".into()))))
}
