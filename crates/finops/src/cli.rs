//! The `finops` commands for people: submit, review, approve or reject, list and complete
//! tasks, claim. Each talks gRPC to a running server with the caller's bearer token;
//! tables by default, `--json` for scripts.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use finops_proto::v1 as pb;
use finops_proto::v1::attribution_service_client::AttributionServiceClient;
use finops_proto::v1::business_request_service_client::BusinessRequestServiceClient;
use finops_proto::v1::organisation_service_client::OrganisationServiceClient;
use finops_proto::v1::spaces_service_client::SpacesServiceClient;
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
}

/// Business Requests.
#[derive(Debug, Subcommand)]
pub enum RequestsCommand {
    /// The request queue (yours, as a Product Owner).
    List {
        /// submitted, approved, rejected or withdrawn.
        #[arg(long)]
        status: Option<String>,
    },
    /// One request in full.
    Show {
        /// businessRequests/{uuid}
        name: String,
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
    /// The product (a UUID from `finops org show`).
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
    /// Idempotency key (UUID) to make a retry safe.
    #[arg(long)]
    request_id: Option<String>,
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
    },
    /// One task with its commands.
    Show {
        /// tasks/{uuid}
        name: String,
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
    },
}

/// Claim a role for an approved workload.
#[derive(Debug, Args)]
pub struct ClaimArgs {
    /// businessRequests/{uuid} of the approved workload.
    #[arg(long)]
    request: String,
    /// AWS account of the role.
    #[arg(long)]
    account: String,
    /// Role name or ARN.
    #[arg(long)]
    role: String,
    /// Effective from (YYYY-MM-DD); default: the start of this month.
    #[arg(long, default_value = "")]
    from: String,
}

impl Connection {
    async fn channel(&self) -> anyhow::Result<Channel> {
        tonic::transport::Endpoint::from_shared(self.server.clone())
            .with_context(|| format!("`{}` is not a server address", self.server))?
            .connect()
            .await
            .with_context(|| format!("cannot reach {}", self.server))
    }

    fn request<T>(&self, message: T) -> anyhow::Result<tonic::Request<T>> {
        let token =
            self.token.as_deref().context("no token: pass --token or set FINOPS_TOKEN (see `finops dev-token`)")?;
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().context("token is not ASCII")?);
        Ok(request)
    }

    fn print(&self, value: Value, table: impl FnOnce(&Value)) {
        if self.json {
            println!("{value}");
        } else {
            table(&value);
        }
    }
}

/// Turns a gRPC failure into a message that names the code and every field at fault.
fn explain(status: tonic::Status) -> anyhow::Error {
    use tonic_types::StatusExt;
    let mut message = format!("{:?}: {}", status.code(), status.message());
    if let Some(bad) = status.get_details_bad_request() {
        for v in bad.field_violations {
            message.push_str(&format!("\n  {}: {}", v.field, v.description));
        }
    }
    anyhow::anyhow!(message)
}

fn cents(dollars: f64) -> anyhow::Result<u64> {
    if !dollars.is_finite() || dollars < 0.0 {
        bail!("{dollars} is not an amount of dollars");
    }
    Ok((dollars * 100.0).round() as u64)
}

