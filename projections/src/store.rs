//! Where read models live: two tables in the log's own database, written through sqlx's
//! `Any` driver so that one code path serves PostgreSQL and SQLite.

use std::sync::{Arc, Mutex};

use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

/// A read-model failure.
#[derive(Debug, thiserror::Error)]
pub enum ReadModelError {
    /// The database failed.
    #[error("read-model database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The log could not be read.
    #[error(transparent)]
    Log(#[from] finops_eventlog::EventLogError),
    /// A stored document is not JSON.
    #[error("document {projection}/{key} is not JSON: {reason}")]
    Corrupt {
        /// The projection.
        projection: String,
        /// The key.
        key: String,
        /// The parser's complaint.
        reason: String,
    },
    /// No projection of that name.
    #[error("no read model named `{0}`")]
    UnknownProjection(String),
    /// A page token this server did not issue.
    #[error("page_token `{0}` is not one this server issued")]
    BadPageToken(String),
}

const SCHEMA: [&str; 5] = [
    "CREATE TABLE IF NOT EXISTS read_model_projections (
        name TEXT NOT NULL PRIMARY KEY,
        active_generation BIGINT NOT NULL,
        building_generation BIGINT,
        checkpoint BIGINT NOT NULL,
        building_checkpoint BIGINT
    )",
    "CREATE TABLE IF NOT EXISTS process_checkpoints (
        name TEXT NOT NULL PRIMARY KEY,
        checkpoint BIGINT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS read_model_documents (
        projection TEXT NOT NULL,
        generation BIGINT NOT NULL,
        doc_key TEXT NOT NULL,
        doc TEXT NOT NULL,
        PRIMARY KEY (projection, generation, doc_key)
    )",
    // The governance state written down at a position (`finops_governance::timeline`).
    "CREATE TABLE IF NOT EXISTS governance_snapshots (
        version BIGINT NOT NULL,
        position BIGINT NOT NULL,
        events BIGINT NOT NULL,
        chain_hash TEXT NOT NULL,
        earliest TEXT NOT NULL,
        latest TEXT NOT NULL,
        state TEXT NOT NULL,
        PRIMARY KEY (version, position)
    )",
    // One aggregate's stream written down at a version (`finops_governance::stream_snapshots`).
    "CREATE TABLE IF NOT EXISTS stream_snapshots (
        stream_id TEXT NOT NULL PRIMARY KEY,
        fold_version BIGINT NOT NULL,
        version BIGINT NOT NULL,
        event_id TEXT NOT NULL,
        state TEXT NOT NULL
    )",
];

/// A `read_model_projections` row: name, checkpoint, active generation, building
/// generation and checkpoint, projector version.
type StatusRow = (String, i64, i64, Option<i64>, Option<i64>, i64);

/// Where one read model stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionStatus {
    /// Its name.
    pub name: String,
    /// The log position its active generation has folded through.
    pub checkpoint: u64,
    /// The generation serving reads.
    pub active_generation: i64,
    /// A generation being rebuilt (not served until it is swapped in), if any — also one a
    /// killed rebuild left behind, cleared by the next.
    pub building_generation: Option<i64>,
    /// How far that rebuild has written.
    pub building_checkpoint: Option<u64>,
    /// The version of the projector that built the active generation.
    pub projector_version: u32,
}

/// The most rows one read of a List fetches.
const MAX_CHUNK: usize = 2_000;

/// One page of documents, in key order.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The documents.
    pub documents: Vec<Value>,
    /// Pass back as `page_token` for the next page; empty on the last page.
    pub next_page_token: String,
}

