//! The `finops` commands for people: submit, review, approve or reject, list and complete
//! tasks, claim, the catalog, workloads, the organisation, attribution, Allocation Gaps and
//! gateway mapping rules. Each talks gRPC to
//! a running server with the caller's bearer token; tables by default, `--json` for
//! scripts; `--request-id` makes any command's retry safe.

mod ask;
mod attribution;
mod cards;
mod catalog;
mod control;
mod events;
mod gaps;
mod gateway_rules;
mod history;
mod investigations;
pub mod logs;
mod maturity;
mod mcp;
mod org;
mod spaces;

pub use ask::{AskArgs, ask};
pub use attribution::{
    AttributionArgs, ChargebackArgs, ExportArgs, ReconcileArgs, attribution, chargeback, export, reconcile,
};
pub use cards::{CardsCommand, cards};
pub use catalog::{CatalogCommand, catalog};
pub use control::{ControlArgs, ControlStatusArgs, control, resume, suspend};
pub use events::{EventsCommand, events};
pub use gaps::{GapsCommand, gaps};
pub use gateway_rules::{GatewayRulesCommand, gateway_rules};
pub use history::{HistoryArgs, history};
pub use investigations::{InvestigationsCommand, investigations};
pub use maturity::{MaturityArgs, maturity};
pub use mcp::{McpArgs, mcp};
pub use org::{OrgCommand, org};
pub use spaces::{ClaimArgs, ClaimsCommand, WorkloadsCommand, claim, claims, workloads};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use finops_proto::v1 as pb;
use finops_proto::v1::business_request_service_client::BusinessRequestServiceClient;
use finops_proto::v1::task_service_client::TaskServiceClient;
use serde_json::{Value, json};
use tonic::transport::Channel;

/// Where and as whom.
#[derive(Debug, Args)]
pub struct Connection {
    /// The server, e.g. http://127.0.0.1:50051.
    #[arg(long, env = "FINOPS_SERVER", default_value = "http://127.0.0.1:50051", global = true)]
    server: String,
    /// Bearer token (see `finops dev-token`).
    #[arg(long, env = "FINOPS_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// Idempotency key (UUID) of a command: send the same one again and the command is not
    /// repeated (the first result comes back); the same key with another request is
    /// refused. Default: a fresh one.
    #[arg(long, global = true)]
    request_id: Option<String>,
}

/// Business Requests.
#[derive(Debug, Subcommand)]
pub enum RequestsCommand {
    /// The request queue (yours, as a Product Owner).
    List {
        /// submitted, approved, rejected or withdrawn.
        #[arg(long)]
        status: Option<String>,
        /// As the log stood at this instant (RFC 3339).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// One request in full.
    Show {
        /// businessRequests/{uuid}
        name: String,
        /// As the log stood at this instant (RFC 3339).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Submit a request (Product Owner).
    Submit(SubmitArgs),
    /// Price a request from the price table.
    Estimate {
        /// businessRequests/{uuid}
        name: String,
        /// Model to price on.
        #[arg(long)]
        model: Option<String>,
        /// Region to price in.
        #[arg(long)]
        region: Option<String>,
    },
    /// Approve with a configuration (FinOps Lead).
    Approve(ApproveArgs),
    /// Reject with a rationale (FinOps Lead).
    Reject {
        /// businessRequests/{uuid}
        name: String,
        /// Why.
        #[arg(long)]
        rationale: String,
    },
}

/// What a Product Owner submits.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The product (a product_id from `finops org show`).
    #[arg(long)]
    product: String,
    /// The workload's name.
    #[arg(long)]
    workload_name: String,
    /// Coding: number of developers.
    #[arg(long, conflicts_with = "description")]
    developers: Option<u32>,
    /// Coding: percent of the workday in active use.
    #[arg(long, requires = "developers")]
    active_percent: Option<u32>,
    /// Operations: customer_support, document_processing, automation, internal_tool or other.
    #[arg(long = "type", default_value = "other")]
    workload_type: String,
    /// Operations: what it does (≤ 500 characters).
    #[arg(long)]
    description: Option<String>,
    /// Operations: standard or high_availability.
    #[arg(long, default_value = "standard")]
    availability: String,
    /// Operations: monthly budget in dollars.
    #[arg(long)]
    budget_dollars: Option<f64>,
}

/// The FinOps Lead's configuration.
#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// businessRequests/{uuid}
    name: String,
    /// amazon_bedrock, aws_marketplace or claude_platform.
    #[arg(long, default_value = "amazon_bedrock")]
    platform: String,
    /// Model id.
    #[arg(long)]
    model: String,
    /// AWS account (12 digits).
    #[arg(long)]
    account: String,
    /// Region.
    #[arg(long)]
    region: String,
    /// FA Confirmed Estimate, dollars per month.
    #[arg(long)]
    estimate_dollars: f64,
    /// Why.
    #[arg(long)]
    rationale: String,
    /// Claude Platform workspace.
    #[arg(long)]
    workspace: Option<String>,
    /// MAP MPE id.
    #[arg(long)]
    mpe: Option<String>,
    /// The budget the workload charges (a budget_id of the approved account; see `finops
    /// org`). Optional when the account has one budget.
    #[arg(long)]
    budget: Option<String>,
}

