//! Applies the log to projectors: live (following the head) and as a rebuild into a new
//! generation that replaces the active one when caught up.
//!
//! Both fold in memory and write once per batch. Live: a batch's touched documents are
//! read in one query, every event of the batch is applied to them, and the changed ones
//! are written back with one multi-row upsert, in the transaction that moves the
//! checkpoint. Rebuild: one pass over the log feeds every projector being rebuilt, each
//! folding on a thread of its own (the next pages are fetched while earlier ones are
//! folded, and a payload is parsed only by a projector that reads it), the documents are
//! folded in memory and each new generation written with `COPY` on PostgreSQL — most of it
//! while the log is still read, the documents no later event touched ([`crate::generation`])
//! — or multi-row inserts on SQLite, and all are swapped in by one transaction. A round
//! trip per document per event (what this replaced) held a 198 k-event rebuild to ~2 000
//! events/s.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use finops_eventlog::{AllRead, EventStore, Position, RecordedEvent};
use sqlx::{Any, Transaction};

use crate::generation::{Copier, EARLY_COPIES, Folded, GenerationFold, Written};
use crate::store::{ReadModelError, ReadModels, parse};
use crate::{Document, Projector};

/// Events per live batch.
const PAGE: usize = 500;
/// Events per page of a rebuild's read.
const REBUILD_PAGE: usize = 5_000;
/// Pages of a rebuild's read fetched and decoded at once (and queued for the fold).
const READ_AHEAD: usize = 2;
/// Pages queued for each read model's fold: read models fold at their own pace, at most
/// this many pages apart.
const FOLD_AHEAD: usize = 4;
/// Rows per multi-row statement: 4 parameters a row stays far below SQLite's 32 766
/// and PostgreSQL's 65 535 bound parameters.
const ROWS_PER_STATEMENT: usize = 1_000;
/// Keys per `IN (…)` lookup.
const KEYS_PER_LOOKUP: usize = 1_000;

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    /// The projection.
    pub projection: &'static str,
    /// Events folded.
    pub events: u64,
    /// Digest of the active generation before the swap.
    pub digest_before: String,
    /// Digest after the swap (equal when the live read model was correct).
    pub digest_after: String,
}

/// A rebuild of one or more read models: a report for each, in the order asked, and where
/// the whole rebuild's time went (one pass over the log serves them all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuilt {
    /// One report per read model.
    pub reports: Vec<RebuildReport>,
    /// The phases of the rebuild.
    pub phases: RebuildPhases,
}

/// Where a rebuild's time went, phase by phase, for an operator comparing runs (and
/// BENCHMARKS.md): reading and folding the log, writing the new generations, then the
/// swap and the catch-up of what arrived meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RebuildPhases {
    /// Reading the log and folding it in memory (the live digests are read meanwhile, and
    /// on PostgreSQL the documents the fold is done with are written).
    pub read_and_fold: Duration,
    /// Writing what is left of the new generations (their text made as it is sent).
    pub write: Duration,
    /// Waiting for the live digests, the swap, and the catch-up after it.
    pub swap_and_catch_up: Duration,
}

/// Runs projectors over a store.
#[derive(Clone)]
pub struct ProjectionRunner {
    store: Arc<dyn EventStore>,
    models: ReadModels,
    projectors: Vec<Arc<dyn Projector>>,
    failed_rounds: Arc<AtomicU64>,
    versions_checked: Arc<std::sync::atomic::AtomicBool>,
}