/// The read-model tables.
#[derive(Debug, Clone)]
pub struct ReadModels {
    pool: AnyPool,
    /// SQLite takes one writer at a time: see [`ReadModels::begin_write`].
    sqlite: bool,
    /// The same PostgreSQL database through the typed driver, for what `Any` cannot do:
    /// a rebuilt generation is written with `COPY` (connected on first use).
    pub(crate) postgres: Option<sqlx::PgPool>,
    /// Deletions of generations a rebuild replaced, still running (see
    /// [`ReadModels::retired`]).
    pub(crate) retiring: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl ReadModels {
    /// Connects to the database the store URL names and creates the tables if needed.
    pub async fn open(url: &str) -> Result<Self, ReadModelError> {
        let models = Self::connect(url).await?;
        for statement in SCHEMA {
            let mut tx = models.begin_write().await?;
            sqlx::query(statement).execute(&mut *tx).await?;
            tx.commit().await?;
        }
        // Added after the first release: which version of its projector built a read model.
        if sqlx::query("SELECT projector_version FROM read_model_projections LIMIT 1")
            .execute(&models.pool)
            .await
            .is_err()
        {
            let mut tx = models.begin_write().await?;
            sqlx::query("ALTER TABLE read_model_projections ADD COLUMN projector_version BIGINT NOT NULL DEFAULT 1")
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        if !models.sqlite {
            models.keys_in_byte_order().await;
            models.compress_with_lz4().await;
        }
        Ok(models)
    }

    /// On PostgreSQL, document keys compare byte for byte (`COLLATE "C"`), whatever the
    /// database's collation: a List pages in key byte order as SQLite does, as a
    /// point-in-time view (a `BTreeMap`) does and as a digest sorts — under a linguistic
    /// collation (ICU's, `en_US`) `B` came after `a` and `a-c` after `ab`, so the same
    /// question answered live and `as_of` listed the same documents in another order —
    /// and the documents' index compares with `memcmp`, not `strcoll`. Asked first, and
    /// changed once: the change rebuilds the documents' index under the table's exclusive
    /// lock. A role that may not alter the table keeps the database's order (logged, not an
    /// error: the service still serves).
    async fn keys_in_byte_order(&self) {
        let asked = "SELECT CAST(c.collname AS TEXT) FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation \
             WHERE a.attrelid = CAST('read_model_documents' AS regclass) AND a.attname = 'doc_key'";
        let change = "ALTER TABLE read_model_documents ALTER COLUMN doc_key TYPE TEXT COLLATE \"C\"";
        if let Err(error) = self.change_column_once(asked, "C", change).await {
            tracing::warn!(%error, "document keys keep the database's collation; Lists may page in another order than as_of views");
        }
    }

    /// Runs `change` unless `asked` (a query of a column's setting) already answers `wanted`:
    /// such a change takes the table's exclusive lock, so it is made once, never at every
    /// start while another process reads.
    async fn change_column_once(&self, asked: &str, wanted: &str, change: &str) -> Result<(), sqlx::Error> {
        let current: Option<String> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(asked)).fetch_optional(&self.pool).await.ok().flatten();
        if current.as_deref() == Some(wanted) {
            return Ok(());
        }
        sqlx::query(sqlx::AssertSqlSafe(change)).execute(&self.pool).await.map(drop)
    }

    /// On PostgreSQL, documents and snapshots are compressed with lz4 rather than the
    /// default pglz: a value over PostgreSQL's threshold (about 2 kB: a governance snapshot,
    /// a gap's trail; a task's document was 2.4 kB while it copied its plan) is compressed
    /// when written and decompressed when read, and storing a rebuilt generation of a
    /// 200 k-event log with `COPY` took 1.84 s with pglz and 1.25–1.34 s with lz4
    /// (BENCHMARKS.md, session 21). Only values written after apply; a server built
    /// without lz4 keeps pglz (logged, not an error).
    async fn compress_with_lz4(&self) {
        const COLUMNS: [(&str, &str); 3] =
            [("read_model_documents", "doc"), ("governance_snapshots", "state"), ("stream_snapshots", "state")];
        for (table, column) in COLUMNS {
            let asked = format!(
                "SELECT CAST(attcompression AS TEXT) FROM pg_attribute \
                 WHERE attrelid = CAST('{table}' AS regclass) AND attname = '{column}'"
            );
            let change = format!("ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION lz4");
            if let Err(error) = self.change_column_once(&asked, "l", &change).await {
                tracing::info!(table, %error, "lz4 compression unavailable; keeping PostgreSQL's default");
                return;
            }
        }
    }

    /// Connects to the database the store URL names, creating nothing.
    async fn connect(url: &str) -> Result<Self, ReadModelError> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:") || url.ends_with(".db") || url.ends_with(".sqlite");
        let url = match url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            Some(path) => format!("sqlite://{path}"),
            None if sqlite => format!("sqlite://{url}"),
            None => url.to_owned(),
        };
        let pool = AnyPoolOptions::new().max_connections(4).connect(&url).await?;
        let postgres = if sqlite {
            None
        } else {
            // The rebuild's early `COPY`s each hold one during the fold; the rest serve the
            // live digests and the end's writes.
            let connections = crate::generation::EARLY_COPIES as u32 + 3;
            Some(sqlx::postgres::PgPoolOptions::new().max_connections(connections).connect_lazy(&url)?)
        };
        Ok(Self { pool, sqlite, postgres, retiring: Default::default() })
    }

    /// Where every read model stands, by name: its checkpoint, and a rebuild in progress
    /// if one is.
    pub async fn statuses(&self) -> Result<Vec<ProjectionStatus>, ReadModelError> {
        let rows: Vec<StatusRow> = sqlx::query_as(
            "SELECT name, checkpoint, active_generation, building_generation, building_checkpoint, \
             projector_version FROM read_model_projections ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(name, checkpoint, active, building, building_checkpoint, version)| ProjectionStatus {
                name,
                checkpoint: checkpoint as u64,
                active_generation: active,
                building_generation: building,
                building_checkpoint: building_checkpoint.map(|c| c as u64),
                projector_version: version as u32,
            })
            .collect())
    }

    /// [`ReadModels::statuses`] for an auditor's tool: creates nothing, and a database
    /// holding no read models has none.
    pub async fn statuses_read_only(url: &str) -> Result<Vec<ProjectionStatus>, ReadModelError> {
        let models = Self::connect(url).await?;
        let exists = sqlx::query("SELECT projector_version FROM read_model_projections LIMIT 1")
            .execute(&models.pool)
            .await
            .is_ok();
        if exists { models.statuses().await } else { Ok(vec![]) }
    }

    /// Records that `projection` is built by version `version` of its projector, and says
    /// whether what is stored was built by another version (and so must be rebuilt). A
    /// read model with nothing folded yet simply takes the version.
    pub(crate) async fn needs_rebuild_for(&self, projection: &str, version: u32) -> Result<bool, ReadModelError> {
        let known: Option<(i64, i64)> =
            sqlx::query_as("SELECT checkpoint, projector_version FROM read_model_projections WHERE name = $1")
                .bind(projection)
                .fetch_optional(&self.pool)
                .await?;
        match known {
            Some((_, stored)) if stored == i64::from(version) => Ok(false),
            Some((checkpoint, _)) if checkpoint > 0 => Ok(true),
            _ => {
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO read_model_projections (name, active_generation, checkpoint, projector_version) \
                     VALUES ($1, 1, 0, $2) ON CONFLICT (name) DO UPDATE SET projector_version = excluded.projector_version",
                )
                .bind(projection)
                .bind(i64::from(version))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(false)
            }
        }
    }

    /// The pool, for the other tables kept beside the read models.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A write transaction. On SQLite it takes the write lock at `BEGIN` (`IMMEDIATE`),
    /// waiting its turn behind the event store's writer: a deferred transaction that
    /// reads first and then writes cannot wait — SQLite answers "database is locked" at
    /// once when a write landed since its read began — and the round had to be retried.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, ReadModelError> {
        Ok(if self.sqlite { self.pool.begin_with("BEGIN IMMEDIATE").await? } else { self.pool.begin().await? })
    }

    /// The active generation of `projection` (registering it at generation 1 if new) and
    /// its checkpoint.
    pub(crate) async fn register(&self, projection: &str) -> Result<(i64, i64), ReadModelError> {
        let known: Option<(i64, i64)> =
            sqlx::query_as("SELECT active_generation, checkpoint FROM read_model_projections WHERE name = $1")
                .bind(projection)
                .fetch_optional(&self.pool)
                .await?;
        if let Some(row) = known {
            return Ok(row);
        }
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO read_model_projections (name, active_generation, checkpoint) VALUES ($1, 1, 0) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(projection)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let row: (i64, i64) =
            sqlx::query_as("SELECT active_generation, checkpoint FROM read_model_projections WHERE name = $1")
                .bind(projection)
                .fetch_one(&self.pool)
                .await?;
        Ok(row)
    }

    /// The position a process that follows the log (finops-processes) has handled
    /// everything through; 0 before its first round.
    pub async fn process_checkpoint(&self, process: &str) -> Result<u64, ReadModelError> {
        let checkpoint: Option<i64> = sqlx::query_scalar("SELECT checkpoint FROM process_checkpoints WHERE name = $1")
            .bind(process)
            .fetch_optional(&self.pool)
            .await?;
        Ok(checkpoint.unwrap_or(0) as u64)
    }

    /// Moves a process's checkpoint from `from` to `to`; `false` (nothing moved) when
    /// another instance of the process moved it first.
    pub async fn advance_process(&self, process: &str, from: u64, to: u64) -> Result<bool, ReadModelError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO process_checkpoints (name, checkpoint) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING")
            .bind(process)
            .execute(&mut *tx)
            .await?;
        let moved = sqlx::query("UPDATE process_checkpoints SET checkpoint = $2 WHERE name = $1 AND checkpoint = $3")
            .bind(process)
            .bind(to as i64)
            .bind(from as i64)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(moved == 1)
    }

    /// The position the active generation has folded through.
    pub async fn checkpoint(&self, projection: &str) -> Result<u64, ReadModelError> {
        Ok(self.register(projection).await?.1 as u64)
    }

    /// One document of the active generation.
    pub async fn get(&self, projection: &str, key: &str) -> Result<Option<Value>, ReadModelError> {
        let doc: Option<String> = sqlx::query_scalar(
            "SELECT doc FROM read_model_documents WHERE projection = $1 AND doc_key = $2 \
             AND generation = (SELECT active_generation FROM read_model_projections WHERE name = $1)",
        )
        .bind(projection)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        doc.map(|d| parse(projection, key, &d)).transpose()
    }

    /// A page of the active generation, in key order, keeping the documents `keep` accepts.
    /// The page token is the last key returned (hex), so pages stay stable under inserts.
    pub async fn list(
        &self,
        projection: &str,
        page_size: usize,
        page_token: &str,
        keep: impl Fn(&Value) -> bool,
    ) -> Result<Page, ReadModelError> {
        let mut after = page_after(page_token)?;
        let page_size = page_size.clamp(1, 1_000);
        let mut documents = Vec::new();
        // Filtering happens after reading, so read in chunks until the page is full. The
        // first chunk is the page plus one (enough when nothing is filtered out, and the
        // one extra row says whether another page follows); each further chunk doubles,
        // so a selective filter costs a few round trips, not one per page.
        let mut chunk = page_size + 1;
        loop {
            // One round trip: the active generation is read in the same statement, so a
            // rebuild's swap is seen whole (before or after, never half).
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT doc_key, doc FROM read_model_documents \
                 WHERE projection = $1 AND doc_key > $2 \
                 AND generation = (SELECT active_generation FROM read_model_projections WHERE name = $1) \
                 ORDER BY doc_key LIMIT $3",
            )
            .bind(projection)
            .bind(&after)
            .bind(chunk as i64)
            .fetch_all(&self.pool)
            .await?;
            let exhausted = rows.len() < chunk;
            chunk = (chunk * 2).min(MAX_CHUNK);
            let read = rows.len();
            for (i, (key, doc)) in rows.into_iter().enumerate() {
                if documents.len() == page_size {
                    // A row beyond a full page: there is a next page.
                    return Ok(Page { documents, next_page_token: hex::encode(after.as_bytes()) });
                }
                let doc = parse(projection, &key, &doc)?;
                after = key;
                if keep(&doc) {
                    documents.push(doc);
                    if documents.len() == page_size && i + 1 == read && !exhausted {
                        return Ok(Page { documents, next_page_token: hex::encode(after.as_bytes()) });
                    }
                }
            }
            if exhausted {
                return Ok(Page { documents, next_page_token: String::new() });
            }
        }
    }

    /// The digest of the active generation's documents ([`digest_of`]): equal digests
    /// mean equal read models.
    pub async fn digest(&self, projection: &str) -> Result<String, ReadModelError> {
        self.register(projection).await?;
        // One statement, as every read: the active generation and its documents seen at
        // once, never a generation a swap has just replaced and emptied.
        const ACTIVE: &str = "FROM read_model_documents WHERE projection = $1 \
             AND generation = (SELECT active_generation FROM read_model_projections WHERE name = $1)";
        let mut rows: Vec<(String, Vec<u8>)> = match &self.postgres {
            // Each document hashed where it is stored: a rebuild takes the digest of every
            // live document, and their text (most of a read model's bytes) then never
            // crosses the connection. Its UTF-8 bytes, as a client reads the text.
            Some(postgres) => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT doc_key, sha256(convert_to(doc, 'UTF8')) {ACTIVE}")))
                    .bind(projection)
                    .fetch_all(postgres)
                    .await?
            }
            None => {
                use futures_util::TryStreamExt;
                let query = format!("SELECT doc_key, doc {ACTIVE}");
                let mut rows = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(query.as_str()))
                    .bind(projection)
                    .fetch(&self.pool);
                let mut hashed = Vec::new();
                while let Some((key, doc)) = rows.try_next().await? {
                    hashed.push((key, document_hash(&doc).to_vec()));
                }
                hashed
            }
        };
        // Byte order, whatever the database's collation: the same documents always hash
        // alike, and a rebuild's digest can be taken from the documents it wrote.
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut digest = DocumentDigest::default();
        for (key, hash) in &rows {
            let hash: &[u8; 32] = hash.as_slice().try_into().map_err(|_| ReadModelError::Corrupt {
                projection: projection.to_owned(),
                key: key.clone(),
                reason: "its hash is not 32 bytes".to_owned(),
            })?;
            digest.add_hashed(key, hash);
        }
        Ok(digest.finish())
    }
}

