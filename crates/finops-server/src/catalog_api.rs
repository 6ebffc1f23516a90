//! `finops.v1.CatalogService`: the FinOps Lead runs the model catalog; everyone signed in
//! may read it.

use std::sync::Arc;

use chrono::Utc;
use finops_domain::catalog::{CatalogCommand, CatalogEntry, ModelStatus};
use finops_domain::vocabulary::{ModelId, Platform};
use finops_eventlog::EventStore;
use finops_governance::{CommandContext, CommandHandler, Loaded, streams};
use finops_projections::{CatalogView, ReadModels};
use finops_proto::v1 as pb;
use finops_proto::v1::catalog_service_server::CatalogService;
use tonic::{Request, Response, Status};

use crate::auth::{Authenticator, Role};
use crate::status::{from_governance, not_found};
use crate::wire::{self, Fields};

/// Serves the catalog from the event log.
#[derive(Clone)]
pub struct CatalogApi {
    models: CommandHandler<CatalogEntry>,
    store: Arc<dyn EventStore>,
    auth: Arc<Authenticator>,
    read_models: ReadModels,
}

impl CatalogApi {
    /// Serves `store`.
    pub fn new(store: Arc<dyn EventStore>, read_models: ReadModels, auth: Arc<Authenticator>) -> Self {
        Self { models: CommandHandler::new(store.clone()), store, auth, read_models }
    }

    /// Decides `command` on the model's entry and answers with the entry after it.
    async fn decide(
        &self,
        platform: Platform,
        model: &ModelId,
        command: &CatalogCommand,
        context: &CommandContext,
    ) -> Result<Response<pb::CatalogModel>, Status> {
        let stream = streams::catalog_model(platform, model.as_str());
        let loaded = self.models.execute(&stream, command, context).await.map_err(from_governance)?;
        Ok(Self::reply(platform, model, &loaded))
    }

    fn reply(platform: Platform, model: &ModelId, loaded: &Loaded<CatalogEntry>) -> Response<pb::CatalogModel> {
        Response::new(pb::CatalogModel {
            name: format!("catalogModels/{}/{model}", platform.as_str()),
            platform: wire::platform_to_wire(platform) as i32,
            model_id: model.to_string(),
            status: (match loaded.state.status {
                ModelStatus::Unlisted => pb::ModelStatus::Unspecified,
                ModelStatus::PendingReview => pb::ModelStatus::PendingReview,
                ModelStatus::Approved => pb::ModelStatus::Approved,
                ModelStatus::Revoked => pb::ModelStatus::Revoked,
            }) as i32,
            scope: Some(wire::scope_to_wire(&loaded.state.scope)),
            version: loaded.version,
        })
    }
}

fn model_key(fields: &mut Fields, platform: i32, model_id: &str) -> Option<(Platform, ModelId)> {
    let platform = wire::platform(fields, "platform", platform);
    let model = fields.check("model_id", ModelId::parse(model_id));
    Some((platform?, model?))
}