impl ProjectionRunner {
    /// A runner for `projectors`, writing to `models`.
    pub fn new(store: Arc<dyn EventStore>, models: ReadModels, projectors: Vec<Arc<dyn Projector>>) -> Self {
        Self {
            store,
            models,
            projectors,
            failed_rounds: Arc::new(AtomicU64::new(0)),
            versions_checked: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }

    /// How many live rounds failed (and were retried) since this runner was made: a
    /// healthy runner stays at 0, so operators and tests can tell a quiet log from one
    /// that keeps retrying.
    pub fn failed_rounds(&self) -> u64 {
        self.failed_rounds.load(Ordering::Relaxed)
    }

    /// Folds everything sealed so far into every projection; returns the lowest checkpoint.
    /// The first time, a read model built by another version of its projector (its
    /// documents have another shape) is rebuilt first, while the old one keeps answering.
    pub async fn catch_up(&self) -> Result<u64, ReadModelError> {
        if !self.versions_checked.load(Ordering::Acquire) {
            let mut stale = Vec::new();
            for projector in &self.projectors {
                if self.models.needs_rebuild_for(projector.name(), projector.version()).await? {
                    stale.push(projector.name());
                }
            }
            if !stale.is_empty() {
                tracing::info!(read_models = ?stale, "read models built by an earlier projector version; rebuilding");
                self.rebuild_all(&stale).await?;
            }
            self.versions_checked.store(true, Ordering::Release);
        }
        let mut lowest = u64::MAX;
        for projector in &self.projectors {
            lowest = lowest.min(self.catch_up_one(projector.as_ref()).await?);
        }
        Ok(if lowest == u64::MAX { 0 } else { lowest })
    }

    async fn catch_up_one(&self, projector: &dyn Projector) -> Result<u64, ReadModelError> {
        loop {
            let (generation, from) = self.models.register(projector.name()).await?;
            let events = self.store.read_all(AllRead::forwards_after(Position(from as u64), PAGE)).await?;
            if events.is_empty() {
                return Ok(from as u64);
            }
            // Another runner (or a rebuild's swap) may have moved first; then re-read.
            self.apply(projector, &events, generation, from).await?;
        }
    }

    /// Follows the head until the returned handle is aborted. Failures are logged, counted
    /// ([`ProjectionRunner::failed_rounds`]) and retried: a read model lags rather than stops.
    pub fn spawn(self, poll: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut signal = self.store.head_signal();
            loop {
                if let Err(e) = self.catch_up().await {
                    self.failed_rounds.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "projection round failed; retrying");
                }
                tokio::select! {
                    changed = signal.changed() => if changed.is_err() { return },
                    _ = tokio::time::sleep(poll) => {},
                }
            }
        })
    }

    /// Folds the whole log into a new generation of `name`, then makes it the active one.
    pub async fn rebuild(&self, name: &str) -> Result<RebuildReport, ReadModelError> {
        Ok(self.rebuild_all(&[name]).await?.reports.remove(0))
    }

    /// Folds the whole log, in one pass, into a new generation of each projection named,
    /// then makes them the active ones in one transaction; queries keep answering from the
    /// current generations until the swap, and never see one read model rebuilt and
    /// another not. Reports in the order asked.
    pub async fn rebuild_all(&self, names: &[&str]) -> Result<Rebuilt, ReadModelError> {
        let started_at = std::time::Instant::now();
        let mut building = Vec::new();
        for name in names {
            let projector = self
                .projectors
                .iter()
                .find(|p| p.name() == *name)
                .ok_or_else(|| ReadModelError::UnknownProjection((*name).to_owned()))?
                .clone();
            let (active, _) = self.models.register(projector.name()).await?;
            building.push((projector, active + 1));
        }
        // While the log is folded: the live generations' digests.
        let digests_before = {
            let (models, names) = (self.models.clone(), building.iter().map(|b| b.0.name()).collect::<Vec<_>>());
            tokio::spawn(async move {
                let mut out = Vec::new();
                for name in names {
                    out.push(models.digest(name).await?);
                }
                Ok::<_, ReadModelError>(out)
            })
        };
        // The new generations cleared of anything a killed rebuild left behind before the
        // fold writes into them.
        for (projector, generation) in &building {
            self.models.start_generation(projector.name(), *generation).await?;
        }

        let mut pages = self.read_log_pages().await?;
        let mut events_folded = 0u64;
        let mut through = 0i64;
        // Folding is CPU work: off the async threads, each read model on a thread of its own
        // fed every page in turn, so that one slow to fold a page (the task queue reads
        // every plan's commands) holds back neither the others nor the read. On PostgreSQL
        // the documents a fold is done with are written meanwhile (`generation`).
        let copier = self.models.postgres.clone().map(|postgres| Copier {
            postgres,
            runtime: tokio::runtime::Handle::current(),
            slots: Arc::new(AtomicUsize::new(EARLY_COPIES)),
        });
        let mut feeds = Vec::new();
        let mut folds = Vec::new();
        for (projector, generation) in &building {
            let (feed, mut fed) = tokio::sync::mpsc::channel::<Arc<Vec<RecordedEvent>>>(FOLD_AHEAD);
            let mut fold = GenerationFold::new(projector.clone(), *generation, copier.clone());
            folds.push(tokio::task::spawn_blocking(move || {
                while let Some(page) = fed.blocking_recv() {
                    fold.fold_page(&page);
                }
                fold.finish()
            }));
            feeds.push(feed);
        }
        while let Some(page) = pages.recv().await {
            let page = Arc::new(page?);
            events_folded += page.len() as u64;
            through = page.last().and_then(|e| e.position).map_or(through, |p| p.0 as i64);
            for feed in &feeds {
                feed.send(page.clone()).await.expect("a fold never panics");
            }
        }
        drop(feeds);
        let mut folded_generations = Vec::new();
        for fold in folds {
            folded_generations.push(fold.await.expect("a fold never panics"));
        }

        let folded = started_at.elapsed();
        // Each new generation's rest written on its own connection, at once, its text made
        // as it is sent.
        let writes = building.iter().zip(folded_generations).map(|((projector, generation), folded)| {
            self.models.write_generation(projector.name(), *generation, folded, through)
        });
        let written: Vec<Written> =
            futures_util::future::join_all(writes).await.into_iter().collect::<Result<_, _>>()?;
        let written_by = started_at.elapsed();
        // The live digests are read before the swap: the swap deletes the generations it
        // replaces, and a digest still reading one then would find it emptied (seen once in
        // CI on SQLite: a live read model reported as empty, its rebuild as changed).
        let digests_before = digests_before.await.expect("the digests never panic")?;
        let swapped: Vec<_> = building.iter().map(|(p, g)| (p.name(), *g, p.version())).collect();
        self.models.swap_in(&swapped).await?;
        let mut reports = Vec::new();
        for (((projector, _), written), digest_before) in building.iter().zip(written).zip(digests_before) {
            // Fold whatever arrived during the rebuild; the digest of what was written
            // stands unless that moved the read model on.
            let caught_up = self.catch_up_one(projector.as_ref()).await?;
            let digest_after =
                if caught_up as i64 == through { written.digest } else { self.models.digest(projector.name()).await? };
            tracing::info!(
                projection = projector.name(),
                events = events_folded,
                documents = written.documents,
                "rebuilt"
            );
            reports.push(RebuildReport {
                projection: projector.name(),
                events: events_folded,
                digest_before,
                digest_after,
            });
        }
        let phases = RebuildPhases {
            read_and_fold: folded,
            write: written_by - folded,
            swap_and_catch_up: started_at.elapsed() - written_by,
        };
        Ok(Rebuilt { reports, phases })
    }

    /// The sealed log from the start, in pages, in order. Pages are fetched (and their
    /// events decoded) [`READ_AHEAD`] at a time, each on its own task, so that decoding
    /// one page overlaps fetching the next; positions are dense, so page `i` is the
    /// events after position `i × REBUILD_PAGE`. Whatever is sealed after the head read
    /// here is left to the live catch-up after the swap.
    async fn read_log_pages(
        &self,
    ) -> Result<tokio::sync::mpsc::Receiver<Result<Vec<RecordedEvent>, ReadModelError>>, ReadModelError> {
        use futures_util::StreamExt;
        let head = self.store.head().await?.position.0;
        let (pages_tx, pages) = tokio::sync::mpsc::channel(READ_AHEAD);
        let store = self.store.clone();
        tokio::spawn(async move {
            let fetches = (0..head.div_ceil(REBUILD_PAGE as u64)).map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store.read_all(AllRead::forwards_after(Position(i * REBUILD_PAGE as u64), REBUILD_PAGE)).await
                })
            });
            let mut fetched = futures_util::stream::iter(fetches).buffered(READ_AHEAD);
            while let Some(page) = fetched.next().await {
                let page = page.expect("a page read never panics").map_err(ReadModelError::from);
                // A short page ends the read: what follows is read by the catch-up.
                let short = page.as_ref().map_or(true, |p| p.len() < REBUILD_PAGE);
                if pages_tx.send(page).await.is_err() || short {
                    return;
                }
            }
        });
        Ok(pages)
    }

    /// Applies a batch to the active generation and moves its checkpoint in one
    /// transaction, guarded by the generation and the checkpoint read. Returns the new
    /// checkpoint (or the old one, unchanged, when another writer or a swap moved first).
    async fn apply(
        &self,
        projector: &dyn Projector,
        events: &[RecordedEvent],
        generation: i64,
        from: i64,
    ) -> Result<i64, ReadModelError> {
        let last = events.last().and_then(|e| e.position).map_or(from, |p| p.0 as i64);
        let touched: BTreeSet<String> = events.iter().flat_map(|e| projector.keys(e)).collect();
        let mut tx = self.models.begin_write().await?;
        let before = load_many(&mut tx, projector.name(), generation, &touched).await?;
        let mut docs = before.clone();
        for event in events {
            crate::fold(projector, event, &mut docs);
        }
        let changed = docs.iter().filter(|(k, v)| before.get(*k) != Some(*v));
        upsert_many(&mut tx, projector.name(), generation, changed).await?;
        let removed: Vec<&String> = before.keys().filter(|k| !docs.contains_key(*k)).collect();
        delete_many(&mut tx, projector.name(), generation, &removed).await?;
        let moved = sqlx::query(
            "UPDATE read_model_projections SET checkpoint = $2 \
             WHERE name = $1 AND checkpoint = $3 AND active_generation = $4",
        )
        .bind(projector.name())
        .bind(last)
        .bind(from)
        .bind(generation)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved == 1 {
            tx.commit().await?;
            Ok(last)
        } else {
            tx.rollback().await?;
            Ok(from)
        }
    }
}