/// The Cloud Engineer task queue.
#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// The queue: open, in_progress, implemented or overdue.
    List {
        /// Filter.
        #[arg(long)]
        status: Option<String>,
        /// As the log stood at this instant (RFC 3339).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// One task with its commands.
    Show {
        /// tasks/{uuid}
        name: String,
        /// As the log stood at this instant (RFC 3339).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Record step N as done.
    Complete {
        /// tasks/{uuid}
        name: String,
        /// 1-based step.
        #[arg(long)]
        step: u32,
        /// A note (output, ticket).
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Mark the task implemented.
    Implemented {
        /// tasks/{uuid}
        name: String,
        /// A closing note (a ticket, the output that proves it works).
        #[arg(long, default_value = "")]
        note: String,
    },
}

impl Connection {
    pub(crate) async fn channel(&self) -> anyhow::Result<Channel> {
        tonic::transport::Endpoint::from_shared(self.server.clone())
            .with_context(|| format!("`{}` is not a server address", self.server))?
            .connect()
            .await
            .with_context(|| format!("cannot reach {}", self.server))
    }

    /// The bearer token, or why there is none.
    pub(crate) fn token(&self) -> anyhow::Result<&str> {
        self.token.as_deref().context("no token: pass --token or set FINOPS_TOKEN (see `finops dev-token`)")
    }

    pub(crate) fn request<T>(&self, message: T) -> anyhow::Result<tonic::Request<T>> {
        let token = self.token()?;
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().context("token is not ASCII")?);
        Ok(request)
    }

    /// The `--request-id` to send (empty: the server draws one).
    pub(crate) fn request_id(&self) -> String {
        self.request_id.clone().unwrap_or_default()
    }

    pub(crate) fn print(&self, value: Value, table: impl FnOnce(&Value)) {
        if self.json {
            println!("{value}");
        } else {
            table(&value);
        }
    }
}

/// Every page of a List call: `fetch(page_token)` returns a page's items and the next
/// token (empty after the last page).
pub(crate) async fn all_pages<T, F, Fut>(mut fetch: F) -> anyhow::Result<Vec<T>>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<(Vec<T>, String)>>,
{
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let (items, next) = fetch(token).await?;
        all.extend(items);
        if next.is_empty() {
            return Ok(all);
        }
        token = next;
    }
}

/// Turns a gRPC failure into a message that names the code and every field at fault.
pub(crate) fn explain(status: tonic::Status) -> anyhow::Error {
    use tonic_types::StatusExt;
    let mut message = format!("{:?}: {}", status.code(), status.message());
    if let Some(bad) = status.get_details_bad_request() {
        for v in bad.field_violations {
            message.push_str(&format!("\n  {}: {}", v.field, v.description));
        }
    }
    anyhow::anyhow!(message)
}

