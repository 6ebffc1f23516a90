//! Applies the log to projectors: live (following the head) and as a rebuild into a new
//! generation that replaces the active one when caught up.

use std::sync::Arc;
use std::time::Duration;

use finops_eventlog::{AllRead, EventStore, Position, RecordedEvent};
use sqlx::Any;
use sqlx::Transaction;

use crate::Projector;
use crate::store::{ReadModelError, ReadModels, parse};

const PAGE: usize = 500;

/// Which checkpoint a batch moves.
#[derive(Clone, Copy)]
enum Target {
    /// The active generation, guarded by its number and the checkpoint read.
    Live { generation: i64, from: i64 },
    /// A generation being rebuilt.
    Rebuild { generation: i64, from: i64 },
}

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

/// Runs projectors over a store.
#[derive(Clone)]
pub struct ProjectionRunner {
    store: Arc<dyn EventStore>,
    models: ReadModels,
    projectors: Vec<Arc<dyn Projector>>,
}

impl ProjectionRunner {
    /// A runner for `projectors`, writing to `models`.
    pub fn new(store: Arc<dyn EventStore>, models: ReadModels, projectors: Vec<Arc<dyn Projector>>) -> Self {
        Self { store, models, projectors }
    }

    /// Folds everything sealed so far into every projection; returns the lowest checkpoint.
    pub async fn catch_up(&self) -> Result<u64, ReadModelError> {
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
            self.apply(projector, &events, Target::Live { generation, from }).await?;
        }
    }

    /// Follows the head until the returned handle is aborted. Failures are logged and
    /// retried: a read model lags rather than stops.
    pub fn spawn(self, poll: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut signal = self.store.head_signal();
            loop {
                if let Err(e) = self.catch_up().await {
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
        let projector = self
            .projectors
            .iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| ReadModelError::BadPageToken(format!("no projection named `{name}`")))?
            .clone();
        let (active, _) = self.models.register(projector.name()).await?;
        let digest_before = self.models.digest(projector.name()).await?;
        let generation = active + 1;
        let pool = self.models.pool();
        sqlx::query("DELETE FROM read_model_documents WHERE projection = $1 AND generation >= $2")
            .bind(projector.name())
            .bind(generation)
            .execute(pool)
            .await?;
        sqlx::query(
            "UPDATE read_model_projections SET building_generation = $2, building_checkpoint = 0 WHERE name = $1",
        )
        .bind(projector.name())
        .bind(generation)
        .execute(pool)
        .await?;
        let mut from = 0i64;
        let mut events_folded = 0u64;
        loop {
            let events = self.store.read_all(AllRead::forwards_after(Position(from as u64), PAGE)).await?;
            if events.is_empty() {
                break;
            }
            events_folded += events.len() as u64;
            from = self.apply(projector.as_ref(), &events, Target::Rebuild { generation, from }).await?;
        }
        // Swap: the new generation becomes active at its checkpoint; the live runner's
        // next batch sees the new generation and continues from there.
        let mut tx = pool.begin().await?;
        sqlx::query(
            "UPDATE read_model_projections SET active_generation = $2, checkpoint = building_checkpoint, \
             building_generation = NULL, building_checkpoint = NULL WHERE name = $1",
        )
        .bind(projector.name())
        .bind(generation)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM read_model_documents WHERE projection = $1 AND generation < $2")
            .bind(projector.name())
            .bind(generation)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        // Fold whatever arrived during the rebuild, then report.
        self.catch_up_one(projector.as_ref()).await?;
        let digest_after = self.models.digest(projector.name()).await?;
        tracing::info!(projection = projector.name(), events = events_folded, "rebuilt");
        Ok(RebuildReport { projection: projector.name(), events: events_folded, digest_before, digest_after })
    }

    /// Applies a batch and moves the target checkpoint in one transaction. Returns the new
    /// checkpoint (or the old one, unchanged, when another writer moved first).
    async fn apply(
        &self,
        projector: &dyn Projector,
        events: &[RecordedEvent],
        target: Target,
    ) -> Result<i64, ReadModelError> {
        let (generation, from) = match target {
            Target::Live { generation, from } | Target::Rebuild { generation, from } => (generation, from),
        };
        let last = events.last().and_then(|e| e.position).map_or(from, |p| p.0 as i64);
        let mut tx = self.models.pool().begin().await?;
        for event in events {
            for key in projector.keys(event) {
                let current = load(&mut tx, projector.name(), generation, &key).await?;
                match projector.apply(event, &key, current) {
                    Some(doc) => {
                        sqlx::query(
                            "INSERT INTO read_model_documents (projection, generation, doc_key, doc) VALUES ($1, $2, $3, $4) \
                             ON CONFLICT (projection, generation, doc_key) DO UPDATE SET doc = excluded.doc",
                        )
                        .bind(projector.name())
                        .bind(generation)
                        .bind(&key)
                        .bind(doc.to_string())
                        .execute(&mut *tx)
                        .await?;
                    }
                    None => {
                        sqlx::query("DELETE FROM read_model_documents WHERE projection = $1 AND generation = $2 AND doc_key = $3")
                            .bind(projector.name())
                            .bind(generation)
                            .bind(&key)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
            }
        }
        let moved = match target {
            Target::Live { .. } => sqlx::query(
                "UPDATE read_model_projections SET checkpoint = $2 \
                 WHERE name = $1 AND checkpoint = $3 AND active_generation = $4",
            ),
            Target::Rebuild { .. } => sqlx::query(
                "UPDATE read_model_projections SET building_checkpoint = $2 \
                 WHERE name = $1 AND building_checkpoint = $3 AND building_generation = $4",
            ),
        }
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

async fn load(
    tx: &mut Transaction<'_, Any>,
    projection: &str,
    generation: i64,
    key: &str,
) -> Result<Option<serde_json::Value>, ReadModelError> {
    let doc: Option<String> = sqlx::query_scalar(
        "SELECT doc FROM read_model_documents WHERE projection = $1 AND generation = $2 AND doc_key = $3",
    )
    .bind(projection)
    .bind(generation)
    .bind(key)
    .fetch_optional(&mut **tx)
    .await?;
    doc.map(|d| parse(projection, key, &d)).transpose()
}
