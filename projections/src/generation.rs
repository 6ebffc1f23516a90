//! A rebuild's new generation of one read model: folded in memory on a thread of its own,
//! and written — on PostgreSQL, while the log is still being read.
//!
//! Most documents stop changing soon after they start: a request's, a task's, a
//! workload's events come within a few thousand events of one another. So the fold writes
//! a document once no event has touched it for [`COLD_AFTER_PAGES`] pages of the log: its
//! text is made, kept for the digest, and (once the read model has enough of them to be
//! worth a connection) sent into the generation with `COPY` while the fold goes on. Should
//! a later event touch it after all, the document is read back from that text and folded
//! on, and at the end its early row is deleted and its final text written in its place —
//! so the generation holds exactly the documents a fold of the whole log makes, whatever
//! the log's shape; only the time saved depends on it. Nothing is served from a
//! generation until it is marked written and swapped in.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use finops_eventlog::RecordedEvent;

use crate::store::{DocumentDigest, ReadModelError, ReadModels};
use crate::{Document, Projector};

/// Pages of the log a document stays untouched before the fold writes it.
pub(crate) const COLD_AFTER_PAGES: usize = 2;
/// Text a read model sets aside before its `COPY` starts during the fold: below it, its
/// documents are written at the end (a connection each would buy little).
const EARLY_COPY_AFTER: usize = 4 << 20;
/// Read models that may write during the fold at once: each holds a connection from the
/// pool meanwhile, and the pool must keep one for the live digests and the end's writes.
pub(crate) const EARLY_COPIES: usize = 3;
/// Bytes of `COPY` data sent at a time.
const COPY_CHUNK: usize = 1 << 20;
/// Chunks made ahead of the one being sent.
const COPY_CHUNKS_AHEAD: usize = 4;
/// Binary, not text: each field goes as its length and its bytes, so nothing is escaped
/// here nor unescaped by PostgreSQL (which stored 127 MB of task documents in 0.76–0.86 s
/// this way against 1.15–1.60 s as text).
const COPY: &str = "COPY read_model_documents (projection, generation, doc_key, doc) FROM STDIN WITH (FORMAT binary)";
/// The binary format's signature, flags (none) and header extension length (none).
const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// A field count of -1: the end of the rows.
const COPY_TRAILER: &[u8] = &(-1i16).to_be_bytes();

/// The `COPY` a generation is written through during its fold: chunks of rows go to a task
/// that holds the transaction, and returns it once the chunks end.
struct EarlyCopy {
    chunks: tokio::sync::mpsc::Sender<Vec<u8>>,
    buffer: Vec<u8>,
    copying: Copying,
}

/// One read model's new generation being folded.
pub(crate) struct GenerationFold {
    projector: Arc<dyn Projector>,
    /// The projection and generation fields, each `COPY` row's start.
    row_prefix: Vec<u8>,
    /// Documents in memory, with the page each was last touched in.
    hot: HashMap<String, (Document, usize)>,
    /// The keys touched in each of the last pages, oldest first.
    touched: VecDeque<Vec<String>>,
    page: usize,
    /// The text of documents the fold took out of memory: final unless `rewritten` has the key.
    set_aside: BTreeMap<String, String>,
    set_aside_bytes: usize,
    /// Keys set aside and touched again since: their set-aside text is stale, and they stay
    /// in memory to the end.
    rewritten: BTreeSet<String>,
    /// Where set-aside documents go during the fold (PostgreSQL, once there are enough).
    early: Option<EarlyCopy>,
    /// How to start the early `COPY` (none on SQLite).
    copier: Option<Copier>,
    /// [`COLD_AFTER_PAGES`] and [`EARLY_COPY_AFTER`] (tests make them small).
    cold_after_pages: usize,
    early_copy_after: usize,
}

/// What an early `COPY` needs: the pool, the runtime to run it on, and the slots left.
#[derive(Clone)]
pub(crate) struct Copier {
    pub(crate) postgres: sqlx::PgPool,
    pub(crate) runtime: tokio::runtime::Handle,
    pub(crate) slots: Arc<AtomicUsize>,
}

impl GenerationFold {
    pub(crate) fn new(projector: Arc<dyn Projector>, generation: i64, copier: Option<Copier>) -> Self {
        Self {
            row_prefix: row_prefix(projector.name(), generation),
            projector,
            hot: HashMap::new(),
            touched: VecDeque::new(),
            page: 0,
            set_aside: BTreeMap::new(),
            set_aside_bytes: 0,
            rewritten: BTreeSet::new(),
            early: None,
            copier,
            cold_after_pages: COLD_AFTER_PAGES,
            early_copy_after: EARLY_COPY_AFTER,
        }
    }

