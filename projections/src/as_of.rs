//! Read models as the log stood at an instant (issue 14 item 3, DOMAIN.md §13): the same
//! projectors fold the events recorded at or before the instant in memory, and the result
//! answers `get`, `list` (same key order, same page tokens) and `digest` exactly as a live
//! read model built from that prefix of the log would. [`ReadModelView`] lets a List or Get
//! serve either without knowing which.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use finops_eventlog::{AllRead, EventStore, Position};
use serde_json::Value;

use crate::store::{Page, ReadModelError, ReadModels, digest_of};
use crate::{Document, Projector};

/// Events read per page of the fold.
const PAGE: usize = 5_000;

/// Read models folded from the events recorded at or before an instant.
#[derive(Debug, Clone)]
pub struct ReadModelsAsOf {
    instant: DateTime<Utc>,
    through: u64,
    models: BTreeMap<&'static str, BTreeMap<String, Document>>,
}

impl ReadModelsAsOf {
    /// Folds every event of `store` recorded at or before `instant` through `projectors`.
    pub async fn fold(
        store: &dyn EventStore,
        projectors: &[Arc<dyn Projector>],
        instant: DateTime<Utc>,
    ) -> Result<Self, ReadModelError> {
        // Events committed but not yet sealed belong to the instant they were recorded at.
        store.seal_committed().await?;
        let mut models: BTreeMap<&'static str, BTreeMap<String, Document>> =
            projectors.iter().map(|p| (p.name(), BTreeMap::new())).collect();
        let mut after = Position::START;
        let mut through = 0;
        loop {
            let page = store.read_all(AllRead::forwards_after(after, PAGE)).await?;
            let Some(last) = page.last().and_then(|e| e.position) else { break };
            after = last;
            for event in page.iter().filter(|e| e.metadata.recorded_at <= instant) {
                through = event.position.map_or(through, |p| p.0);
                for projector in projectors {
                    let docs = models.get_mut(projector.name()).expect("one map per projector");
                    crate::fold(projector.as_ref(), event, docs);
                }
            }
            if page.len() < PAGE {
                break;
            }
        }
        Ok(Self { instant, through, models })
    }

    /// The instant answered.
    pub fn instant(&self) -> DateTime<Utc> {
        self.instant
    }

    /// The position of the last event folded (0: none).
    pub fn through(&self) -> u64 {
        self.through
    }

    fn documents(&self, projection: &str) -> Result<&BTreeMap<String, Document>, ReadModelError> {
        self.models.get(projection).ok_or_else(|| ReadModelError::UnknownProjection(projection.to_owned()))
    }

    /// One document, as [`ReadModels::get`].
    pub fn get(&self, projection: &str, key: &str) -> Result<Option<Value>, ReadModelError> {
        Ok(self.documents(projection)?.get(key).map(Document::to_value))
    }

    /// A page in key order keeping what `keep` accepts, as [`ReadModels::list`] (the same
    /// page tokens).
    pub fn list(
        &self,
        projection: &str,
        page_size: usize,
        page_token: &str,
        keep: impl Fn(&Value) -> bool,
    ) -> Result<Page, ReadModelError> {
        let after = crate::store::page_after(page_token)?;
        let page_size = page_size.clamp(1, 1_000);
        let docs = self.documents(projection)?;
        let mut documents = Vec::new();
        let mut last = "";
        let range = docs.range::<str, _>((std::ops::Bound::Excluded(after.as_str()), std::ops::Bound::Unbounded));
        for (key, doc) in range.map(|(key, doc)| (key, doc.to_value())).filter(|(_, doc)| keep(doc)) {
            if documents.len() == page_size {
                // Another kept document follows: the next page starts after the last one here.
                return Ok(Page { documents, next_page_token: hex::encode(last.as_bytes()) });
            }
            documents.push(doc);
            last = key;
        }
        Ok(Page { documents, next_page_token: String::new() })
    }

    /// The digest [`ReadModels::digest`] gives a read model holding these documents.
    pub fn digest(&self, projection: &str) -> Result<String, ReadModelError> {
        let docs = self.documents(projection)?;
        let texts: Vec<(&str, String)> = docs.iter().map(|(k, v)| (k.as_str(), v.text())).collect();
        Ok(digest_of(texts.iter().map(|(k, d)| (*k, d.as_str()))))
    }

    /// Every document of `projection`, in key order.
    pub fn all(&self, projection: &str) -> Result<&BTreeMap<String, Document>, ReadModelError> {
        self.documents(projection)
    }
}

/// Where a List or Get reads: the live read model, or one folded as of an instant.
#[derive(Debug, Clone)]
pub enum ReadModelView {
    /// Now.
    Live(ReadModels),
    /// As the log stood at an instant.
    AsOf(Arc<ReadModelsAsOf>),
}

impl ReadModelView {
    /// `projector`'s read model now (`as_of` `None`) or folded as of the instant.
    pub async fn of(
        live: &ReadModels,
        store: &dyn EventStore,
        projector: Arc<dyn Projector>,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Self, ReadModelError> {
        Ok(match as_of {
            None => Self::Live(live.clone()),
            Some(t) => Self::AsOf(Arc::new(ReadModelsAsOf::fold(store, &[projector], t).await?)),
        })
    }

    /// One document.
    pub async fn get(&self, projection: &str, key: &str) -> Result<Option<Value>, ReadModelError> {
        match self {
            Self::Live(models) => models.get(projection, key).await,
            Self::AsOf(models) => models.get(projection, key),
        }
    }

    /// A page in key order keeping what `keep` accepts.
    pub async fn list(
        &self,
        projection: &str,
        page_size: usize,
        page_token: &str,
        keep: impl Fn(&Value) -> bool,
    ) -> Result<Page, ReadModelError> {
        match self {
            Self::Live(models) => models.list(projection, page_size, page_token, keep).await,
            Self::AsOf(models) => models.list(projection, page_size, page_token, keep),
        }
    }
}
