//! Where CUR batches live: a local folder by default, or any object_store URL —
//! `file:///abs/path`, or `s3://bucket/prefix` configured the standard AWS way
//! (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//! `AWS_ENDPOINT` for S3-compatible stores…).

use std::ops::Range;
use std::sync::Arc;

use futures_util::stream::BoxStream;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

/// An object store that cannot be opened.
#[derive(Debug, thiserror::Error)]
#[error("invalid `objects` = `{spec}`: {reason}")]
pub struct ObjectStoreSpecError {
    /// The spec as given.
    pub spec: String,
    /// What is wrong.
    pub reason: String,
}

/// Opens the object store named by `spec`.
pub fn open(spec: &str) -> Result<Arc<dyn ObjectStore>, ObjectStoreSpecError> {
    let bad = |reason: String| ObjectStoreSpecError { spec: spec.to_owned(), reason };
    if let Some(rest) = spec.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("names no bucket (expected s3://bucket/prefix)".into()));
        }
        let s3 = AmazonS3Builder::from_env().with_bucket_name(bucket).build().map_err(|e| bad(e.to_string()))?;
        let prefix = prefix.trim_matches('/');
        return Ok(if prefix.is_empty() { Arc::new(s3) } else { Arc::new(Prefixed(PrefixStore::new(s3, prefix))) });
    }
    let path = match spec.strip_prefix("file://") {
        Some(path) => path,
        None if spec.contains("://") => {
            return Err(bad("use a local folder, file:///path or s3://bucket/prefix".into()));
        }
        None => spec,
    };
    std::fs::create_dir_all(path).map_err(|e| bad(format!("cannot create the folder: {e}")))?;
    Ok(Arc::new(LocalFileSystem::new_with_prefix(path).map_err(|e| bad(e.to_string()))?))
}

/// A [`PrefixStore`] whose reads report the path they were asked for. object_store 0.13's
/// `PrefixStore::get_opts` (and so `head`) returns the inner, prefixed path
/// (apache/arrow-rs-object-store#664, fixed in 0.14, which DataFusion 55 cannot use); the
/// DataFusion listing then drops the file as outside the table ("No files found"), which
/// `tests/s3_objects.rs` caught against an S3 server.
#[derive(Debug)]
struct Prefixed<T: ObjectStore>(PrefixStore<T>);

impl<T: ObjectStore> std::fmt::Display for Prefixed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[async_trait::async_trait]
impl<T: ObjectStore> ObjectStore for Prefixed<T> {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        self.0.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        self.0.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let mut result = self.0.get_opts(location, options).await?;
        result.meta.location = location.clone();
        Ok(result)
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<bytes::Bytes>> {
        self.0.get_ranges(location, ranges).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        self.0.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.0.list(prefix)
    }

    fn list_with_offset(&self, prefix: Option<&Path>, offset: &Path) -> BoxStream<'static, Result<ObjectMeta>> {
        self.0.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.0.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.0.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.0.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_object_store_urls_are_named() {
        let err = open("gs://bucket").err().unwrap().to_string();
        assert!(err.contains("`objects`") && err.contains("s3://"), "{err}");
        assert!(open("s3:///prefix").err().unwrap().to_string().contains("no bucket"));
        let dir = std::env::temp_dir().join(format!("finops-objects-{}", uuid::Uuid::now_v7()));
        assert!(open(&dir.display().to_string()).is_ok());
        assert!(dir.is_dir());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