    /// Folds one page of the log, then sets aside what it no longer touches.
    pub(crate) fn fold_page(&mut self, events: &[RecordedEvent]) {
        let mut touched = Vec::new();
        for event in events {
            for key in self.projector.keys(event) {
                let current = match self.hot.remove(&key) {
                    Some((doc, _)) => Some(doc),
                    None => self.take_back(&key),
                };
                if let Some(doc) = self.projector.apply(event, &key, current) {
                    self.hot.insert(key.clone(), (doc, self.page));
                }
                touched.push(key);
            }
        }
        self.touched.push_back(touched);
        if self.touched.len() > self.cold_after_pages {
            let page = self.page - self.cold_after_pages;
            for key in self.touched.pop_front().expect("more pages than the cold take") {
                if self.hot.get(&key).is_some_and(|(_, last)| *last == page) && !self.rewritten.contains(&key) {
                    let (doc, _) = self.hot.remove(&key).expect("just seen");
                    self.set_aside(key, doc.text());
                }
            }
        }
        self.page += 1;
    }

    /// A set-aside document a later event touches: read back from its text, and kept in
    /// memory to the end (its early row is replaced then).
    fn take_back(&mut self, key: &str) -> Option<Document> {
        if self.rewritten.contains(key) {
            return None; // set aside, touched again, and removed since
        }
        let text = self.set_aside.get(key)?;
        self.rewritten.insert(key.to_owned());
        Some(Document::parse(text).expect("the fold made this text"))
    }

    fn set_aside(&mut self, key: String, text: String) {
        self.set_aside_bytes += text.len();
        if let Some(early) = &mut self.early {
            push_copy_row(&mut early.buffer, &self.row_prefix, &key, &text);
            // Refused only when the COPY failed: its error is returned when it is joined.
            let _ = send_when_full(&mut early.buffer, &early.chunks);
        }
        self.set_aside.insert(key, text);
        if self.early.is_none() && self.set_aside_bytes >= self.early_copy_after {
            self.start_early_copy();
        }
    }

    /// Starts writing during the fold, if a slot is free: everything set aside so far
    /// first.
    fn start_early_copy(&mut self) {
        let Some(copier) = &self.copier else { return };
        let claimed = copier.slots.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1)).is_ok();
        if !claimed {
            self.copier = None; // none left: this read model is written at the end
            return;
        }
        let (chunks, copying) = spawn_copy(&copier.runtime, copier.postgres.clone());
        let mut early = EarlyCopy { chunks, buffer: Vec::new(), copying };
        for (key, text) in &self.set_aside {
            push_copy_row(&mut early.buffer, &self.row_prefix, key, text);
            // Refused only when the COPY failed: its error is returned when it is joined.
            let _ = send_when_full(&mut early.buffer, &early.chunks);
        }
        self.early = Some(early);
    }

    /// The fold's result, to be written.
    pub(crate) fn finish(self) -> Folded {
        let documents = self.hot.into_iter().map(|(key, (doc, _))| (key, doc)).collect();
        Folded { hot: documents, set_aside: self.set_aside, rewritten: self.rewritten, early: self.early }
    }
}

/// A folded generation: what is still in memory, what was set aside (and maybe already
/// written), and the early `COPY` if there is one.
pub(crate) struct Folded {
    hot: HashMap<String, Document>,
    set_aside: BTreeMap<String, String>,
    rewritten: BTreeSet<String>,
    early: Option<EarlyCopy>,
}

impl Folded {
    /// Documents folded elsewhere, all to be written (`finops-replay at`'s scratch models).
    pub(crate) fn all_in_memory(docs: BTreeMap<String, Document>) -> Self {
        Self { hot: docs.into_iter().collect(), set_aside: BTreeMap::new(), rewritten: BTreeSet::new(), early: None }
    }

    /// How many documents the generation holds.
    pub(crate) fn documents(&self) -> usize {
        self.hot.len() + self.set_aside.keys().filter(|k| !self.rewritten.contains(*k)).count()
    }
}