/// `$first, $first+1, …` for `n` parameters.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// `statement` restricted to one projection's generation (`$1`, `$2`) and `n` keys (`$3…`).
fn keyed(statement: &str, n: usize) -> String {
    format!("{statement} WHERE projection = $1 AND generation = $2 AND doc_key IN ({})", placeholders(3, n))
}

async fn load_many(
    tx: &mut Transaction<'static, Any>,
    projection: &str,
    generation: i64,
    keys: &BTreeSet<String>,
) -> Result<BTreeMap<String, Document>, ReadModelError> {
    let mut docs = BTreeMap::new();
    let keys: Vec<&String> = keys.iter().collect();
    for chunk in keys.chunks(KEYS_PER_LOOKUP) {
        let sql = keyed("SELECT doc_key, doc FROM read_model_documents", chunk.len());
        let mut query =
            sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql)).bind(projection).bind(generation);
        for key in chunk {
            query = query.bind(key.as_str());
        }
        for (key, doc) in query.fetch_all(&mut **tx).await? {
            let doc = parse(projection, &key, &doc)?;
            docs.insert(key, doc);
        }
    }
    Ok(docs)
}

/// Documents as the text stored.
fn serialised<'a>(docs: impl Iterator<Item = (&'a String, &'a Document)>) -> Vec<(&'a String, String)> {
    docs.map(|(k, v)| (k, v.text())).collect()
}

