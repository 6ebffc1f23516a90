//! From what an operator points at to deliveries: one file is one delivery; a folder is
//! searched for data files (`.csv`, `.csv.gz`, `.parquet`), and the parts of an export's
//! `BILLING_PERIOD=YYYY-MM/` partition form one delivery per period. When the export's
//! manifest for that period is there (`…Manifest.json` under `metadata/BILLING_PERIOD=…/`
//! or beside the data), its `dataFiles` (CUR 2.0) or `reportKeys` (legacy CUR) decide which
//! parts belong to the delivery: a listed part that is missing is an error, and a part the
//! manifest does not list (a leftover of an earlier export run) is left out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures_util::TryStreamExt;
use object_store::ObjectStoreExt;

use crate::IngestError;

/// One billing period's files, ingested as one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// What it came from (file, partition folder, or URL).
    pub source: String,
    /// Its data files, in name order.
    pub files: Vec<PathBuf>,
}

impl Delivery {
    /// A one-file delivery.
    pub fn file(path: &Path) -> Self {
        Self { source: path.display().to_string(), files: vec![path.to_owned()] }
    }
}

fn is_data_file(name: &str) -> bool {
    name.ends_with(".csv") || name.ends_with(".csv.gz") || name.ends_with(".parquet")
}

fn is_manifest(name: &str) -> bool {
    name.ends_with("Manifest.json") || name.ends_with("manifest.json")
}