pub(crate) fn cents(dollars: f64) -> anyhow::Result<u64> {
    if !dollars.is_finite() || dollars < 0.0 {
        bail!("{dollars} is not an amount of dollars");
    }
    Ok((dollars * 100.0).round() as u64)
}

pub(crate) fn enum_name(prefix: &str, name: &str) -> String {
    name.strip_prefix(prefix).unwrap_or(name).to_ascii_lowercase()
}

fn status_name(value: i32) -> String {
    pb::RequestStatus::try_from(value).map(|s| enum_name("REQUEST_STATUS_", s.as_str_name())).unwrap_or_default()
}

fn request_json(r: &pb::BusinessRequest) -> Value {
    json!({
        "name": r.name, "status": status_name(r.status), "requested_by": r.requested_by, "product_id": r.product_id,
        "revision": r.revision, "workload_name": r.details.as_ref().map(|d| d.workload_name.clone()),
        "role_name": r.approval.as_ref().map(|a| a.role_name.clone()),
        "workload_id": r.approval.as_ref().map(|a| a.workload_id.clone()),
        "last_rejection": r.last_rejection, "version": r.version,
    })
}

fn task_json(t: &pb::Task) -> Value {
    json!({
        "name": t.name, "kind": t.kind, "status": t.status, "overdue": t.overdue, "business_request": t.business_request,
        "steps_done": t.steps_done, "steps": t.steps.iter().map(|s| json!({"title": s.title, "done": s.done, "instructions": s.instructions, "commands": s.commands})).collect::<Vec<_>>(),
    })
}

/// A decision trail (`history`: when, who, role, what, why of each event) as a table.
pub(crate) fn print_trail(history: &Value) {
    let rows = history
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| ["at", "who", "role", "what", "why"].iter().map(|k| text(&h[*k])).collect());
    print_rows(&["WHEN", "WHO", "ROLE", "WHAT", "WHY"], rows.collect());
}

pub(crate) fn print_rows(headers: &[&str], rows: Vec<Vec<String>>) {
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0).max(h.len()))
        .collect();
    let line = |cells: Vec<String>| {
        cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect::<Vec<_>>().join("  ").trim_end().to_owned()
    };
    println!("{}", line(headers.iter().map(|h| h.to_string()).collect()));
    for row in rows {
        println!("{}", line(row));
    }
}

pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// `finops requests …`
pub async fn requests(conn: &Connection, command: RequestsCommand) -> anyhow::Result<()> {
    let mut client = BusinessRequestServiceClient::new(conn.channel().await?);
    let show = |r: &pb::BusinessRequest| {
        conn.print(request_json(r), |v| {
            for key in [
                "name",
                "status",
                "workload_name",
                "requested_by",
                "revision",
                "role_name",
                "workload_id",
                "last_rejection",
            ] {
                println!("{key:<15} {}", text(&v[key]));
            }
        })
    };
    match command {
        RequestsCommand::List { status, as_of } => {
            let status = match status.as_deref() {
                None => 0,
                Some(s) => pb::RequestStatus::from_str_name(&format!("REQUEST_STATUS_{}", s.to_ascii_uppercase()))
                    .with_context(|| format!("unknown status `{s}`"))? as i32,
            };
            let all = all_pages(|page_token| {
                let mut client = client.clone();
                let request = conn.request(pb::ListBusinessRequestsRequest {
                    as_of: as_of.clone().unwrap_or_default(),
                    page_size: 200,
                    page_token,
                    status,
                });
                async move {
                    let page = client.list_business_requests(request?).await.map_err(explain)?.into_inner();
                    Ok((page.business_requests, page.next_page_token))
                }
            })
            .await?;
            let value = Value::Array(
                all.iter()
                    .map(|r| json!({"name": r.name, "status": status_name(r.status), "workload_name": r.workload_name, "use_case": r.use_case, "requested_by": r.requested_by, "role_name": r.role_name}))
                    .collect(),
            );
            conn.print(value, |v| {
                let rows = v.as_array().map(|a| {
                    a.iter()
                        .map(|r| {
                            ["name", "status", "use_case", "workload_name", "requested_by", "role_name"]
                                .iter()
                                .map(|k| text(&r[*k]))
                                .collect()
                        })
                        .collect()
                });
                print_rows(&["NAME", "STATUS", "USE CASE", "WORKLOAD", "OWNER", "ROLE"], rows.unwrap_or_default());
            });
        }
        RequestsCommand::Show { name, as_of } => {
            let message = pb::GetBusinessRequestRequest { as_of: as_of.unwrap_or_default(), name };
            let r = client.get_business_request(conn.request(message)?).await.map_err(explain)?.into_inner();
            show(&r);
        }
        RequestsCommand::Submit(a) => {
            let use_case = match (a.developers, a.description) {
                (Some(developers), None) => pb::request_details::UseCase::Coding(pb::CodingUseCase {
                    developers,
                    active_percent: a.active_percent.context("--active-percent is required with --developers")?,
                }),
                (None, Some(description)) => {
                    let workload_type = pb::WorkloadType::from_str_name(&format!(
                        "WORKLOAD_TYPE_{}",
                        a.workload_type.to_ascii_uppercase()
                    ))
                    .with_context(|| format!("unknown --type `{}`", a.workload_type))?;
                    let availability = pb::Availability::from_str_name(&format!(
                        "AVAILABILITY_{}",
                        a.availability.to_ascii_uppercase()
                    ))
                    .with_context(|| format!("unknown --availability `{}`", a.availability))?;
                    let dollars = a.budget_dollars.context("--budget-dollars is required for an Operations request")?;
                    pb::request_details::UseCase::Operations(pb::OperationsUseCase {
                        workload_type: workload_type as i32,
                        description,
                        availability: availability as i32,
                        monthly_budget: Some(pb::MonthlyAmount {
                            amount: Some(pb::monthly_amount::Amount::Cents(cents(dollars)?)),
                        }),
                    })
                }
                _ => bail!(
                    "give --developers and --active-percent (Coding) or --description and --budget-dollars (Operations)"
                ),
            };
            let message = pb::SubmitBusinessRequestRequest {
                product_id: a.product,
                details: Some(pb::RequestDetails {
                    workload_name: a.workload_name,
                    use_case: Some(use_case),
                    ..Default::default()
                }),
                request_id: conn.request_id(),
            };
            let r = client.submit_business_request(conn.request(message)?).await.map_err(explain)?.into_inner();
            show(&r);
        }
        RequestsCommand::Estimate { name, model, region } => {
            let message = pb::EstimateBusinessRequestRequest {
                name,
                model_id: model.unwrap_or_default(),
                region: region.unwrap_or_default(),
            };
            let e = client.estimate_business_request(conn.request(message)?).await.map_err(explain)?.into_inner();
            let value = json!({"monthly_dollars": format!("{}.{:02}", e.monthly_cents / 100, e.monthly_cents % 100), "monthly_ccu": e.monthly_ccu, "price_snapshot": e.price_snapshot, "assumptions": e.assumptions});
            conn.print(value, |v| {
                println!(
                    "${} a month ({} CCU), prices of {}",
                    text(&v["monthly_dollars"]),
                    v["monthly_ccu"],
                    text(&v["price_snapshot"])
                );
                for a in v["assumptions"].as_array().into_iter().flatten() {
                    println!("  - {}", text(a));
                }
            });
        }
        RequestsCommand::Approve(a) => {
            let platform = pb::Platform::from_str_name(&format!("PLATFORM_{}", a.platform.to_ascii_uppercase()))
                .with_context(|| format!("unknown --platform `{}`", a.platform))?;
            let message = pb::ApproveBusinessRequestRequest {
                name: a.name,
                review: Some(pb::Review {
                    platform: platform as i32,
                    model_id: a.model,
                    account_id: a.account,
                    region: a.region,
                    actions: vec![],
                    workspace: a.workspace.unwrap_or_default(),
                    map_mpe_id: a.mpe.unwrap_or_default(),
                    confirmed_estimate: Some(pb::MonthlyAmount {
                        amount: Some(pb::monthly_amount::Amount::Cents(cents(a.estimate_dollars)?)),
                    }),
                    budget_id: a.budget.unwrap_or_default(),
                }),
                rationale: a.rationale,
                request_id: conn.request_id(),
            };
            let r = client.approve_business_request(conn.request(message)?).await.map_err(explain)?.into_inner();
            show(&r);
        }
        RequestsCommand::Reject { name, rationale } => {
            let message = pb::RejectBusinessRequestRequest { name, rationale, request_id: conn.request_id() };
            let r = client.reject_business_request(conn.request(message)?).await.map_err(explain)?.into_inner();
            show(&r);
        }
    }
    Ok(())
}