/// Writes documents with multi-row statements (`upsert`: replacing those that exist).
pub(crate) async fn write_rows<K: AsRef<str>>(
    tx: &mut Transaction<'static, Any>,
    projection: &str,
    generation: i64,
    rows: &[(K, String)],
    upsert: bool,
) -> Result<(), ReadModelError> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let values =
            (0..chunk.len()).map(|i| format!("({})", placeholders(4 * i + 1, 4))).collect::<Vec<_>>().join(", ");
        let conflict =
            if upsert { " ON CONFLICT (projection, generation, doc_key) DO UPDATE SET doc = excluded.doc" } else { "" };
        let sql = format!(
            "INSERT INTO read_model_documents (projection, generation, doc_key, doc) VALUES {values}{conflict}"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (key, doc) in chunk {
            query = query.bind(projection).bind(generation).bind(key.as_ref()).bind(doc.as_str());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn upsert_many<'a>(
    tx: &mut Transaction<'static, Any>,
    projection: &str,
    generation: i64,
    docs: impl Iterator<Item = (&'a String, &'a Document)>,
) -> Result<(), ReadModelError> {
    write_rows(tx, projection, generation, &serialised(docs), true).await
}

async fn delete_many(
    tx: &mut Transaction<'static, Any>,
    projection: &str,
    generation: i64,
    keys: &[&String],
) -> Result<(), ReadModelError> {
    for chunk in keys.chunks(KEYS_PER_LOOKUP) {
        let sql = keyed("DELETE FROM read_model_documents", chunk.len());
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(projection).bind(generation);
        for key in chunk {
            query = query.bind(key.as_str());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

impl ReadModels {
    /// Installs `docs` as the active generation of `projection`, built by `version` of its
    /// projector through log position `through` — a scratch database's read model as of
    /// an instant (`finops-replay at`). Returns its digest, read back from the database.
    pub async fn install(
        &self,
        projection: &str,
        version: u32,
        docs: &BTreeMap<String, Document>,
        through: u64,
    ) -> Result<String, ReadModelError> {
        let (active, _) = self.register(projection).await?;
        let generation = active + 1;
        self.start_generation(projection, generation).await?;
        self.write_generation(projection, generation, Folded::all_in_memory(docs.clone()), through as i64).await?;
        self.swap_in(&[(projection, generation, version)]).await?;
        self.digest(projection).await
    }

    /// Starts a generation of `projection` for a rebuild, the one after the active one
    /// (clearing any half-built one a killed rebuild left behind, and any replaced one a
    /// process ended before dropping); the active generation is untouched.
    pub(crate) async fn start_generation(&self, projection: &str, generation: i64) -> Result<(), ReadModelError> {
        let mut tx = self.begin_write().await?;
        // Two ranges of the key, not `<>`: the active generation's rows are not scanned.
        sqlx::query("DELETE FROM read_model_documents WHERE projection = $1 AND (generation < $2 OR generation >= $3)")
            .bind(projection)
            .bind(generation - 1)
            .bind(generation)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE read_model_projections SET building_generation = $2, building_checkpoint = 0 WHERE name = $1",
        )
        .bind(projection)
        .bind(generation)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Makes rebuilt generations the active ones at their checkpoints, in one transaction:
    /// readers see every read model's old generation or every new one, never half of one
    /// nor a mix. The live runner's next batch sees the new generation and continues from
    /// there.
    ///
    /// The generations replaced are dropped behind it, each on its own connection: no
    /// reader sees them any more, and deleting a generation row by row costs PostgreSQL
    /// about as long as writing one (0.3 s a read model of a 100 k-event log), so the
    /// rebuild does not wait for it. [`Self::retired`] waits; what a process ended before
    /// dropping, the next rebuild of that read model drops ([`Self::start_generation`]).
    pub(crate) async fn swap_in(&self, generations: &[(&str, i64, u32)]) -> Result<(), ReadModelError> {
        let mut tx = self.begin_write().await?;
        for (projection, generation, version) in generations {
            sqlx::query(
                "UPDATE read_model_projections SET active_generation = $2, checkpoint = building_checkpoint, \
                 building_generation = NULL, building_checkpoint = NULL, projector_version = $3 WHERE name = $1",
            )
            .bind(*projection)
            .bind(*generation)
            .bind(i64::from(*version))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        let mut retiring = self.retiring.lock().expect("the retiring list's lock is never poisoned");
        retiring.retain(|dropping| !dropping.is_finished());
        for (projection, generation, _) in generations {
            let (models, projection, generation) = (self.clone(), (*projection).to_owned(), *generation);
            retiring.push(tokio::spawn(async move {
                if let Err(error) = models.drop_generations_before(&projection, generation).await {
                    tracing::warn!(projection, %error, "replaced generation not dropped; the next rebuild drops it");
                }
            }));
        }
        Ok(())
    }

    /// Deletes the generations of `projection` before `generation`.
    async fn drop_generations_before(&self, projection: &str, generation: i64) -> Result<(), ReadModelError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM read_model_documents WHERE projection = $1 AND generation < $2")
            .bind(projection)
            .bind(generation)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Waits until the generations replaced by rebuilds so far are dropped (a command-line
    /// rebuild waits before it exits; a failure is logged, and left to the next rebuild).
    pub async fn retired(&self) {
        let pending = std::mem::take(&mut *self.retiring.lock().expect("the retiring list's lock is never poisoned"));
        for handle in pending {
            let _ = handle.await;
        }
    }
}
