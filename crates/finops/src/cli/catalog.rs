//! The model catalog from the command line: list, show, approve, add scope, revoke.

use anyhow::Context;
use clap::{Args, Subcommand};
use finops_proto::v1 as pb;
use finops_proto::v1::catalog_service_client::CatalogServiceClient;
use serde_json::{Value, json};

use super::{Connection, all_pages, enum_name, explain, print_rows, text};

/// Which model.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Model id, e.g. anthropic.claude-3-haiku-20240307-v1:0.
    model: String,
    /// amazon_bedrock, aws_marketplace or claude_platform.
    #[arg(long, default_value = "amazon_bedrock")]
    platform: String,
}

/// Where a model may run.
#[derive(Debug, Args)]
pub struct ScopeArgs {
    /// Accounts (12 digits), comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    accounts: Vec<String>,
    /// Regions, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    regions: Vec<String>,
    /// Actions, comma-separated: invoke_model, invoke_model_with_response_stream, converse,
    /// converse_stream, create_model_invocation_job, apply_guardrail (default: all).
    #[arg(long, value_delimiter = ',')]
    actions: Vec<String>,
    /// Why.
    #[arg(long)]
    rationale: String,
}

/// The catalog.
#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Every model with its status and scope.
    List {
        /// As the log stood at this instant (RFC 3339).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// One model.
    Show {
        #[command(flatten)]
        model: ModelArgs,
        /// As the log stood at this instant (RFC 3339).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Approve a model for accounts, regions and actions (FinOps Lead).
    Approve {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Extend an approval (FinOps Lead).
    AddScope {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Withdraw an approval (FinOps Lead).
    Revoke {
        #[command(flatten)]
        model: ModelArgs,
        /// Why.
        #[arg(long)]
        rationale: String,
    },
}

fn platform(name: &str) -> anyhow::Result<i32> {
    Ok(pb::Platform::from_str_name(&format!("PLATFORM_{}", name.to_ascii_uppercase()))
        .with_context(|| format!("unknown --platform `{name}`: amazon_bedrock, aws_marketplace or claude_platform"))?
        as i32)
}

fn scope(s: &ScopeArgs) -> anyhow::Result<pb::Scope> {
    let actions = if s.actions.is_empty() {
        (1..=6).collect()
    } else {
        s.actions
            .iter()
            .map(|a| {
                pb::InvokeAction::from_str_name(&format!("INVOKE_ACTION_{}", a.trim().to_ascii_uppercase()))
                    .map(|a| a as i32)
                    .with_context(|| format!("unknown action `{a}`"))
            })
            .collect::<anyhow::Result<_>>()?
    };
    Ok(pb::Scope { account_ids: s.accounts.clone(), regions: s.regions.clone(), actions })
}

fn model_json(m: &pb::CatalogModel) -> Value {
    let scope = m.scope.clone().unwrap_or_default();
    json!({
        "name": m.name, "model_id": m.model_id,
        "status": pb::ModelStatus::try_from(m.status).map(|s| enum_name("MODEL_STATUS_", s.as_str_name())).unwrap_or_default(),
        "accounts": scope.account_ids, "regions": scope.regions,
        "actions": scope.actions.iter().filter_map(|a| pb::InvokeAction::try_from(*a).ok()).map(|a| enum_name("INVOKE_ACTION_", a.as_str_name())).collect::<Vec<_>>(),
        "version": m.version,
    })
}

/// `finops catalog …`
pub async fn catalog(conn: &Connection, command: CatalogCommand) -> anyhow::Result<()> {
    let mut client = CatalogServiceClient::new(conn.channel().await?);
    let show = |m: &pb::CatalogModel| {
        conn.print(model_json(m), |v| {
            for key in ["name", "status", "accounts", "regions", "actions"] {
                println!("{key:<9} {}", text(&v[key]));
            }
        })
    };
    match command {
        CatalogCommand::List { as_of } => {
            let all = all_pages(|page_token| {
                let mut client = client.clone();
                let request = conn.request(pb::ListModelsRequest {
                    as_of: as_of.clone().unwrap_or_default(),
                    page_size: 1000,
                    page_token,
                });
                async move {
                    let page = client.list_models(request?).await.map_err(explain)?.into_inner();
                    Ok((page.models, page.next_page_token))
                }
            })
            .await?;
            conn.print(Value::Array(all.iter().map(model_json).collect()), |v| {
                let rows = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|m| ["name", "status", "accounts", "regions"].iter().map(|k| text(&m[*k])).collect());
                print_rows(&["MODEL", "STATUS", "ACCOUNTS", "REGIONS"], rows.collect());
            });
        }
        CatalogCommand::Show { model: m, as_of } => {
            let message = pb::GetModelRequest {
                as_of: as_of.unwrap_or_default(),
                platform: platform(&m.platform)?,
                model_id: m.model,
            };
            show(&client.get_model(conn.request(message)?).await.map_err(explain)?.into_inner());
        }
        CatalogCommand::Approve { model, scope: s } => {
            let message = pb::ApproveModelRequest {
                platform: platform(&model.platform)?,
                model_id: model.model,
                scope: Some(scope(&s)?),
                rationale: s.rationale,
                request_id: conn.request_id(),
            };
            show(&client.approve_model(conn.request(message)?).await.map_err(explain)?.into_inner());
        }
        CatalogCommand::AddScope { model, scope: s } => {
            let message = pb::AddModelScopeRequest {
                platform: platform(&model.platform)?,
                model_id: model.model,
                scope: Some(scope(&s)?),
                rationale: s.rationale,
                request_id: conn.request_id(),
            };
            show(&client.add_model_scope(conn.request(message)?).await.map_err(explain)?.into_inner());
        }
        CatalogCommand::Revoke { model, rationale } => {
            let message = pb::RevokeModelRequest {
                platform: platform(&model.platform)?,
                model_id: model.model,
                rationale,
                request_id: conn.request_id(),
            };
            show(&client.revoke_model(conn.request(message)?).await.map_err(explain)?.into_inner());
        }
    }
    Ok(())
}