/// `finops tasks …`
pub async fn tasks(conn: &Connection, command: TasksCommand) -> anyhow::Result<()> {
    let mut client = TaskServiceClient::new(conn.channel().await?);
    let show = |t: &pb::Task| {
        conn.print(task_json(t), |v| {
            println!(
                "{}  {}  {}{}",
                text(&v["name"]),
                text(&v["kind"]),
                text(&v["status"]),
                if v["overdue"] == true { "  OVERDUE" } else { "" }
            );
            for (i, s) in v["steps"].as_array().into_iter().flatten().enumerate() {
                println!(
                    "\n[{}] {}. {}\n    {}",
                    if s["done"] == true { "x" } else { " " },
                    i + 1,
                    text(&s["title"]),
                    text(&s["instructions"])
                );
                for c in s["commands"].as_array().into_iter().flatten() {
                    println!("    $ {}", text(c));
                }
            }
        })
    };
    match command {
        TasksCommand::List { status, as_of } => {
            // Every page: a queue longer than a page is listed whole (it stopped at 1 000).
            let status = status.unwrap_or_default();
            let all = all_pages(|page_token| {
                let mut client = client.clone();
                let request = conn.request(pb::ListTasksRequest {
                    as_of: as_of.clone().unwrap_or_default(),
                    page_size: 1000,
                    page_token,
                    status: status.clone(),
                });
                async move {
                    let page = client.list_tasks(request?).await.map_err(explain)?.into_inner();
                    Ok((page.tasks, page.next_page_token))
                }
            })
            .await?;
            let value = Value::Array(all.iter().map(task_json).collect());
            conn.print(value, |v| {
                let rows = v.as_array().map(|a| {
                    a.iter()
                        .map(|t| {
                            vec![
                                text(&t["name"]),
                                text(&t["kind"]),
                                text(&t["status"]),
                                format!("{}/{}", t["steps_done"], t["steps"].as_array().map_or(0, Vec::len)),
                                if t["overdue"] == true { "yes".into() } else { "".into() },
                            ]
                        })
                        .collect()
                });
                print_rows(&["NAME", "KIND", "STATUS", "STEPS", "OVERDUE"], rows.unwrap_or_default());
            });
        }
        TasksCommand::Show { name, as_of } => show(
            &client
                .get_task(conn.request(pb::GetTaskRequest { as_of: as_of.unwrap_or_default(), name })?)
                .await
                .map_err(explain)?
                .into_inner(),
        ),
        TasksCommand::Complete { name, step, note } => show(
            &client
                .complete_task_step(conn.request(pb::CompleteTaskStepRequest {
                    name,
                    step,
                    note,
                    request_id: conn.request_id(),
                })?)
                .await
                .map_err(explain)?
                .into_inner(),
        ),
        TasksCommand::Implemented { name, note } => show(
            &client
                .mark_task_implemented(conn.request(pb::MarkTaskImplementedRequest {
                    name,
                    note,
                    request_id: conn.request_id(),
                })?)
                .await
                .map_err(explain)?
                .into_inner(),
        ),
    }
    Ok(())
}