/// The key a page token says to continue after (empty: from the start).
pub(crate) fn page_after(page_token: &str) -> Result<String, ReadModelError> {
    if page_token.is_empty() {
        return Ok(String::new());
    }
    let bad = || ReadModelError::BadPageToken(page_token.to_owned());
    String::from_utf8(hex::decode(page_token).map_err(|_| bad())?).map_err(|_| bad())
}

/// The digest of a read model's documents, given in key order: SHA-256 over each key (its
/// length, then its bytes) followed by the SHA-256 of its document's text. Two levels, so
/// that the database can hash each document where it is stored ([`ReadModels::digest`])
/// while the order, the keys and every byte of every document still count.
pub(crate) fn digest_of<'a>(rows: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut digest = DocumentDigest::default();
    for (key, doc) in rows {
        digest.add(key, doc);
    }
    digest.finish()
}

/// The SHA-256 of a document's text (its UTF-8 bytes).
fn document_hash(doc: &str) -> [u8; 32] {
    Sha256::digest(doc.as_bytes()).into()
}

/// [`digest_of`], a document at a time.
#[derive(Default)]
pub(crate) struct DocumentDigest(Sha256);

impl DocumentDigest {
    /// Adds the next document, in key order.
    pub(crate) fn add(&mut self, key: &str, doc: &str) {
        self.add_hashed(key, &document_hash(doc));
    }

    /// Adds the next document, in key order, by its text's hash.
    fn add_hashed(&mut self, key: &str, doc_hash: &[u8; 32]) {
        self.0.update((key.len() as u64).to_be_bytes());
        self.0.update(key.as_bytes());
        self.0.update(doc_hash);
    }

    /// The digest of the documents added.
    pub(crate) fn finish(self) -> String {
        hex::encode(self.0.finalize())
    }
}

/// A stored document read as `T` (a tree, or a [`crate::Document`]); text that is not a
/// JSON object names the document.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    projection: &str,
    key: &str,
    doc: &str,
) -> Result<T, ReadModelError> {
    serde_json::from_str(doc).map_err(|e| ReadModelError::Corrupt {
        projection: projection.to_owned(),
        key: key.to_owned(),
        reason: e.to_string(),
    })
}