/// The generation's documents in key order, each with its final text, handed to `emit`
/// (to keep or drop) with whether the early `COPY` already sent it; returns the digest of
/// them all.
fn final_documents(
    hot: HashMap<String, Document>,
    set_aside: BTreeMap<String, String>,
    rewritten: &BTreeSet<String>,
    mut emit: impl FnMut(String, String, bool) -> bool,
) -> Option<String> {
    let mut digest = DocumentDigest::default();
    let mut hot: Vec<(String, Document)> = hot.into_iter().collect();
    hot.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut hot = hot.into_iter().peekable();
    let mut aside = set_aside.into_iter().filter(|(key, _)| !rewritten.contains(key)).peekable();
    loop {
        // A key is either in memory or set aside for good, never both.
        let from_memory = match (hot.peek(), aside.peek()) {
            (None, None) => return Some(digest.finish()),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((h, _)), Some((a, _))) => h < a,
        };
        let keep_going = if from_memory {
            let (key, doc) = hot.next().expect("peeked");
            // Each document dropped as soon as its text is made, while its memory is hot.
            let text = doc.text();
            digest.add(&key, &text);
            emit(key, text, false)
        } else {
            let (key, text) = aside.next().expect("peeked");
            digest.add(&key, &text);
            emit(key, text, true)
        };
        if !keep_going {
            return None;
        }
    }
}

/// A generation written: the digest of its text (as [`ReadModels::digest`] computes it,
/// from the very text written), and how many documents it holds.
pub(crate) struct Written {
    pub(crate) digest: String,
    pub(crate) documents: usize,
}

impl ReadModels {
    /// Writes a folded generation and its checkpoint: on PostgreSQL through `COPY` — the
    /// early one continued if the fold started one, the rows it sent of documents touched
    /// again since replaced — the text made on a blocking thread while the chunks before
    /// it are sent; on SQLite with multi-row inserts. Returns the digest of the text written.
    pub(crate) async fn write_generation(
        &self,
        projection: &str,
        generation: i64,
        folded: Folded,
        through: i64,
    ) -> Result<Written, ReadModelError> {
        const MARK_WRITTEN: &str =
            "UPDATE read_model_projections SET building_checkpoint = $2 WHERE name = $1 AND building_generation = $3";
        let documents = folded.documents();
        let Folded { hot, set_aside, rewritten, early } = folded;
        let Some(postgres) = &self.postgres else {
            let (rows, digest) = tokio::task::spawn_blocking(move || {
                let mut rows = Vec::new();
                let digest = final_documents(hot, set_aside, &rewritten, |key, text, _| {
                    rows.push((key, text));
                    true
                });
                (rows, digest.expect("every row kept"))
            })
            .await
            .expect("serialising never panics");
            let mut tx = self.begin_write().await?;
            crate::runner::write_rows(&mut tx, projection, generation, &rows, false).await?;
            sqlx::query(MARK_WRITTEN).bind(projection).bind(through).bind(generation).execute(&mut *tx).await?;
            tx.commit().await?;
            return Ok(Written { digest, documents });
        };

        // Whether the fold's early COPY sent what it set aside.
        let sent_early = early.is_some();
        let (chunks, copying, buffer) = match early {
            Some(EarlyCopy { chunks, buffer, copying }) => (chunks, copying, buffer),
            None => {
                let (chunks, copying) = spawn_copy(&tokio::runtime::Handle::current(), postgres.clone());
                (chunks, copying, Vec::new())
            }
        };
        let row_prefix = row_prefix(projection, generation);
        let making = tokio::task::spawn_blocking(move || {
            let mut buffer = buffer;
            // Documents the early COPY sent and a later event changed: their rows are
            // deleted once the COPY ends, and these rows written in their place.
            let mut again = Vec::new();
            let digest = final_documents(hot, set_aside, &rewritten, |key, text, already_sent| {
                if already_sent && sent_early {
                    return true;
                }
                if sent_early && rewritten.contains(&key) {
                    push_copy_row(&mut again, &row_prefix, &key, &text);
                    return true;
                }
                push_copy_row(&mut buffer, &row_prefix, &key, &text);
                // Refused only when the COPY failed: its error is returned.
                send_when_full(&mut buffer, &chunks)
            });
            if !buffer.is_empty() && chunks.blocking_send(buffer).is_err() {
                return None;
            }
            Some((digest?, again, rewritten))
        });
        let mut tx = copying.await.expect("a COPY never panics")?;
        let (digest, again, rewritten) = making.await.expect("serialising never panics").expect("every chunk sent");
        if sent_early && !rewritten.is_empty() {
            sqlx::query(
                "DELETE FROM read_model_documents WHERE projection = $1 AND generation = $2 AND doc_key = ANY($3)",
            )
            .bind(projection)
            .bind(generation)
            .bind(rewritten.iter().map(String::as_str).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
            if !again.is_empty() {
                // A `COPY`'s data may be cut anywhere between messages.
                copy_rows(&mut tx, futures_util::stream::iter(again.chunks(COPY_CHUNK))).await?;
            }
        }
        sqlx::query(MARK_WRITTEN).bind(projection).bind(through).bind(generation).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Written { digest, documents })
    }
}