fn enum_name(prefix: &str, name: &str) -> String {
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

fn print_rows(headers: &[&str], rows: Vec<Vec<String>>) {
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

fn text(v: &Value) -> String {
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
        RequestsCommand::List { status } => {
            let status = match status.as_deref() {
                None => 0,
                Some(s) => pb::RequestStatus::from_str_name(&format!("REQUEST_STATUS_{}", s.to_ascii_uppercase()))
                    .with_context(|| format!("unknown status `{s}`"))? as i32,
            };
            let mut all = Vec::new();
            let mut token = String::new();
            loop {
                let page = client
                    .list_business_requests(conn.request(pb::ListBusinessRequestsRequest {
                        page_size: 200,
                        page_token: token,
                        status,
                    })?)
                    .await
                    .map_err(explain)?
                    .into_inner();
                all.extend(page.business_requests);
                if page.next_page_token.is_empty() {
                    break;
                }
                token = page.next_page_token;
            }
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
        RequestsCommand::Show { name } => {
            let r = client
                .get_business_request(conn.request(pb::GetBusinessRequestRequest { name })?)
                .await
                .map_err(explain)?
                .into_inner();
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
                request_id: a.request_id.unwrap_or_default(),
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
                request_id: String::new(),
            };
            let r = client.approve_business_request(conn.request(message)?).await.map_err(explain)?.into_inner();
            show(&r);
        }
        RequestsCommand::Reject { name, rationale } => {
            let message = pb::RejectBusinessRequestRequest { name, rationale, request_id: String::new() };
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
        TasksCommand::List { status } => {
            let page = client
                .list_tasks(conn.request(pb::ListTasksRequest {
                    page_size: 1000,
                    page_token: String::new(),
                    status: status.unwrap_or_default(),
                })?)
                .await
                .map_err(explain)?
                .into_inner();
            let value = Value::Array(page.tasks.iter().map(task_json).collect());
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
        TasksCommand::Show { name } => {
            show(&client.get_task(conn.request(pb::GetTaskRequest { name })?).await.map_err(explain)?.into_inner())
        }
        TasksCommand::Complete { name, step, note } => show(
            &client
                .complete_task_step(conn.request(pb::CompleteTaskStepRequest {
                    name,
                    step,
                    note,
                    request_id: String::new(),
                })?)
                .await
                .map_err(explain)?
                .into_inner(),
        ),
        TasksCommand::Implemented { name } => show(
            &client
                .mark_task_implemented(
                    conn.request(pb::MarkTaskImplementedRequest { name, request_id: String::new() })?,
                )
                .await
                .map_err(explain)?
                .into_inner(),
        ),
    }
    Ok(())
}

/// `finops claim …`
pub async fn claim(conn: &Connection, a: ClaimArgs) -> anyhow::Result<()> {
    let mut client = SpacesServiceClient::new(conn.channel().await?);
    let message = pb::ClaimResourceRequest {
        business_request: a.request,
        resource: Some(pb::claim_resource_request::Resource::Role(pb::IamRoleRef {
            account_id: a.account,
            role_name_or_arn: a.role,
        })),
        effective_from: a.from,
        request_id: String::new(),
    };
    let c = client.claim_resource(conn.request(message)?).await.map_err(explain)?.into_inner();
    let value = json!({"name": c.name, "status": c.status, "workload_id": c.workload_id, "from": c.periods.last().map(|p| p.from.clone())});
    conn.print(value, |v| {
        println!(
            "{} {} for workload {} from {}",
            text(&v["name"]),
            text(&v["status"]),
            text(&v["workload_id"]),
            text(&v["from"])
        )
    });
    Ok(())
}

/// `finops org show`
pub async fn org(conn: &Connection) -> anyhow::Result<()> {
    let mut client = OrganisationServiceClient::new(conn.channel().await?);
    let o = client.get_organisation(conn.request(pb::GetOrganisationRequest {})?).await.map_err(explain)?.into_inner();
    let value = json!({
        "products": o.products.iter().map(|p| json!({"product_id": p.product_id, "name": p.name, "owner": p.owner, "portfolio_id": p.portfolio_id})).collect::<Vec<_>>(),
        "accounts": o.accounts.iter().map(|a| json!({"account_id": a.account_id, "name": a.name})).collect::<Vec<_>>(),
        "budgets": o.budgets.iter().map(|b| json!({"budget_id": b.budget_id, "account_id": b.account_id, "name": b.name, "cost_centre": b.cost_centre})).collect::<Vec<_>>(),
    });
    conn.print(value, |v| {
        let rows = v["products"].as_array().map(|a| {
            a.iter().map(|p| ["product_id", "name", "owner"].iter().map(|k| text(&p[*k])).collect()).collect()
        });
        print_rows(&["PRODUCT", "NAME", "OWNER"], rows.unwrap_or_default());
    });
    Ok(())
}

/// Attribution of a billing period.
#[derive(Debug, clap::Args)]
pub struct AttributionArgs {
    /// Billing period, YYYY-MM.
    #[arg(long)]
    period: String,
    /// Dimensions, comma-separated: workload, product, portfolio, budget, account, model,
    /// token_type, region, day, gap, platform, principal.
    #[arg(long, value_delimiter = ',', default_value = "workload,gap")]
    group_by: Vec<String>,
    /// Answer as of this instant (RFC 3339), as the log and the CUR batches stood then.
    #[arg(long)]
    as_of: Option<String>,
}

/// The chargeback statement of a billing period.
#[derive(Debug, clap::Args)]
pub struct ChargebackArgs {
    /// Billing period, YYYY-MM.
    #[arg(long)]
    period: String,
    /// As of this instant (RFC 3339).
    #[arg(long)]
    as_of: Option<String>,
}

/// An export of a billing period's classified spend.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Billing period, YYYY-MM.
    #[arg(long)]
    period: String,
    /// csv, parquet or focus.
    #[arg(long, default_value = "csv")]
    format: String,
    /// As of this instant (RFC 3339).
    #[arg(long)]
    as_of: Option<String>,
    /// Output file (default: the name the server suggests, in the current folder).
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

fn dollars(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}${}.{:02}", cents.abs() / 100, cents.abs() % 100)
}

/// `finops attribution`.
pub async fn attribution(conn: &Connection, args: AttributionArgs) -> anyhow::Result<()> {
    let mut client = AttributionServiceClient::new(conn.channel().await?);
    let request = pb::AttributeRequest {
        period: args.period,
        group_by: args.group_by.iter().map(|g| g.trim().to_owned()).filter(|g| !g.is_empty()).collect(),
        as_of: args.as_of.unwrap_or_default(),
    };
    let a = client.attribute(conn.request(request)?).await.map_err(explain)?.into_inner();
    let value = json!({
        "period": a.period, "as_of": a.as_of, "batch_hash": a.batch_hash, "group_by": a.group_by,
        "total_cents": a.total_cents,
        "rows": a.rows.iter().map(|r| json!({"keys": r.keys, "cost_cents": r.cost_cents, "tokens": r.tokens, "lines": r.lines})).collect::<Vec<_>>(),
        "unbacked_workloads": a.unbacked_workloads.iter().map(|u| json!({
            "workload_id": u.workload_id, "workload": u.workload, "owner": u.owner,
            "spend_cents": u.spend_cents, "estimate": u.estimate,
        })).collect::<Vec<_>>(),
    });
    conn.print(value, |_| {
        println!("{} as of {} (CUR batch {})", a.period, a.as_of, &a.batch_hash[..12.min(a.batch_hash.len())]);
        let mut headers: Vec<String> = a.group_by.iter().map(|g| g.to_uppercase()).collect();
        headers.extend(["COST".into(), "TOKENS".into(), "LINES".into()]);
        let rows = a
            .rows
            .iter()
            .map(|r| {
                let mut row: Vec<String> =
                    r.keys.iter().map(|k| if k.is_empty() { "—".to_owned() } else { k.clone() }).collect();
                row.extend([dollars(r.cost_cents), format!("{:.0}", r.tokens), r.lines.to_string()]);
                row
            })
            .collect();
        print_rows(&headers.iter().map(String::as_str).collect::<Vec<_>>(), rows);
        println!("TOTAL {}", dollars(a.total_cents));
        for u in &a.unbacked_workloads {
            println!(
                "Unbacked AI Workload: {} (owner {}, {} this period{}) has no business case",
                u.workload,
                u.owner,
                dollars(u.spend_cents),
                if u.estimate { ", estimated" } else { "" }
            );
        }
    });
    Ok(())
}

/// `finops chargeback`.
pub async fn chargeback(conn: &Connection, args: ChargebackArgs) -> anyhow::Result<()> {
    let mut client = AttributionServiceClient::new(conn.channel().await?);
    let request = pb::ChargebackRequest { period: args.period, as_of: args.as_of.unwrap_or_default() };
    let s = client.chargeback(conn.request(request)?).await.map_err(explain)?.into_inner();
    let value = json!({
        "period": s.period, "as_of": s.as_of, "batch_hash": s.batch_hash, "total_cents": s.total_cents,
        "absorbed_by_non_ai_cents": s.absorbed_by_non_ai_cents,
        "charges": s.charges.iter().map(|c| json!({
            "budget_id": c.budget_id, "budget": c.budget, "cost_centre": c.cost_centre, "account_id": c.account_id,
            "ai_budget": c.ai_budget, "claimed_cents": c.claimed_cents, "shared_cents": c.shared_cents, "total_cents": c.total_cents,
        })).collect::<Vec<_>>(),
    });
    conn.print(value, |_| {
        println!(
            "Chargeback {} as of {} (CUR batch {})",
            s.period,
            s.as_of,
            &s.batch_hash[..12.min(s.batch_hash.len())]
        );
        let rows = s
            .charges
            .iter()
            .map(|c| {
                vec![
                    c.account_id.clone(),
                    c.budget.clone(),
                    c.cost_centre.clone(),
                    if c.ai_budget { "AI" } else { "non-AI" }.to_owned(),
                    dollars(c.claimed_cents),
                    dollars(c.shared_cents),
                    dollars(c.total_cents),
                ]
            })
            .collect();
        print_rows(&["ACCOUNT", "BUDGET", "COST CENTRE", "KIND", "CLAIMED", "SHARED", "TOTAL"], rows);
        println!(
            "TOTAL {}   absorbed by non-AI budgets {}",
            dollars(s.total_cents),
            dollars(s.absorbed_by_non_ai_cents)
        );
    });
    Ok(())
}

/// `finops export`.
pub async fn export(conn: &Connection, args: ExportArgs) -> anyhow::Result<()> {
    let format = match args.format.as_str() {
        "csv" => pb::ExportFormat::Csv,
        "parquet" => pb::ExportFormat::Parquet,
        "focus" => pb::ExportFormat::Focus,
        other => anyhow::bail!("--format `{other}`: use csv, parquet or focus"),
    };
    let mut client = AttributionServiceClient::new(conn.channel().await?);
    let request =
        pb::ExportRequest { period: args.period, as_of: args.as_of.unwrap_or_default(), format: format as i32 };
    let e = client.export(conn.request(request)?).await.map_err(explain)?.into_inner();
    let out = args.out.unwrap_or_else(|| e.file_name.clone().into());
    std::fs::write(&out, &e.content).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("wrote {} rows ({} bytes) to {}", e.rows, e.content.len(), out.display());
    Ok(())
}
