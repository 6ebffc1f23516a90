//! `finops.v1.HistoryService`: the decision trail of one resource (issue 14 item 2). Each
//! resource's visibility is its own API's — the check is asked of that API, never
//! restated here — and the trail is the resource's stream, in words
//! (`finops_projections::history`), as of an instant when asked.

use std::sync::Arc;

use chrono::Utc;
use finops_domain::vocabulary::{ModelId, Platform};
use finops_eventlog::{EventStore, StreamId, StreamRead};
use finops_governance::streams;
use finops_proto::v1 as pb;
use finops_proto::v1::history_service_server::HistoryService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::auth::{Authenticator, Principal};
use crate::business_request_api::BusinessRequestApi;
use crate::gap_api::GapApi;
use crate::spaces_api::SpacesApi;
use crate::spend_card_api::SpendCardApi;
use crate::status::not_found;
use crate::wire::{self, Fields};

/// A resource with a trail.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Resource {
    BusinessRequest(Uuid),
    Task(Uuid),
    CatalogModel(Platform, ModelId),
    Claim(String),
    Workload(Uuid),
    Gap(Uuid),
    GatewayRule(Uuid),
    SpendCard(Uuid),
    SpendRollup(Uuid),
    Organisation,
    RolePatterns,
}

const NAMES: &str = "businessRequests/{uuid}, tasks/{uuid}, catalogModels/{platform}/{model}, claims/{key}, \
                     workloads/{uuid}, gaps/{uuid}, gatewayRules/{uuid}, spendCards/{uuid}, \
                     spendRollups/{uuid}, organisation, rolePatterns";

impl Resource {
    /// Reads a resource name; a fault is recorded on `name`.
    fn parse(fields: &mut Fields, name: &str) -> Option<Self> {
        let name = name.trim();
        let (collection, rest) = name.split_once('/').unwrap_or((name, ""));
        let id = |fields: &mut Fields| wire::uuid(fields, "name", rest);
        match collection {
            "organisation" if rest.is_empty() => Some(Self::Organisation),
            "rolePatterns" if rest.is_empty() => Some(Self::RolePatterns),
            "businessRequests" => id(fields).map(Self::BusinessRequest),
            "tasks" => id(fields).map(Self::Task),
            "workloads" => id(fields).map(Self::Workload),
            "gaps" => id(fields).map(Self::Gap),
            "gatewayRules" => id(fields).map(Self::GatewayRule),
            "spendCards" => id(fields).map(Self::SpendCard),
            "spendRollups" => id(fields).map(Self::SpendRollup),
            "claims" if !rest.is_empty() => match StreamId::new(format!("{}{rest}", streams::CLAIM)) {
                Ok(_) => Some(Self::Claim(rest.to_owned())),
                Err(e) => {
                    fields.add("name", format!("`{name}`: {e}"));
                    None
                }
            },
            "catalogModels" => {
                let (platform_name, model) = rest.split_once('/').unwrap_or((rest, ""));
                let platform = [Platform::AmazonBedrock, Platform::AwsMarketplace, Platform::ClaudePlatform]
                    .into_iter()
                    .find(|p| p.as_str() == platform_name);
                if platform.is_none() {
                    fields.add(
                        "name",
                        format!(
                            "`{platform_name}` is not a platform (amazon_bedrock, aws_marketplace, claude_platform) \
                             in `{name}`"
                        ),
                    );
                }
                let model = fields.check("name", ModelId::parse(model));
                Some(Self::CatalogModel(platform?, model?))
            }
            _ => {
                fields.add("name", format!("`{name}` is not a resource with a history; one of: {NAMES}"));
                None
            }
        }
    }

    /// The streams whose events make up the trail: a workload's is its plan and its
    /// kill switch (suspensions show in the workload's history).
    fn streams(&self) -> Vec<StreamId> {
        match self {
            Self::Workload(id) => vec![streams::workload(*id), streams::kill_switch(*id)],
            _ => vec![self.stream()],
        }
    }

    fn stream(&self) -> StreamId {
        match self {
            Self::BusinessRequest(id) => streams::business_request(*id),
            Self::Task(id) => streams::task(*id),
            Self::CatalogModel(platform, model) => streams::catalog_model(*platform, model.as_str()),
            Self::Claim(key) => streams::claim(key),
            Self::Workload(id) => streams::workload(*id),
            Self::Gap(id) => streams::gap(*id),
            Self::GatewayRule(id) => streams::gateway_rule(*id),
            Self::SpendCard(id) => streams::spend_card(*id),
            Self::SpendRollup(id) => streams::spend_rollup(*id),
            Self::Organisation => streams::organisation(),
            Self::RolePatterns => streams::role_patterns(),
        }
    }
}

/// Serves decision trails.
#[derive(Clone)]
pub struct HistoryApi {
    store: Arc<dyn EventStore>,
    auth: Arc<Authenticator>,
    requests: BusinessRequestApi,
    gaps: GapApi,
    spaces: SpacesApi,
    cards: SpendCardApi,
}

