//! Where CUR batches live: a local folder by default, or any object_store URL —
//! `file:///abs/path`, or `s3://bucket/prefix` configured the standard AWS way
//! (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//! `AWS_ENDPOINT` for S3-compatible stores…).

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;

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
        return Ok(if prefix.is_empty() { Arc::new(s3) } else { Arc::new(PrefixStore::new(s3, prefix)) });
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
