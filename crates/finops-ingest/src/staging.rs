//! The delivered bytes stored while they are read. A delivery's name in object storage is
//! its content (`cur/{period}/{sha256}…`), known only once every byte has been read; so each
//! part streams, as the pass hashes it, to a temporary object under `cur/incoming/`, and is
//! renamed to its name when the pass has accepted the whole delivery. A refused delivery's
//! temporary objects are deleted; those of a process killed midway are swept by a later
//! ingest once they are a day old (an ingest still running on another machine is younger).

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use crate::IngestError;

/// Where parts being read are stored until their name is known.
pub const INCOMING: &str = "cur/incoming";

/// How old a temporary object must be before a sweep deletes it.
pub const STALE_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// Multipart parts uploading at once (each up to 5 MB): bounds memory while storing.
const UPLOAD_PARTS_IN_FLIGHT: usize = 4;

/// The parts of one delivery being stored under temporary names.
pub(crate) struct Incoming {
    objects: Arc<dyn ObjectStore>,
    prefix: String,
    /// The part being written, by index.
    writing: Option<(usize, WriteMultipart)>,
    /// The parts completely stored, in delivery order.
    stored: Vec<ObjectPath>,
}

impl Incoming {
    pub(crate) fn new(objects: Arc<dyn ObjectStore>) -> Self {
        Self { objects, prefix: format!("{INCOMING}/{}", uuid::Uuid::now_v7()), writing: None, stored: Vec::new() }
    }

    fn location(&self, part: usize) -> ObjectPath {
        ObjectPath::from(format!("{}/{part}", self.prefix))
    }

    /// Stores the next bytes of `part`.
    pub(crate) async fn write(&mut self, part: usize, chunk: Bytes) -> Result<(), object_store::Error> {
        if self.writing.as_ref().is_none_or(|(p, _)| *p != part) {
            let upload = self.objects.put_multipart(&self.location(part)).await?;
            self.writing = Some((part, WriteMultipart::new(upload)));
        }
        let (_, writer) = self.writing.as_mut().expect("started above");
        writer.put(chunk);
        // Parts upload in the background; without this wait they pile up in memory
        // (measured: 1.7 GiB resident for a 3.3 GB delivery).
        writer.wait_for_capacity(UPLOAD_PARTS_IN_FLIGHT).await
    }

    /// Completes `part` (an empty part is stored empty).
    pub(crate) async fn end_part(&mut self, part: usize) -> Result<(), object_store::Error> {
        let location = self.location(part);
        match self.writing.take() {
            Some((p, writer)) if p == part => {
                writer.finish().await?;
            }
            other => {
                self.writing = other;
                self.objects.put(&location, PutPayload::from(Bytes::new())).await?;
            }
        }
        self.stored.push(location);
        Ok(())
    }

    /// Deletes everything stored so far (the delivery was refused, or storing failed).
    pub(crate) async fn discard(mut self) {
        if let Some((_, writer)) = self.writing.take() {
            let _ = writer.abort().await;
        }
        for location in &self.stored {
            let _ = self.objects.delete(location).await;
        }
    }

    /// Gives every stored part its name: `names[i]` for part `i`, whose local copy is
    /// `files[i]`. A name already present (the same bytes delivered before) is left as it
    /// is. Where the store cannot rename (S3 copies objects of at most 5 GB at once), the
    /// part is uploaded again from its file.
    pub(crate) async fn settle(self, names: &[ObjectPath], files: &[std::path::PathBuf]) -> Result<(), IngestError> {
        assert_eq!(self.stored.len(), names.len(), "every part was stored");
        for ((temporary, name), file) in self.stored.iter().zip(names).zip(files) {
            if self.objects.head(name).await.is_ok() {
                self.objects.delete(temporary).await?;
            } else if let Err(e) = self.objects.rename(temporary, name).await {
                tracing::warn!(%temporary, %name, error = %e, "cannot rename; uploading the part again");
                upload(self.objects.as_ref(), file, name).await?;
                self.objects.delete(temporary).await?;
            }
        }
        Ok(())
    }
}

/// Deletes temporary objects last modified before `before` (left by processes that died
/// while reading); returns how many.
pub async fn sweep_incoming(objects: &dyn ObjectStore, before: DateTime<Utc>) -> Result<usize, object_store::Error> {
    let prefix = ObjectPath::from(INCOMING);
    let mut listed = objects.list(Some(&prefix));
    let mut stale = Vec::new();
    while let Some(meta) = listed.next().await {
        let meta = meta?;
        if meta.last_modified < before {
            stale.push(meta.location);
        }
    }
    for location in &stale {
        objects.delete(location).await?;
    }
    Ok(stale.len())
}

/// Copies a local file to `location` unless it is there already (names are content),
/// streamed in parts.
pub(crate) async fn upload(objects: &dyn ObjectStore, path: &Path, location: &ObjectPath) -> Result<(), IngestError> {
    if objects.head(location).await.is_ok() {
        return Ok(());
    }
    let io = |e: std::io::Error| IngestError::Io { file: path.display().to_string(), reason: e.to_string() };
    let upload = objects.put_multipart(location).await?;
    let mut writer = WriteMultipart::new(upload);
    let mut file = File::open(path).map_err(io)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        writer.write(&buf[..n]);
        writer.wait_for_capacity(UPLOAD_PARTS_IN_FLIGHT).await?;
    }
    writer.finish().await?;
    Ok(())
}
