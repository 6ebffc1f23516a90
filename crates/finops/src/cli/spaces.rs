//! Spaces from the command line: claims of roles, guardrails and workspaces (claim,
//! list, release, reassign) and workloads (list, show, estimate, business case, budget).

use clap::{Args, Subcommand};
use finops_proto::v1 as pb;
use finops_proto::v1::spaces_service_client::SpacesServiceClient;
use serde_json::{Value, json};

use super::{Connection, all_pages, cents, explain, print_rows, text};

/// What a claim names: a role (with its account), a guardrail ARN or a workspace.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ResourceArgs {
    /// A role name or ARN (with --account for a name).
    #[arg(long)]
    role: Option<String>,
    /// A Bedrock guardrail ARN.
    #[arg(long)]
    guardrail: Option<String>,
    /// A Claude Platform workspace.
    #[arg(long)]
    workspace: Option<String>,
}

/// Claim a role, guardrail or workspace for an approved workload (Product Owner).
#[derive(Debug, Args)]
pub struct ClaimArgs {
    /// businessRequests/{uuid} of the approved workload.
    #[arg(long)]
    request: String,
    /// AWS account of the role (with --role NAME).
    #[arg(long, default_value = "")]
    account: String,
    #[command(flatten)]
    resource: ResourceArgs,
    /// Effective from (YYYY-MM-DD); default: the start of this month.
    #[arg(long, default_value = "")]
    from: String,
}

