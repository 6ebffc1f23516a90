//! `finops.v1.CurIngestService` (issue 15.4): an Operator ingests a CUR delivery through
//! the server — an `s3://` export prefix, or a path under the configured
//! `cur_ingest_root` — and watches its progress as a server stream. Thin: the Operator's
//! role, the source checked, then `finops_ingest::Ingestor::ingest`, the same call as
//! `finops cur ingest`, run off the async workers (it reads and writes for seconds).

use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use finops_eventlog::EventStore;
use finops_ingest::{Format, IngestReport, Ingestor, Progress};
use finops_proto::v1 as pb;
use finops_proto::v1::cur_ingest_service_server::CurIngestService;
use object_store::ObjectStore;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::auth::{Authenticator, Role};
use crate::wire::Fields;

/// Progress messages at most this often (a large month reports every 64 K rows).
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// The service.
pub struct CurIngestApi {
    store: Arc<dyn EventStore>,
    objects: Arc<dyn ObjectStore>,
    /// Local sources must lie under it; `None`: only `s3://` sources.
    root: Option<PathBuf>,
    auth: Arc<Authenticator>,
}

impl CurIngestApi {
    /// Ingests into `store` and `objects`, local sources from under `root`.
    pub fn new(
        store: Arc<dyn EventStore>,
        objects: Arc<dyn ObjectStore>,
        root: Option<PathBuf>,
        auth: Arc<Authenticator>,
    ) -> Self {
        Self { store, objects, root, auth }
    }
}

/// Where a request's source is.
enum Source {
    S3(String),
    Local(PathBuf),
}

/// A local source: relative, inside `root`, never climbing out of it.
fn local_source(root: Option<&Path>, source: &str) -> Result<PathBuf, Status> {
    let Some(root) = root else {
        return Err(Status::failed_precondition(format!(
            "`{source}` is a server path, and this server reads none: set `cur_ingest_root` in its configuration, or give an s3:// prefix"
        )));
    };
    let path = Path::new(source);
    if path.is_absolute() || path.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
        let mut fields = Fields::default();
        fields.add("source", format!("`{source}` must be relative to the server's cur_ingest_root, without `..`"));
        fields.finish()?;
    }
    Ok(root.join(path))
}

fn batch_message(delivery: &str, report: &IngestReport) -> pb::IngestedBatch {
    let b = &report.batch;
    pb::IngestedBatch {
        delivery: delivery.to_owned(),
        period: b.period.clone(),
        hash: b.hash.clone(),
        rows: b.rows,
        bytes: b.bytes,
        caller_identity: b.caller_identity,
        superseded: report.superseded.clone().unwrap_or_default(),
        already_current: report.already_current,
        sources: report
            .sources
            .iter()
            .map(|t| pb::AiSourceTotal {
                source: t.source.as_str().to_owned(),
                lines: t.lines,
                cents: finops_ingest::cents(t.cost),
            })
            .collect(),
    }
}

fn progress_message(delivery: &str, p: &Progress, seconds: f64) -> pb::IngestProgress {
    let rate = p.rows as f64 / seconds.max(1e-9);
    let left = if p.bytes == 0 { 0.0 } else { p.total_bytes.saturating_sub(p.bytes) as f64 * seconds / p.bytes as f64 };
    pb::IngestProgress {
        delivery: delivery.to_owned(),
        file: p.file.clone(),
        rows: p.rows,
        bytes: p.bytes,
        total_bytes: p.total_bytes,
        rows_per_second: rate,
        seconds_left: left,
    }
}

type Messages = Pin<Box<dyn Stream<Item = Result<pb::IngestCurResponse, Status>> + Send>>;

#[tonic::async_trait]
impl CurIngestService for CurIngestApi {
    type IngestCurStream = Messages;

    #[tracing::instrument(skip_all)]
    async fn ingest_cur(&self, request: Request<pb::IngestCurRequest>) -> Result<Response<Messages>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(&[Role::Operator], "ingest CUR deliveries")?;
        let body = request.into_inner();
        let mut fields = Fields::default();
        let format = match body.format.trim() {
            "" | "cur" => Some(Format::Cur),
            "focus" => Some(Format::Focus),
            other => {
                fields.add("format", format!("`{other}` is not a format: use cur or focus"));
                None
            }
        };
        let source = body.source.trim().to_owned();
        if source.is_empty() {
            fields.add("source", "is empty: give an s3:// prefix or a path under the server's cur_ingest_root");
        }
        fields.finish()?;
        let format = format.expect("checked");
        let source = if source.starts_with("s3://") {
            Source::S3(source)
        } else {
            let path = local_source(self.root.as_deref(), &source)?;
            if !path.exists() {
                return Err(crate::status::not_found(format!("`{source}` under the server's cur_ingest_root")));
            }
            Source::Local(path)
        };
        let ingestor = Ingestor::new(self.store.clone(), self.objects.clone());
        let (sender, receiver) = tokio::sync::mpsc::channel(16);
        let runtime = tokio::runtime::Handle::current();
        // Ingest reads and writes for seconds at a time: on a thread of its own, not on
        // the workers that answer every other call.
        tokio::task::spawn_blocking(move || {
            let outcome = runtime.block_on(async {
                let _fetched;
                let path = match source {
                    Source::S3(url) => {
                        let dir = finops_ingest::scratch::Scratch::new("fetch");
                        finops_ingest::fetch(&url, &dir.0).await.map_err(crate::status::from_ingest)?;
                        let path = dir.0.clone();
                        _fetched = dir;
                        path
                    }
                    Source::Local(path) => path,
                };
                let deliveries = finops_ingest::discover(&path).map_err(crate::status::from_ingest)?;
                for delivery in &deliveries {
                    let context = principal.context("", uuid::Uuid::now_v7(), None);
                    let started = Instant::now();
                    let mut last = None::<Instant>;
                    let name = delivery.source.clone();
                    let mut progress = |p: &Progress| {
                        if last.is_some_and(|at| at.elapsed() < PROGRESS_EVERY) {
                            return;
                        }
                        last = Some(Instant::now());
                        let message = progress_message(&name, p, started.elapsed().as_secs_f64());
                        let item = pb::ingest_cur_response::Item::Progress(message);
                        // Progress may be dropped when the client reads slowly; reports never.
                        let _ = sender.try_send(Ok(pb::IngestCurResponse { item: Some(item) }));
                    };
                    let report = ingestor
                        .ingest(delivery, format, &context, &mut progress)
                        .await
                        .map_err(crate::status::from_ingest)?;
                    let item = pb::ingest_cur_response::Item::Batch(batch_message(&delivery.source, &report));
                    if sender.send(Ok(pb::IngestCurResponse { item: Some(item) })).await.is_err() {
                        // The client went away; what is recorded stays recorded.
                        break;
                    }
                }
                Ok::<(), Status>(())
            });
            if let Err(status) = outcome {
                let _ = sender.blocking_send(Err(status));
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_sources_stay_under_the_root() {
        let root = Path::new("/srv/cur");
        assert_eq!(local_source(Some(root), "exports/cur2").unwrap(), root.join("exports/cur2"));
        for escape in ["../etc/passwd", "/etc/passwd", "exports/../../x"] {
            let err = local_source(Some(root), escape).unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument, "{escape}");
        }
        let err = local_source(None, "exports").unwrap_err();
        assert_eq!(err.code(), tonic::Code::FailedPrecondition);
        assert!(err.message().contains("cur_ingest_root"), "{}", err.message());
    }
}