type Copying = tokio::task::JoinHandle<Result<sqlx::Transaction<'static, sqlx::Postgres>, ReadModelError>>;

/// Starts a `COPY` into the documents on a connection and in a transaction of its own:
/// chunks of its rows go to the sender; once the sender is dropped the `COPY` ends and the
/// task returns the transaction, not yet committed.
fn spawn_copy(
    runtime: &tokio::runtime::Handle,
    postgres: sqlx::PgPool,
) -> (tokio::sync::mpsc::Sender<Vec<u8>>, Copying) {
    let (chunks, receiver) = tokio::sync::mpsc::channel::<Vec<u8>>(COPY_CHUNKS_AHEAD);
    let copying = runtime.spawn(async move {
        let mut tx = postgres.begin().await?;
        let received = futures_util::stream::unfold(receiver, |mut r| async { r.recv().await.map(|c| (c, r)) });
        copy_rows(&mut tx, received).await?;
        Ok(tx)
    });
    (chunks, copying)
}

/// One `COPY` of rows in the binary format: its header, the rows' bytes as they come,
/// its trailer.
async fn copy_rows<C: AsRef<[u8]>>(
    tx: &mut sqlx::PgConnection,
    rows: impl futures_util::Stream<Item = C>,
) -> Result<(), ReadModelError> {
    use futures_util::StreamExt;
    let mut copy = tx.copy_in_raw(COPY).await?;
    copy.send(COPY_HEADER).await?;
    let mut rows = std::pin::pin!(rows);
    while let Some(chunk) = rows.next().await {
        copy.send(chunk.as_ref()).await?;
    }
    copy.send(COPY_TRAILER).await?;
    copy.finish().await?;
    Ok(())
}

/// Sends `buffer` (from a blocking thread) once it holds a chunk's worth; `false` when the
/// `COPY` is gone (it failed).
fn send_when_full(buffer: &mut Vec<u8>, chunks: &tokio::sync::mpsc::Sender<Vec<u8>>) -> bool {
    if buffer.len() < COPY_CHUNK {
        return true;
    }
    let full = std::mem::replace(buffer, Vec::with_capacity(COPY_CHUNK + 64 * 1024));
    chunks.blocking_send(full).is_ok()
}

/// The projection and generation fields: how each of a generation's `COPY` rows starts,
/// after its field count.
fn row_prefix(projection: &str, generation: i64) -> Vec<u8> {
    let mut prefix = 4i16.to_be_bytes().to_vec();
    push_copy_field(&mut prefix, projection.as_bytes());
    push_copy_field(&mut prefix, &generation.to_be_bytes());
    prefix
}

/// One row of `COPY`'s binary format: the prefix's fields, then the key and the document.
fn push_copy_row(out: &mut Vec<u8>, prefix: &[u8], key: &str, text: &str) {
    out.extend_from_slice(prefix);
    push_copy_field(out, key.as_bytes());
    push_copy_field(out, text.as_bytes());
}

