//! What gap actions hand people: notifications, the CUR export command that turns caller
//! identity on, the deny policy that blocks a principal. Pure: generated from the gap.

use chrono::NaiveDate;

use super::{ActionOutcome, GapIdentity, Notification};
use crate::artefacts::{CliCommand, shell_quote};

/// The notification that asks a Product Owner to claim what they own (Notify PO).
pub fn claim_notification(identity: &GapIdentity, owner: &str, spend_cents: i64) -> Notification {
    Notification {
        to: owner.to_owned(),
        subject: format!("Claim {} in Spaces", identity.principal_or_anchor()),
        body: format!(
            "{} in account {} has ${}.{:02} of AI spend that no workload has claimed. Claim it in Spaces \
             for the workload it serves, so the spend is charged to that workload's budget.",
            identity.principal_or_anchor(),
            identity.account,
            spend_cents / 100,
            (spend_cents % 100).abs()
        ),
        due: None,
    }
}

/// The notification that asks a Product Owner for a business case by `due`.
pub fn business_case_notification(owner: &str, workload: &str, due: NaiveDate) -> Notification {
    Notification {
        to: owner.to_owned(),
        subject: format!("Declare the business case of {workload} by {due}"),
        body: format!(
            "{workload} has AI spend or an estimate but no declared business case, so Finance cannot tie \
             its spend to an intended value. Declare its annual cost saving or revenue driving in Spaces by {due}."
        ),
        due: Some(due),
    }
}

/// Guided CUR setup for an account whose export lacks caller identity: the steps and the
/// AWS CLI command that create a CUR 2.0 export with `INCLUDE_IAM_PRINCIPAL_DATA`
/// (CUR-REFERENCE.md §1.1), to be run in the account's payer (management) account.
pub fn guided_cur_setup(account: &str, bucket: &str) -> ActionOutcome {
    let query = "SELECT bill_billing_period_start_date, bill_payer_account_id, line_item_usage_account_id, \
                 line_item_line_item_type, line_item_usage_start_date, line_item_usage_end_date, \
                 line_item_product_code, line_item_usage_type, line_item_operation, line_item_resource_id, \
                 line_item_usage_amount, line_item_unblended_cost, line_item_net_unblended_cost, \
                 bill_billing_entity, product, tags, line_item_iam_principal FROM COST_AND_USAGE_REPORT";
    let export = serde_json::json!({
        "Name": "finops-center-cur2",
        "DataQuery": {
            "QueryStatement": query,
            "TableConfigurations": { "COST_AND_USAGE_REPORT": {
                "INCLUDE_IAM_PRINCIPAL_DATA": "TRUE",
                "INCLUDE_RESOURCES": "TRUE",
                "TIME_GRANULARITY": "DAILY"
            } }
        },
        "DestinationConfigurations": { "S3Destination": {
            "S3Bucket": bucket,
            "S3Prefix": "cur2",
            "S3Region": "us-east-1",
            "S3OutputConfigurations": {
                "OutputType": "CUSTOM", "Format": "PARQUET", "Compression": "PARQUET", "Overwrite": "OVERWRITE_REPORT"
            }
        } },
        "RefreshCadence": { "Frequency": "SYNCHRONOUS" }
    });
    ActionOutcome {
        resources: vec![],
        notification: None,
        steps: vec![
            format!("Account {account} bills AI spend with no caller identity, so none of it can be charged to a workload."),
            "In the payer (management) account, create a CUR 2.0 export with caller identity (IAM principal) \
             allocation data — the command below; in the console: Billing and Cost Management → Data Exports → \
             Create → Standard data export (CUR 2.0) → Additional export content → \"Include caller identity \
             (IAM principal) allocation data\"."
                .to_owned(),
            format!("Let the bucket {} accept deliveries from bcm-data-exports.amazonaws.com (Data Exports does this when created in the console).", shell_quote(bucket)),
            "Point FinOps Center at the export prefix: `finops cur ingest s3://BUCKET/cur2/` once the first delivery lands (up to 24 hours)."
                .to_owned(),
        ],
        commands: vec![CliCommand {
            argv: vec![
                "aws".into(),
                "bcm-data-exports".into(),
                "create-export".into(),
                "--region".into(),
                "us-east-1".into(),
                "--export".into(),
                export.to_string(),
            ],
        }],
    }
}

/// Block: the commands that deny `principal` (a role or IAM user name) every Bedrock
/// invocation, as an inline deny policy (an explicit deny wins over any allow).
pub fn block_principal(principal: &str, is_user: bool) -> ActionOutcome {
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "FinOpsCenterBlockedNotBusinessApproved",
            "Effect": "Deny",
            "Action": ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream", "bedrock:Converse", "bedrock:ConverseStream"],
            "Resource": "*"
        }]
    });
    let (op, flag) = if is_user { ("put-user-policy", "--user-name") } else { ("put-role-policy", "--role-name") };
    let argv = ["aws", "iam", op, flag, principal, "--policy-name", "finops-center-deny-bedrock", "--policy-document"]
        .map(String::from)
        .into_iter()
        .chain([policy.to_string()])
        .collect();
    ActionOutcome {
        resources: vec![],
        notification: None,
        steps: vec![format!(
            "Run in the principal's account: an explicit deny of Bedrock invocation for {principal}; remove the \
             policy (`aws iam delete-{}-policy`) when a Business Request is approved.",
            if is_user { "user" } else { "role" }
        )],
        commands: vec![CliCommand { argv }],
    }
}