impl HistoryApi {
    /// Trails of `store`'s resources, each visible as its own API (`requests`, `gaps`,
    /// `spaces`) decides.
    pub(crate) fn new(
        store: Arc<dyn EventStore>,
        auth: Arc<Authenticator>,
        requests: BusinessRequestApi,
        gaps: GapApi,
        spaces: SpacesApi,
        cards: SpendCardApi,
    ) -> Self {
        Self { store, auth, requests, gaps, spaces, cards }
    }

    /// May `principal` read `resource`? As its own API decides.
    async fn visible(&self, principal: &Principal, resource: &Resource) -> Result<(), Status> {
        match resource {
            Resource::BusinessRequest(id) => self.requests.load_visible(principal, *id).await.map(|_| ()),
            Resource::Task(_) => principal.require(&crate::task_api::READERS, "read the task queue"),
            Resource::Claim(key) => self.spaces.claim_visible(principal, key).await,
            Resource::Workload(id) => self.spaces.workload_visible(principal, *id).await,
            Resource::Gap(id) => self.gaps.visible(principal, *id).await,
            Resource::SpendCard(id) => self.cards.card_visible(principal, *id).await,
            Resource::SpendRollup(id) => self.cards.rollup_visible(principal, *id).await,
            Resource::GatewayRule(_) => principal.require(&crate::gateway_rule_api::RULE_READERS, "read gateway rules"),
            // Everyone signed in reads the catalog, the organisation and the role patterns.
            Resource::CatalogModel(..) | Resource::Organisation | Resource::RolePatterns => Ok(()),
        }
    }
}

#[tonic::async_trait]
impl HistoryService for HistoryApi {
    #[tracing::instrument(skip_all)]
    async fn get_history(&self, request: Request<pb::GetHistoryRequest>) -> Result<Response<pb::History>, Status> {
        let principal = self.auth.principal(&request)?;
        let body = request.into_inner();
        let mut fields = Fields::default();
        let resource = Resource::parse(&mut fields, &body.name);
        let as_of = wire::as_of(&mut fields, &body.as_of);
        fields.finish()?;
        let resource = resource.expect("checked");
        // Sealed first: every entry names its position, the same on every read.
        self.store.seal_committed().await.map_err(crate::status::from_log)?;
        let mut events = Vec::new();
        for stream in resource.streams() {
            events.extend(self.store.read_stream(&stream, StreamRead::all()).await.map_err(crate::status::from_log)?);
        }
        // One trail in the log's order (every event is sealed, so every one has a position).
        events.sort_by_key(|e| e.position);
        if events.is_empty() {
            return Err(not_found(body.name.trim().to_owned()));
        }
        self.visible(&principal, &resource).await?;
        let instant = as_of.unwrap_or_else(Utc::now);
        let entries = events
            .iter()
            .filter(|e| e.metadata.recorded_at <= instant)
            .map(|e| wire::history_entry(&finops_projections::history::entry(e)))
            .collect();
        Ok(Response::new(pb::History { name: body.name.trim().to_owned(), entries, as_of: instant.to_rfc3339() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str) -> Result<Resource, Status> {
        let mut fields = Fields::default();
        let resource = Resource::parse(&mut fields, name);
        fields.finish()?;
        Ok(resource.expect("checked"))
    }

    #[test]
    fn every_resource_name_reads_back_to_its_stream() {
        let id = Uuid::from_u128(7);
        for (name, stream) in [
            (format!("businessRequests/{id}"), format!("business-request-{id}")),
            (format!("tasks/{id}"), format!("task-{id}")),
            (format!("workloads/{id}"), format!("workload-{id}")),
            (format!("gaps/{id}"), format!("allocation-gap-{id}")),
            (format!("gatewayRules/{id}"), format!("gateway-rule-{id}")),
            (format!("spendCards/{id}"), format!("spend-card-{id}")),
            (format!("spendRollups/{id}"), format!("spend-rollup-{id}")),
            ("claims/role:111122223333:support-bot".to_owned(), "claim-role:111122223333:support-bot".to_owned()),
            (
                "catalogModels/amazon_bedrock/anthropic.claude-3-haiku-20240307-v1:0".to_owned(),
                "catalog-amazon_bedrock-anthropic.claude-3-haiku-20240307-v1:0".to_owned(),
            ),
            ("organisation".to_owned(), "organisation".to_owned()),
            ("rolePatterns".to_owned(), "role-patterns".to_owned()),
        ] {
            assert_eq!(parse(&name).unwrap().stream().as_str(), stream, "{name}");
        }
    }

    #[test]
    fn a_bad_name_says_what_names_there_are() {
        for bad in
            ["requests/1", "businessRequests/not-a-uuid", "catalogModels/openai/gpt", "claims/", "claims/a\u{7}", ""]
        {
            let status = parse(bad).unwrap_err();
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{bad}");
            assert!(status.message().contains("name"), "{bad}: {}", status.message());
        }
        assert!(parse("requests/1").unwrap_err().message().contains("businessRequests/{uuid}"));
    }
}
