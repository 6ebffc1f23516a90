//! Snapshots of the governance state beside the read models (`governance_snapshots`): the
//! newest of the running build's version only — writing one deletes the rest.

use chrono::{DateTime, SecondsFormat, Utc};
use finops_eventlog::Position;
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