/// A field: its length (a 32-bit big-endian count of bytes), then its bytes as they are —
/// text in the connection's encoding (UTF-8), an integer big-endian.
fn push_copy_field(out: &mut Vec<u8>, bytes: &[u8]) {
    // PostgreSQL refuses a field over 1 GiB itself; one over 2 GiB cannot be framed.
    let len = i32::try_from(bytes.len()).expect("a field PostgreSQL can hold (at most 1 GiB)");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use finops_eventlog::{AllRead, ExpectedVersion, NewEvent, Position, RecordedEvent, StreamId};
    use serde_json::json;

    use super::{COPY_HEADER, COPY_TRAILER, Copier, Folded, GenerationFold, push_copy_row, row_prefix};
    use crate::{Document, Projector, ReadModels};

    /// Counts each stream's events; a `Removed` event removes its document.
    struct Counter;

    impl Projector for Counter {
        fn name(&self) -> &'static str {
            "counter"
        }
        fn keys(&self, event: &RecordedEvent) -> Vec<String> {
            vec![event.stream_id.to_string()]
        }
        fn apply(&self, event: &RecordedEvent, _: &str, current: Option<Document>) -> Option<Document> {
            if event.event_type == "Removed" {
                return None;
            }
            let mut doc = current.unwrap_or_default();
            doc.set("events", doc.get::<u64>("events").unwrap_or(0) + 1);
            doc.set("last", event.payload["note"].clone());
            Some(doc)
        }
    }

    fn touched(note: &str) -> NewEvent {
        NewEvent::new("Touched", json!({ "note": note }))
    }

    /// A generation written while it is folded holds exactly what a fold of the whole log
    /// makes: documents set aside and written early, then touched again or removed by a
    /// later page, are replaced or deleted at the end, and the digest is the documents'.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn documents_written_during_the_fold_and_touched_again_end_as_a_whole_fold_leaves_them() {
        let Some(url) = finops_testkit::fresh_postgres_url().await else { return };
        let store = finops_eventlog::open(&url, finops_eventlog::Upcasters::new()).await.unwrap();
        let stream = |i: usize| StreamId::new(format!("s-{i:03}")).unwrap();
        // Page 1: forty streams begin. Page 2: ten more. Page 3 (after the first forty are
        // set aside and written): one of them touched, one removed, one removed then made
        // anew, and a new one.
        for i in 0..50 {
            store.append(&stream(i), ExpectedVersion::NoStream, vec![touched("first")]).await.unwrap();
        }
        store.append(&stream(1), ExpectedVersion::Exact(1), vec![touched("again")]).await.unwrap();
        store.append(&stream(2), ExpectedVersion::Exact(1), vec![NewEvent::new("Removed", json!({}))]).await.unwrap();
        store
            .append(&stream(3), ExpectedVersion::Exact(1), vec![NewEvent::new("Removed", json!({})), touched("anew")])
            .await
            .unwrap();
        store.append(&stream(99), ExpectedVersion::NoStream, vec![touched("late")]).await.unwrap();
        store.seal_committed().await.unwrap();
        let events = store.read_all(AllRead::forwards_after(Position::START, 1_000)).await.unwrap();
        let pages: Vec<Vec<RecordedEvent>> =
            vec![events[..40].to_vec(), events[40..50].to_vec(), events[50..].to_vec()];

        let mut whole = BTreeMap::new();
        for event in &events {
            let key = event.stream_id.to_string();
            let current = whole.remove(&key);
            if let Some(doc) = Counter.apply(event, &key, current) {
                whole.insert(key, doc);
            }
        }

        let models = ReadModels::open(&url).await.unwrap();
        let (active, _) = models.register("counter").await.unwrap();
        let generation = active + 1;
        models.start_generation("counter", generation).await.unwrap();
        let copier = Copier {
            postgres: models.postgres.clone().expect("PostgreSQL"),
            runtime: tokio::runtime::Handle::current(),
            slots: Arc::new(AtomicUsize::new(1)),
        };
        let (folded, early, rewritten) = tokio::task::spawn_blocking(move || {
            let mut fold = GenerationFold::new(Arc::new(Counter), generation, Some(copier));
            fold.cold_after_pages = 1;
            fold.early_copy_after = 1;
            for page in &pages {
                fold.fold_page(page);
            }
            let (early, rewritten) = (fold.early.is_some(), fold.rewritten.clone());
            (fold.finish(), early, rewritten)
        })
        .await
        .unwrap();
        assert!(early, "the fold wrote during the fold");
        let rewritten: Vec<String> = rewritten.into_iter().collect();
        assert_eq!(rewritten, ["s-001", "s-002", "s-003"], "set aside, then touched again");
        assert_eq!(folded.documents(), whole.len());

        let written = models.write_generation("counter", generation, folded, 0).await.unwrap();
        let pool = models.postgres.clone().unwrap();
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT doc_key, doc FROM read_model_documents WHERE projection = 'counter' AND generation = $1",
        )
        .bind(generation)
        .fetch_all(&pool)
        .await
        .unwrap();
        let stored: BTreeMap<String, String> = rows.into_iter().collect();
        let expected: BTreeMap<String, String> = whole.iter().map(|(k, d)| (k.clone(), d.text())).collect();
        assert_eq!(stored, expected);
        assert!(!stored.contains_key("s-002") && stored["s-001"].contains("again") && stored["s-003"].contains("anew"));
        assert_eq!(written.documents, whole.len());
        assert_eq!(
            written.digest,
            crate::store::digest_of(expected.iter().map(|(k, d)| (k.as_str(), d.as_str()))),
            "the digest of the documents written"
        );

        // The same documents written with nothing set aside.
        let again = Folded::all_in_memory(whole);
        models.start_generation("counter", generation + 1).await.unwrap();
        let all_at_once = models.write_generation("counter", generation + 1, again, 0).await.unwrap();
        assert_eq!(all_at_once.digest, written.digest);
    }

    /// Reads `COPY`'s binary format back as PostgreSQL's documentation defines it: the
    /// header, rows of length-prefixed fields, the trailer.
    fn read_copy(data: &[u8]) -> Vec<(String, i64, String, String)> {
        let (header, mut rest) = data.split_at(19);
        assert_eq!(&header[..11], b"PGCOPY\n\xff\r\n\0", "the signature");
        assert_eq!(&header[11..], [0; 8], "no flags, no header extension");
        let mut take = |n: usize| {
            let (head, tail) = rest.split_at(n);
            rest = tail;
            head.to_vec()
        };
        let mut rows = Vec::new();
        loop {
            let count = i16::from_be_bytes(take(2).try_into().unwrap());
            if count == -1 {
                break;
            }
            assert_eq!(count, 4);
            let mut field = || {
                let len = i32::from_be_bytes(take(4).try_into().unwrap());
                take(len as usize)
            };
            let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
            let (projection, generation) = (text(field()), i64::from_be_bytes(field().try_into().unwrap()));
            rows.push((projection, generation, text(field()), text(field())));
        }
        assert!(rest.is_empty(), "nothing after the trailer");
        rows
    }

    proptest::proptest! {
        /// Whatever a key or a document holds — tabs, newlines, backslashes, any character —
        /// `COPY` reads back exactly that text in its row, the rows in order.
        #[test]
        fn copy_rows_read_back_as_written(
            rows in proptest::collection::vec(("(\\PC|[\\\\\t\n\r])*", "(\\PC|[\\\\\t\n\r])*"), 0..8),
            generation in proptest::num::i64::ANY,
        ) {
            let prefix = row_prefix("task_queue", generation);
            let mut data = COPY_HEADER.to_vec();
            for (key, text) in &rows {
                push_copy_row(&mut data, &prefix, key, text);
            }
            data.extend_from_slice(COPY_TRAILER);
            let expected: Vec<_> =
                rows.iter().map(|(k, t)| ("task_queue".to_owned(), generation, k.clone(), t.clone())).collect();
            proptest::prop_assert_eq!(read_copy(&data), expected);
        }
    }

    /// PostgreSQL reads the rows as they were meant: keys and documents holding what the
    /// text format had to escape (and what it did not) come back byte for byte.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_stores_the_copied_rows_byte_for_byte() {
        let Some(url) = finops_testkit::fresh_postgres_url().await else { return };
        let models = ReadModels::open(&url).await.unwrap();
        let awkward = ["a\tb", "line\nbreak", "back\\slash", "cr\r", "né ü € 漢字 🦀", "\\N", "plain"];
        let docs: BTreeMap<String, Document> = awkward
            .iter()
            .map(|k| (k.to_string(), Document::from(json!({ "note": format!("{k} \"quoted\" \\ {k}") }))))
            .collect();
        let expected: BTreeMap<String, String> = docs.iter().map(|(k, d)| (k.clone(), d.text())).collect();
        let (active, _) = models.register("counter").await.unwrap();
        models.start_generation("counter", active + 1).await.unwrap();
        let written = models.write_generation("counter", active + 1, Folded::all_in_memory(docs), 0).await.unwrap();
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT doc_key, doc FROM read_model_documents WHERE projection = 'counter' AND generation = $1",
        )
        .bind(active + 1)
        .fetch_all(&models.postgres.clone().unwrap())
        .await
        .unwrap();
        assert_eq!(rows.into_iter().collect::<BTreeMap<_, _>>(), expected);
        assert_eq!(written.documents, awkward.len());
        // PostgreSQL hashes each stored document to the bytes the fold hashed.
        models.swap_in(&[("counter", active + 1, 1)]).await.unwrap();
        assert_eq!(models.digest("counter").await.unwrap(), written.digest, "the live digest of what was written");
    }
}