/// The `YYYY-MM` of a `BILLING_PERIOD=YYYY-MM` component of `path`, if any.
fn billing_period(path: &Path) -> Option<String> {
    path.components().find_map(|c| {
        let text = c.as_os_str().to_string_lossy();
        text.strip_prefix("BILLING_PERIOD=").map(str::to_owned)
    })
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), IngestError> {
    let io = |e: std::io::Error| IngestError::Io { file: dir.display().to_string(), reason: e.to_string() };
    let mut entries: Vec<_> = std::fs::read_dir(dir).map_err(io)?.collect::<Result<_, _>>().map_err(io)?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// The data-file names a manifest lists.
fn manifest_parts(manifest: &Path) -> Result<Vec<String>, IngestError> {
    let bad = |reason: String| IngestError::Delivery { path: manifest.display().to_string(), reason };
    let text = std::fs::read_to_string(manifest).map_err(|e| bad(e.to_string()))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let listed = json.get("dataFiles").or_else(|| json.get("reportKeys")).and_then(|v| v.as_array());
    let listed = listed.ok_or_else(|| bad("lists no `dataFiles` (CUR 2.0) or `reportKeys` (legacy CUR)".into()))?;
    listed
        .iter()
        .map(|v| {
            let key = v.as_str().ok_or_else(|| bad(format!("`{v}` is not a file name")))?;
            Ok(key.rsplit('/').next().unwrap_or(key).to_owned())
        })
        .collect()
}

/// The deliveries under `path` (a file or a folder).
pub fn discover(path: &Path) -> Result<Vec<Delivery>, IngestError> {
    if !path.is_dir() {
        if !path.exists() {
            return Err(IngestError::Io { file: path.display().to_string(), reason: "no such file or folder".into() });
        }
        return Ok(vec![Delivery::file(path)]);
    }
    let mut files = vec![];
    walk(path, &mut files)?;
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut periods: BTreeMap<String, (Vec<PathBuf>, Vec<PathBuf>)> = BTreeMap::new();
    let mut loose = vec![];
    for file in files {
        let n = name(&file);
        match billing_period(&file) {
            Some(period) if is_manifest(&n) => periods.entry(period).or_default().1.push(file),
            Some(period) if is_data_file(&n) => periods.entry(period).or_default().0.push(file),
            None if is_data_file(&n) => loose.push(file),
            _ => {}
        }
    }
    let mut deliveries: Vec<Delivery> = loose.iter().map(|f| Delivery::file(f)).collect();
    for (period, (mut data, manifests)) in periods {
        let source = format!("{}/BILLING_PERIOD={period}", path.display());
        if let Some(manifest) = manifests.iter().max() {
            let listed = manifest_parts(manifest)?;
            if let Some(missing) = listed.iter().find(|l| !data.iter().any(|d| name(d) == **l)) {
                return Err(IngestError::Delivery {
                    path: manifest.display().to_string(),
                    reason: format!("lists `{missing}`, which is not in the export; the delivery is incomplete"),
                });
            }
            data.retain(|d| listed.contains(&name(d)));
        }
        if data.is_empty() {
            return Err(IngestError::Delivery { path: source, reason: "holds no data files".into() });
        }
        data.sort();
        deliveries.push(Delivery { source, files: data });
    }
    if deliveries.is_empty() {
        return Err(IngestError::Delivery {
            path: path.display().to_string(),
            reason: "holds no .csv, .csv.gz or .parquet files".into(),
        });
    }
    Ok(deliveries)
}

/// Copies everything under an object-store URL prefix (`s3://bucket/prefix`) into `into`,
/// keeping relative paths, so that [`discover`] can read it; returns `into`.
pub async fn fetch(url: &str, into: &Path) -> Result<PathBuf, IngestError> {
    let bad = |reason: String| IngestError::Delivery { path: url.to_owned(), reason };
    let store = crate::objects::open(url).map_err(|e| bad(e.reason))?;
    let objects: Vec<_> = store.list(None).try_collect().await?;
    if objects.is_empty() {
        return Err(bad("no objects under this prefix".into()));
    }
    for meta in objects {
        let target = into.join(meta.location.as_ref());
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| bad(e.to_string()))?;
        }
        // Streamed chunk by chunk: a delivery part can be gigabytes.
        let mut file = std::fs::File::create(&target).map_err(|e| bad(e.to_string()))?;
        let mut chunks = store.get(&meta.location).await?.into_stream();
        while let Some(chunk) = chunks.try_next().await? {
            std::io::Write::write_all(&mut file, &chunk).map_err(|e| bad(e.to_string()))?;
        }
    }
    Ok(into.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn an_export_prefix_becomes_one_delivery_per_period_as_its_manifest_lists() {
        let root = std::env::temp_dir().join(format!("finops-discover-{}", uuid::Uuid::now_v7()));
        let data = root.join("cur2/data");
        touch(&data.join("BILLING_PERIOD=2026-10/cur2-00001.snappy.parquet"), "a");
        touch(&data.join("BILLING_PERIOD=2026-10/cur2-00002.snappy.parquet"), "b");
        touch(&data.join("BILLING_PERIOD=2026-10/cur2-00009.snappy.parquet"), "stale");
        touch(&data.join("BILLING_PERIOD=2026-11/cur2-00001.csv.gz"), "c");
        touch(
            &root.join("cur2/metadata/BILLING_PERIOD=2026-10/cur2-Manifest.json"),
            r#"{"dataFiles":["s3://b/cur2/data/BILLING_PERIOD=2026-10/cur2-00001.snappy.parquet","s3://b/cur2/data/BILLING_PERIOD=2026-10/cur2-00002.snappy.parquet"]}"#,
        );
        let found = discover(&root).unwrap();
        let names: Vec<Vec<String>> = found
            .iter()
            .map(|d| d.files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect())
            .collect();
        assert_eq!(
            names,
            vec![vec!["cur2-00001.snappy.parquet", "cur2-00002.snappy.parquet"], vec!["cur2-00001.csv.gz"]],
            "the stale part is left out; periods in order"
        );
        assert!(found[0].source.ends_with("BILLING_PERIOD=2026-10"));

        std::fs::remove_file(data.join("BILLING_PERIOD=2026-10/cur2-00002.snappy.parquet")).unwrap();
        let err = discover(&root).unwrap_err().to_string();
        assert!(err.contains("cur2-Manifest.json: lists `cur2-00002.snappy.parquet`"), "{err}");
        std::fs::remove_dir_all(&root).unwrap();

        assert!(discover(&root).unwrap_err().to_string().contains("no such file or folder"));
        std::fs::create_dir_all(&root).unwrap();
        assert!(discover(&root).unwrap_err().to_string().contains("holds no .csv"));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