/// Claims: list, release, reassign.
#[derive(Debug, Subcommand)]
pub enum ClaimsCommand {
    /// Claims (a Product Owner sees their own workloads').
    List {
        /// As the log stood at this instant (RFC 3339).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// End a claim after a date (its Product Owner or the FinOps Lead).
    Release {
        /// claims/{resource key}
        name: String,
        /// Last day covered (YYYY-MM-DD).
        #[arg(long)]
        until: String,
        /// Why.
        #[arg(long)]
        rationale: String,
    },
    /// Hand a resource to another workload from a date (FinOps Lead).
    Reassign {
        /// businessRequests/{uuid} of the workload that takes it.
        #[arg(long)]
        request: String,
        /// AWS account of the role (with --role NAME).
        #[arg(long, default_value = "")]
        account: String,
        #[command(flatten)]
        resource: ResourceArgs,
        /// First day (YYYY-MM-DD); default: the start of this month.
        #[arg(long, default_value = "")]
        from: String,
        /// Why.
        #[arg(long)]
        rationale: String,
    },
}

/// Workloads: list, show (with the forecast), estimate, business case, budget.
#[derive(Debug, Subcommand)]
pub enum WorkloadsCommand {
    /// Workloads (a Product Owner sees their own).
    List {
        /// As the log stood at this instant (RFC 3339).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// One workload and its forecast: the month to date of the latest month with CUR, its
    /// burn per day and the day it crosses its monthly estimate.
    Show {
        /// workloads/{uuid}, the workload's id, or its name.
        workload: String,
        /// As the log and CUR stood at this instant (RFC 3339).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// State a workload's monthly estimate (its Product Owner).
    Estimate {
        /// businessRequests/{uuid} of the approved workload.
        request: String,
        /// Dollars per month.
        #[arg(long)]
        dollars: f64,
        /// From (YYYY-MM-DD).
        #[arg(long, default_value = "")]
        start: String,
        /// Until (YYYY-MM-DD).
        #[arg(long, default_value = "")]
        end: String,
        /// Expected monthly growth, percent.
        #[arg(long)]
        growth_percent: Option<f64>,
    },
    /// Declare a workload's business case (its Product Owner).
    BusinessCase {
        /// businessRequests/{uuid} of the approved workload.
        request: String,
        /// Annual cost saving, dollars.
        #[arg(long)]
        saving_dollars: Option<f64>,
        /// Annual revenue driven, dollars.
        #[arg(long)]
        revenue_dollars: Option<f64>,
    },
    /// Move a workload to another budget of its account from a date (FinOps Lead).
    Budget {
        /// businessRequests/{uuid} of the approved workload.
        request: String,
        /// The budget_id (see `finops org show`).
        #[arg(long)]
        budget: String,
        /// First day charged to it (YYYY-MM-DD).
        #[arg(long)]
        from: String,
        /// Why.
        #[arg(long)]
        rationale: String,
    },
}

/// The resource named on the command line, for either request that names one.
enum Named {
    Role(pb::IamRoleRef),
    Guardrail(String),
    Workspace(String),
}

impl ResourceArgs {
    fn named(self, account: String) -> anyhow::Result<Named> {
        match (self.role, self.guardrail, self.workspace) {
            (Some(role_name_or_arn), _, _) => Ok(Named::Role(pb::IamRoleRef { account_id: account, role_name_or_arn })),
            (_, Some(arn), _) => Ok(Named::Guardrail(arn)),
            (_, _, Some(name)) => Ok(Named::Workspace(name)),
            _ => anyhow::bail!("give --role, --guardrail or --workspace"),
        }
    }
}

impl From<Named> for pb::claim_resource_request::Resource {
    fn from(n: Named) -> Self {
        match n {
            Named::Role(r) => Self::Role(r),
            Named::Guardrail(arn) => Self::GuardrailArn(arn),
            Named::Workspace(name) => Self::Workspace(name),
        }
    }
}

impl From<Named> for pb::reassign_resource_request::Resource {
    fn from(n: Named) -> Self {
        match n {
            Named::Role(r) => Self::Role(r),
            Named::Guardrail(arn) => Self::GuardrailArn(arn),
            Named::Workspace(name) => Self::Workspace(name),
        }
    }
}

fn claim_json(c: &pb::Claim) -> Value {
    json!({
        "name": c.name, "status": c.status, "workload_id": c.workload_id, "reserved_for": c.reserved_for,
        "periods": c.periods.iter().map(|p| json!({"workload_id": p.workload_id, "from": p.from, "until": p.until})).collect::<Vec<_>>(),
    })
}

fn print_claim(conn: &Connection, c: &pb::Claim) {
    conn.print(claim_json(c), |v| {
        let last = v["periods"].as_array().and_then(|p| p.last()).cloned().unwrap_or(Value::Null);
        println!(
            "{} {} for workload {} from {}",
            text(&v["name"]),
            text(&v["status"]),
            text(&v["workload_id"]),
            text(&last["from"])
        )
    });
}

fn workload_json(w: &pb::Workload) -> Value {
    json!({
        "workload_id": w.workload_id, "business_request": w.business_request, "name": w.name, "owner": w.owner,
        "role_name": w.role_name, "budget_id": w.budget_id,
        "estimate_cents": w.estimate.as_ref().and_then(|e| e.monthly.as_ref()).and_then(|m| match m.amount {
            Some(pb::monthly_amount::Amount::Cents(c)) => Some(c),
            _ => None,
        }),
        "business_case": w.business_case.as_ref().map(|b| json!({
            "annual_cost_saving_cents": b.annual_cost_saving_cents, "annual_revenue_driving_cents": b.annual_revenue_driving_cents,
        })),
        "forecast": w.forecast.as_ref().map(|f| json!({
            "period": f.period, "through": f.through, "batch": f.batch,
            "month_to_date_cents": f.month_to_date_cents, "month_estimate_cents": f.month_estimate_cents,
            "burn_per_day_cents": f.burn_per_day_cents, "projected_month_cents": f.projected_month_cents,
            "crossing_date": f.crossing_date, "crossed": f.crossed,
        })),
    })
}

/// `finops claim …`
pub async fn claim(conn: &Connection, a: ClaimArgs) -> anyhow::Result<()> {
    let mut client = SpacesServiceClient::new(conn.channel().await?);
    let resource = a.resource.named(a.account)?.into();
    let message = pb::ClaimResourceRequest {
        business_request: a.request,
        resource: Some(resource),
        effective_from: a.from,
        request_id: conn.request_id(),
    };
    let c = client.claim_resource(conn.request(message)?).await.map_err(explain)?.into_inner();
    print_claim(conn, &c);
    Ok(())
}

/// `finops claims …`
pub async fn claims(conn: &Connection, command: ClaimsCommand) -> anyhow::Result<()> {
    let mut client = SpacesServiceClient::new(conn.channel().await?);
    match command {
        ClaimsCommand::List { as_of } => {
            let all = all_pages(|page_token| {
                let mut client = client.clone();
                let request = conn.request(pb::ListClaimsRequest {
                    as_of: as_of.clone().unwrap_or_default(),
                    page_size: 1000,
                    page_token,
                });
                async move {
                    let page = client.list_claims(request?).await.map_err(explain)?.into_inner();
                    Ok((page.claims, page.next_page_token))
                }
            })
            .await?;
            conn.print(Value::Array(all.iter().map(claim_json).collect()), |v| {
                let rows = v.as_array().into_iter().flatten().map(|c| {
                    let last = c["periods"].as_array().and_then(|p| p.last()).cloned().unwrap_or(Value::Null);
                    vec![
                        text(&c["name"]),
                        text(&c["status"]),
                        text(&c["workload_id"]),
                        text(&last["from"]),
                        text(&last["until"]),
                    ]
                });
                print_rows(&["CLAIM", "STATUS", "WORKLOAD", "FROM", "UNTIL"], rows.collect());
            });
        }
        ClaimsCommand::Release { name, until, rationale } => {
            let message =
                pb::ReleaseResourceRequest { name, effective_until: until, rationale, request_id: conn.request_id() };
            let c = client.release_resource(conn.request(message)?).await.map_err(explain)?.into_inner();
            print_claim(conn, &c);
        }
        ClaimsCommand::Reassign { request, account, resource, from, rationale } => {
            let resource = resource.named(account)?.into();
            let message = pb::ReassignResourceRequest {
                business_request: request,
                resource: Some(resource),
                effective_from: from,
                rationale,
                request_id: conn.request_id(),
            };
            let c = client.reassign_resource(conn.request(message)?).await.map_err(explain)?.into_inner();
            print_claim(conn, &c);
        }
    }
    Ok(())
}

/// Every workload the caller can see, as of `as_of` (empty: now), page by page.
async fn all_workloads(
    conn: &Connection,
    client: &SpacesServiceClient<tonic::transport::Channel>,
    as_of: &str,
) -> anyhow::Result<Vec<pb::Workload>> {
    all_pages(|page_token| {
        let mut client = client.clone();
        let request = conn.request(pb::ListWorkloadsRequest { as_of: as_of.to_owned(), page_size: 1000, page_token });
        async move {
            let page = client.list_workloads(request?).await.map_err(explain)?.into_inner();
            Ok((page.workloads, page.next_page_token))
        }
    })
    .await
}

/// `finops workloads …`
pub async fn workloads(conn: &Connection, command: WorkloadsCommand) -> anyhow::Result<()> {
    let mut client = SpacesServiceClient::new(conn.channel().await?);
    let show = |w: &pb::Workload| {
        conn.print(workload_json(w), |v| {
            for key in ["name", "workload_id", "business_request", "owner", "role_name", "budget_id", "estimate_cents"]
            {
                println!("{key:<17} {}", text(&v[key]));
            }
        })
    };
    match command {
        WorkloadsCommand::List { as_of } => {
            let all = all_workloads(conn, &client, &as_of.unwrap_or_default()).await?;
            conn.print(Value::Array(all.iter().map(workload_json).collect()), |v| {
                let rows = v.as_array().into_iter().flatten().map(|w| {
                    ["name", "owner", "role_name", "business_request", "estimate_cents"]
                        .iter()
                        .map(|k| text(&w[*k]))
                        .collect()
                });
                print_rows(&["WORKLOAD", "OWNER", "ROLE", "REQUEST", "ESTIMATE (CENTS)"], rows.collect());
            });
        }
        WorkloadsCommand::Show { workload, as_of } => {
            let as_of = as_of.unwrap_or_default();
            let name = if uuid::Uuid::parse_str(workload.trim_start_matches("workloads/")).is_ok() {
                workload
            } else {
                // A name: the workload of that name the caller can see, as of the same instant.
                let all = all_workloads(conn, &client, &as_of).await?;
                let found: Vec<&pb::Workload> = all.iter().filter(|w| w.name == workload).collect();
                match found.as_slice() {
                    [one] => one.workload_id.clone(),
                    [] => {
                        anyhow::bail!("no workload named `{workload}` that you can see (see `finops workloads list`)")
                    }
                    _ => anyhow::bail!("{} workloads are named `{workload}`: name one by its id", found.len()),
                }
            };
            let w = client
                .get_workload(conn.request(pb::GetWorkloadRequest { name, as_of })?)
                .await
                .map_err(explain)?
                .into_inner();
            conn.print(workload_json(&w), |v| {
                for key in
                    ["name", "workload_id", "business_request", "owner", "role_name", "budget_id", "estimate_cents"]
                {
                    println!("{key:<17} {}", text(&v[key]));
                }
                let f = &v["forecast"];
                if f.is_null() {
                    println!("{:<17} no CUR yet", "forecast");
                } else {
                    println!("{:<17} {} through {}", "period", text(&f["period"]), text(&f["through"]));
                    println!("{:<17} {}", "forecast", super::cards::forecast_words(f));
                }
            });
        }
        WorkloadsCommand::Estimate { request, dollars, start, end, growth_percent } => {
            let message = pb::SetWorkloadEstimateRequest {
                business_request: request,
                estimate: Some(pb::WorkloadEstimate {
                    monthly: Some(pb::MonthlyAmount {
                        amount: Some(pb::monthly_amount::Amount::Cents(cents(dollars)?)),
                    }),
                    start_date: start,
                    end_date: end,
                    monthly_growth_percent: growth_percent,
                }),
                request_id: conn.request_id(),
            };
            show(&client.set_workload_estimate(conn.request(message)?).await.map_err(explain)?.into_inner());
        }
        WorkloadsCommand::BusinessCase { request, saving_dollars, revenue_dollars } => {
            let message = pb::DeclareBusinessCaseRequest {
                business_request: request,
                business_case: Some(pb::BusinessCase {
                    annual_cost_saving_cents: saving_dollars.map(cents).transpose()?,
                    annual_revenue_driving_cents: revenue_dollars.map(cents).transpose()?,
                }),
                request_id: conn.request_id(),
            };
            show(&client.declare_business_case(conn.request(message)?).await.map_err(explain)?.into_inner());
        }
        WorkloadsCommand::Budget { request, budget, from, rationale } => {
            let message = pb::ChangeWorkloadBudgetRequest {
                business_request: request,
                budget_id: budget,
                effective_from: from,
                rationale,
                request_id: conn.request_id(),
            };
            show(&client.change_workload_budget(conn.request(message)?).await.map_err(explain)?.into_inner());
        }
    }
    Ok(())
}