#[tonic::async_trait]
impl CatalogService for CatalogApi {
    #[tracing::instrument(skip_all)]
    async fn approve_model(
        &self,
        request: Request<pb::ApproveModelRequest>,
    ) -> Result<Response<pb::CatalogModel>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(&[Role::FinopsLead], "approve catalog models")?;
        let body = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&body);
        let mut fields = Fields::default();
        let key = model_key(&mut fields, body.platform, &body.model_id);
        let scope = wire::scope(&mut fields, "scope", body.scope.as_ref());
        if body.scope.is_some() {
            fields.domain("", finops_domain::catalog::scope_violations(&scope));
        }
        fields.domain("", finops_domain::rationale_violations(&body.rationale));
        let request_id = wire::request_id(&mut fields, &body.request_id);
        fields.finish()?;
        let (platform, model) = key.expect("checked");
        let context = principal.context(&fingerprint, request_id, Some(body.rationale.clone()));
        let list = CatalogCommand::ListForReview {
            platform,
            model_id: model.clone(),
            by: principal.subject.clone(),
            at: Utc::now(),
        };
        let approve =
            CatalogCommand::Approve { scope, by: principal.subject.clone(), rationale: body.rationale, at: Utc::now() };
        // Listing and approving are decided together: a refused approval lists nothing.
        let stream = streams::catalog_model(platform, model.as_str());
        let loaded = self.models.execute_all(&stream, &[list, approve], &context).await.map_err(from_governance)?;
        Ok(Self::reply(platform, &model, &loaded))
    }

    #[tracing::instrument(skip_all)]
    async fn add_model_scope(
        &self,
        request: Request<pb::AddModelScopeRequest>,
    ) -> Result<Response<pb::CatalogModel>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(&[Role::FinopsLead], "change catalog scopes")?;
        let body = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&body);
        let mut fields = Fields::default();
        let key = model_key(&mut fields, body.platform, &body.model_id);
        let scope = wire::scope(&mut fields, "scope", body.scope.as_ref());
        fields.domain("", finops_domain::rationale_violations(&body.rationale));
        let request_id = wire::request_id(&mut fields, &body.request_id);
        fields.finish()?;
        let (platform, model) = key.expect("checked");
        let command = CatalogCommand::AddScope {
            scope,
            by: principal.subject.clone(),
            rationale: body.rationale.clone(),
            at: Utc::now(),
        };
        let context = principal.context(&fingerprint, request_id, Some(body.rationale.clone()));
        self.decide(platform, &model, &command, &context).await
    }

    #[tracing::instrument(skip_all)]
    async fn revoke_model(
        &self,
        request: Request<pb::RevokeModelRequest>,
    ) -> Result<Response<pb::CatalogModel>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(&[Role::FinopsLead], "revoke catalog models")?;
        let body = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&body);
        let mut fields = Fields::default();
        let key = model_key(&mut fields, body.platform, &body.model_id);
        fields.domain("", finops_domain::rationale_violations(&body.rationale));
        let request_id = wire::request_id(&mut fields, &body.request_id);
        fields.finish()?;
        let (platform, model) = key.expect("checked");
        let command =
            CatalogCommand::Revoke { by: principal.subject.clone(), rationale: body.rationale.clone(), at: Utc::now() };
        let context = principal.context(&fingerprint, request_id, Some(body.rationale.clone()));
        self.decide(platform, &model, &command, &context).await
    }

    #[tracing::instrument(skip_all)]
    async fn get_model(&self, request: Request<pb::GetModelRequest>) -> Result<Response<pb::CatalogModel>, Status> {
        self.auth.principal(&request)?;
        let body = request.into_inner();
        let mut fields = Fields::default();
        let key = model_key(&mut fields, body.platform, &body.model_id);
        let as_of = wire::as_of(&mut fields, &body.as_of);
        fields.finish()?;
        let (platform, model) = key.expect("checked");
        let loaded = self
            .models
            .load_as_of(&streams::catalog_model(platform, model.as_str()), as_of)
            .await
            .map_err(from_governance)?;
        if loaded.state.status == ModelStatus::Unlisted {
            return Err(not_found(format!("catalogModels/{}/{model}", platform.as_str())));
        }
        Ok(Self::reply(platform, &model, &loaded))
    }

    #[tracing::instrument(skip_all)]
    async fn list_models(
        &self,
        request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
        self.auth.principal(&request)?;
        let body = request.into_inner();
        let mut fields = Fields::default();
        let page_size = wire::page_size(&mut fields, body.page_size);
        let as_of = wire::as_of(&mut fields, &body.as_of);
        fields.finish()?;
        let view = wire::read_model_view(&self.read_models, &self.store, Arc::new(CatalogView), as_of).await?;
        let page = wire::page_result(view.list(CatalogView::NAME, page_size, &body.page_token, |_| true).await)?;
        let models = page
            .documents
            .iter()
            .filter_map(|d| {
                let platform: Platform = serde_json::from_value(d["platform"].clone()).ok()?;
                let model = ModelId::parse(&wire::text(d, "model_id")).ok()?;
                let scope: finops_domain::vocabulary::ApprovalScope =
                    serde_json::from_value(d["scope"].clone()).unwrap_or_default();
                Some(pb::CatalogModel {
                    name: format!("catalogModels/{}/{model}", platform.as_str()),
                    platform: wire::platform_to_wire(platform) as i32,
                    model_id: model.to_string(),
                    status: (match wire::text(d, "status").as_str() {
                        "pending_review" => pb::ModelStatus::PendingReview,
                        "approved" => pb::ModelStatus::Approved,
                        "revoked" => pb::ModelStatus::Revoked,
                        _ => pb::ModelStatus::Unspecified,
                    }) as i32,
                    scope: Some(wire::scope_to_wire(&scope)),
                    version: d["version"].as_u64().unwrap_or(0),
                })
            })
            .collect();
        Ok(Response::new(pb::ListModelsResponse { models, next_page_token: page.next_page_token }))
    }
}
