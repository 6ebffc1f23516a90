//! Snapshots beside the read models: of the governance state (`governance_snapshots`: the
//! newest of the running build's version only — writing one deletes the rest), and of
//! long aggregate streams (`stream_snapshots`: one per stream).

use chrono::{DateTime, SecondsFormat, Utc};
use finops_eventlog::Position;
use finops_governance::stream_snapshots::{StreamSnapshot, StreamSnapshotStore};
use finops_governance::timeline::{BoxError, Snapshot, SnapshotStore};

use crate::store::ReadModels;

/// A `governance_snapshots` row: position, events, chain hash, earliest, latest, state.
type SnapshotRow = (i64, i64, String, String, String, String);

fn instant(text: &str) -> Result<DateTime<Utc>, BoxError> {
    Ok(DateTime::parse_from_rfc3339(text)?.with_timezone(&Utc))
}

fn text(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[async_trait::async_trait]
impl SnapshotStore for ReadModels {
    async fn load_snapshot(&self, version: u32) -> Result<Option<Snapshot>, BoxError> {
        let row: Option<SnapshotRow> = sqlx::query_as(
            "SELECT position, events, chain_hash, earliest, latest, state FROM governance_snapshots \
             WHERE version = $1 ORDER BY position DESC LIMIT 1",
        )
        .bind(i64::from(version))
        .fetch_optional(self.pool())
        .await?;
        let Some((position, events, chain_hash, earliest, latest, state)) = row else { return Ok(None) };
        Ok(Some(Snapshot {
            version,
            position: Position(u64::try_from(position)?),
            events: u64::try_from(events)?,
            chain_hash,
            earliest: instant(&earliest)?,
            latest: instant(&latest)?,
            state,
        }))
    }

    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), BoxError> {
        let (version, position) = (i64::from(snapshot.version), i64::try_from(snapshot.position.0)?);
        let mut tx = self.begin_write().await?;
        // One row: the newest of this version (a row at the same position is replaced).
        sqlx::query("DELETE FROM governance_snapshots WHERE version <> $1 OR position <= $2")
            .bind(version)
            .bind(position)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO governance_snapshots (version, position, events, chain_hash, earliest, latest, state) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(version)
        .bind(position)
        .bind(i64::try_from(snapshot.events)?)
        .bind(&snapshot.chain_hash)
        .bind(text(snapshot.earliest))
        .bind(text(snapshot.latest))
        .bind(&snapshot.state)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl StreamSnapshotStore for ReadModels {
    async fn load_stream_snapshot(&self, stream: &str, fold_version: u32) -> Result<Option<StreamSnapshot>, BoxError> {
        let row: Option<(i64, String, String)> = sqlx::query_as(
            "SELECT version, event_id, state FROM stream_snapshots WHERE stream_id = $1 AND fold_version = $2",
        )
        .bind(stream)
        .bind(i64::from(fold_version))
        .fetch_optional(self.pool())
        .await?;
        let Some((version, event_id, state)) = row else { return Ok(None) };
        Ok(Some(StreamSnapshot {
            stream: stream.to_owned(),
            fold_version,
            version: u64::try_from(version)?,
            event_id: event_id.parse()?,
            state,
        }))
    }

    async fn save_stream_snapshot(&self, snapshot: &StreamSnapshot) -> Result<(), BoxError> {
        let mut tx = self.begin_write().await?;
        // A later snapshot of the stream is kept rather than replaced by an earlier one
        // (two writers of one stream); one of the same version is replaced (a correction).
        let kept: Option<(i64, i64)> =
            sqlx::query_as("SELECT fold_version, version FROM stream_snapshots WHERE stream_id = $1")
                .bind(&snapshot.stream)
                .fetch_optional(&mut *tx)
                .await?;
        let (fold_version, version) = (i64::from(snapshot.fold_version), i64::try_from(snapshot.version)?);
        if kept.is_some_and(|(f, v)| f == fold_version && v > version) {
            return Ok(());
        }
        sqlx::query("DELETE FROM stream_snapshots WHERE stream_id = $1")
            .bind(&snapshot.stream)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO stream_snapshots (stream_id, fold_version, version, event_id, state) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&snapshot.stream)
        .bind(fold_version)
        .bind(version)
        .bind(snapshot.event_id.to_string())
        .bind(&snapshot.state)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
