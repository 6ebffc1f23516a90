//! The organisation from the command line: its products, accounts and budgets, and the
//! role patterns that decide which roles are broad and which dedicated.

use clap::Subcommand;
use finops_proto::v1 as pb;
use finops_proto::v1::organisation_service_client::OrganisationServiceClient;
use serde_json::json;

use super::{Connection, explain, print_rows, text};

/// The organisation.
#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Products, accounts and budgets (the default).
    Show {
        /// As the log stood at this instant (RFC 3339).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// The role patterns in force (now or --as-of), and who set them.
    RolePatterns {
        /// As of this instant (RFC 3339).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Set the broad and dedicated role patterns (FinOps Lead; globs over role names).
    SetRolePatterns {
        /// Broad shared roles, comma-separated (e.g. *AdministratorAccess*).
        #[arg(long, value_delimiter = ',')]
        broad: Vec<String>,
        /// Dedicated roles besides the generated ones, comma-separated (e.g. finops-ai-*).
        #[arg(long, value_delimiter = ',')]
        dedicated: Vec<String>,
        /// Why.
        #[arg(long)]
        rationale: String,
    },
}

fn patterns_json(p: &pb::RolePatterns) -> serde_json::Value {
    json!({"broad": p.broad, "dedicated": p.dedicated, "source": p.source, "set_by": p.set_by, "set_at": p.set_at, "rationale": p.rationale})
}

/// `finops org …` (`finops org` alone shows the organisation).
pub async fn org(conn: &Connection, command: Option<OrgCommand>) -> anyhow::Result<()> {
    let mut client = OrganisationServiceClient::new(conn.channel().await?);
    let show_patterns = |p: &pb::RolePatterns| {
        conn.print(patterns_json(p), |v| {
            for key in ["broad", "dedicated", "source", "set_by", "set_at", "rationale"] {
                println!("{key:<10} {}", text(&v[key]));
            }
        })
    };
    match command.unwrap_or(OrgCommand::Show { as_of: None }) {
        OrgCommand::Show { as_of } => {
            let o = client
                .get_organisation(conn.request(pb::GetOrganisationRequest { as_of: as_of.unwrap_or_default() })?)
                .await
                .map_err(explain)?
                .into_inner();
            let value = json!({
                "products": o.products.iter().map(|p| json!({"product_id": p.product_id, "name": p.name, "owner": p.owner, "portfolio_id": p.portfolio_id})).collect::<Vec<_>>(),
                "accounts": o.accounts.iter().map(|a| json!({"account_id": a.account_id, "name": a.name})).collect::<Vec<_>>(),
                "budgets": o.budgets.iter().map(|b| json!({"budget_id": b.budget_id, "account_id": b.account_id, "name": b.name, "cost_centre": b.cost_centre})).collect::<Vec<_>>(),
            });
            conn.print(value, |v| {
                let rows = v["products"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| ["product_id", "name", "owner"].iter().map(|k| text(&p[*k])).collect());
                print_rows(&["PRODUCT", "NAME", "OWNER"], rows.collect());
                println!();
                let rows =
                    v["budgets"].as_array().into_iter().flatten().map(|b| {
                        ["budget_id", "account_id", "name", "cost_centre"].iter().map(|k| text(&b[*k])).collect()
                    });
                print_rows(&["BUDGET", "ACCOUNT", "NAME", "COST CENTRE"], rows.collect());
            });
        }
        OrgCommand::RolePatterns { as_of } => {
            let message = pb::GetRolePatternsRequest { as_of: as_of.unwrap_or_default() };
            show_patterns(&client.get_role_patterns(conn.request(message)?).await.map_err(explain)?.into_inner());
        }
        OrgCommand::SetRolePatterns { broad, dedicated, rationale } => {
            let message = pb::SetRolePatternsRequest { broad, dedicated, rationale, request_id: conn.request_id() };
            show_patterns(&client.set_role_patterns(conn.request(message)?).await.map_err(explain)?.into_inner());
        }
    }
    Ok(())
}
