//! `finops mcp`: Agent Bill's tools for any MCP client (an LLM assistant), with the
//! official Rust SDK (`rmcp`), over stdio (`finops mcp --token …`) or streamable HTTP
//! (`finops mcp --http ADDR`). Each tool is one `AgentBillService.Ask` naming the tool,
//! sent to the server with the caller's token — over stdio the one `finops mcp` was started
//! with; over HTTP the bearer token of each request, so every session acts as the person
//! whose token it carries, and a request without one is refused with 401 before any tool
//! runs. A tool sees what the token's holder may see, is refused as they are, and quotes
//! the same figures. A refusal is an MCP error carrying the gRPC status's message.

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, ErrorCode, ServerCapabilities, ServerConfig};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData, ServerHandler, ServiceExt, schemars, tool, tool_handler, tool_router};
use serde::Deserialize;
use serde_json::json;
use tonic::transport::Channel;

use finops_proto::v1 as pb;
use finops_proto::v1::agent_bill_service_client::AgentBillServiceClient;

use super::Connection;

/// JSON-RPC's implementation-defined server error: a call the service refused or failed,
/// with the gRPC code in `data.grpc_code`.
const REFUSED: ErrorCode = ErrorCode(-32000);

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
struct PeriodArgs {
    /// Billing period, YYYY-MM (default: the latest with CUR).
    #[serde(default)]
    period: Option<String>,
    /// RFC 3339 instant: answer as the log and CUR stood then (default: now).
    #[serde(default)]
    as_of: Option<String>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
struct SpendArgs {
    /// Billing period, YYYY-MM (default: the latest with CUR).
    #[serde(default)]
    period: Option<String>,
    /// A workload's name, to ask about its spend alone (default: all the caller sees).
    #[serde(default)]
    workload: Option<String>,
    /// RFC 3339 instant (default: now).
    #[serde(default)]
    as_of: Option<String>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
struct OnTrackArgs {
    /// A workload's name, to ask about it alone (default: every workload the caller sees).
    #[serde(default)]
    workload: Option<String>,
    /// RFC 3339 instant (default: now).
    #[serde(default)]
    as_of: Option<String>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
struct AsOfArgs {
    /// RFC 3339 instant (default: now).
    #[serde(default)]
    as_of: Option<String>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
struct AcceptCardArgs {
    /// The card: spendCards/{uuid}.
    card: String,
    /// The version accepted (default: the current one).
    #[serde(default)]
    version: Option<u32>,
    /// Why the figures are right, recorded with the acceptance.
    rationale: String,
    /// The caller's explicit go-ahead: without `true` nothing is done and the answer says
    /// what would be.
    #[serde(default)]
    confirm: bool,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
struct DisputeCardArgs {
    /// The card: spendCards/{uuid}.
    card: String,
    /// The version disputed (default: the current one).
    #[serde(default)]
    version: Option<u32>,
    /// The flagged lines disputed, as the card keys them (model/token type/region; default:
    /// every flagged line).
    #[serde(default)]
    lines: Vec<String>,
    /// Why these lines are not the workload's, recorded with the dispute.
    rationale: String,
    /// The caller's explicit go-ahead: without `true` nothing is done.
    #[serde(default)]
    confirm: bool,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
struct GapArgs {
    /// The gap: gaps/{uuid} (the `gaps` tool and ListGaps name them).
    gap: String,
    /// RFC 3339 instant (default: now).
    #[serde(default)]
    as_of: Option<String>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
struct ActOnGapArgs {
    /// The gap: gaps/{uuid}.
    gap: String,
    /// One of the gap's actions (explain_gap lists them): recommend_dedicated_role,
    /// approve, block, add_scope, flag_for_cloud_engineer, notify_product_owner,
    /// claim_in_spaces, guided_cur_setup, request_business_case, map_gateway_sessions.
    action: String,
    /// Why, recorded with the decision.
    rationale: String,
    /// claim_in_spaces, approve: the approved request whose workload takes the resource
    /// (businessRequests/{uuid}).
    #[serde(default)]
    business_request: Option<String>,
    /// notify_product_owner (or a new request) when the gap names no Product Owner: whom
    /// it concerns.
    #[serde(default)]
    product_owner: Option<String>,
    /// The caller's explicit go-ahead: without `true` nothing is done.
    #[serde(default)]
    confirm: bool,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
struct ControlArgs {
    /// The workload: its name (as ListWorkloads shows it) or workloads/{uuid}.
    workload: String,
    /// Why, recorded with the decision (who and when are the caller and now).
    rationale: String,
    /// The caller's explicit go-ahead: without `true` nothing is done and the answer says
    /// what would be.
    #[serde(default)]
    confirm: bool,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
struct QuestionArgs {
    /// A question in plain English: "Am I on track against my estimate?"
    question: String,
    /// RFC 3339 instant (default: now).
    #[serde(default)]
    as_of: Option<String>,
}

/// The MCP server: Agent Bill's tools, answered by the FinOps Center server.
#[derive(Clone)]
pub struct FinopsMcp {
    channel: Channel,
    /// `Bearer …` of the stdio server's token; over HTTP, each request brings its own.
    authorization: Option<String>,
    #[expect(dead_code, reason = "read through the router the tool_handler macro generates")]
    tool_router: ToolRouter<Self>,
}

/// The caller's `authorization` header: the HTTP request's, else the stdio server's token.
fn authorization(ctx: &RequestContext<RoleServer>, fixed: Option<&str>) -> Result<String, ErrorData> {
    let from_http = ctx
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.headers.get(http::header::AUTHORIZATION))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    from_http
        .or_else(|| fixed.map(str::to_owned))
        .ok_or_else(|| ErrorData::invalid_request("no bearer token: send `Authorization: Bearer <token>`", None))
}

impl FinopsMcp {
    async fn ask(
        &self,
        ctx: &RequestContext<RoleServer>,
        message: pb::AskRequest,
    ) -> Result<CallToolResult, ErrorData> {
        let mut request = tonic::Request::new(message);
        let header = authorization(ctx, self.authorization.as_deref())?
            .parse()
            .map_err(|_| ErrorData::invalid_request("token is not ASCII", None))?;
        request.metadata_mut().insert("authorization", header);
        let answer =
            AgentBillServiceClient::new(self.channel.clone()).ask(request).await.map_err(refused)?.into_inner();
        let mut result = CallToolResult::success(vec![ContentBlock::text(answer.text.clone())]);
        result.structured_content = Some(json!({
            "tool": answer.tool, "period": answer.period, "as_of": answer.as_of, "calls": answer.calls,
            "figures": answer.figures.iter().map(|f| json!({
                "name": f.name, "unit": f.unit, "amount": f.amount, "score": f.score, "text": f.text,
            })).collect::<Vec<_>>(),
        }));
        Ok(result)
    }

    async fn tool(
        &self,
        ctx: &RequestContext<RoleServer>,
        tool: &str,
        period: Option<String>,
        workload: Option<String>,
        as_of: Option<String>,
    ) -> Result<CallToolResult, ErrorData> {
        self.ask(
            ctx,
            pb::AskRequest {
                tool: tool.to_owned(),
                period: period.unwrap_or_default(),
                workload: workload.unwrap_or_default(),
                as_of: as_of.unwrap_or_default(),
                ..Default::default()
            },
        )
        .await
    }
}

impl FinopsMcp {
    async fn control(
        &self,
        ctx: &RequestContext<RoleServer>,
        tool: &str,
        a: ControlArgs,
    ) -> Result<CallToolResult, ErrorData> {
        self.ask(
            ctx,
            pb::AskRequest {
                tool: tool.to_owned(),
                workload: a.workload,
                rationale: a.rationale,
                confirm: a.confirm,
                ..Default::default()
            },
        )
        .await
    }
}

/// A gRPC refusal as an MCP error: the same message, the code in the data.
fn refused(status: tonic::Status) -> ErrorData {
    use tonic_types::StatusExt;
    let violations: Vec<serde_json::Value> = status
        .get_details_bad_request()
        .map(|bad| {
            bad.field_violations.iter().map(|v| json!({"field": v.field, "description": v.description})).collect()
        })
        .unwrap_or_default();
    let code = if status.code() == tonic::Code::InvalidArgument { ErrorCode::INVALID_PARAMS } else { REFUSED };
    let data = json!({ "grpc_code": format!("{:?}", status.code()), "field_violations": violations });
    ErrorData::new(code, status.message().to_owned(), Some(data))
}

#[tool_router]
impl FinopsMcp {
    /// Serves Agent Bill's tools from `channel`, as the holder of `token` (stdio), or as the
    /// bearer of each request (HTTP, `None`).
    pub fn new(channel: Channel, token: Option<&str>) -> Self {
        Self { channel, authorization: token.map(|t| format!("Bearer {t}")), tool_router: Self::tool_router() }
    }

    #[tool(
        description = "Each of the caller's workloads against its monthly estimate: month to date, burn per day, the month projected at that rate, and the day it crosses (or crossed) the estimate.",
        annotations(read_only_hint = true)
    )]
    async fn on_track(
        &self,
        Parameters(a): Parameters<OnTrackArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        self.tool(&ctx, "on_track", None, a.workload, a.as_of).await
    }

    #[tool(
        description = "Where a period's AI dollars went, largest workload first, with the models that explain each.",
        annotations(read_only_hint = true)
    )]
    async fn top_costs(
        &self,
        Parameters(a): Parameters<PeriodArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        self.tool(&ctx, "top_costs", a.period, None, a.as_of).await
    }

    #[tool(
        description = "A period's AI spend for the caller's scope (or one workload): what is charged to a workload and what sits in Allocation Gaps, with the breakdown that explains it — by model, token type, region and caller, and day by day.",
        annotations(read_only_hint = true)
    )]
    async fn spend(
        &self,
        Parameters(a): Parameters<SpendArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        self.tool(&ctx, "spend", a.period, a.workload, a.as_of).await
    }

    #[tool(
        description = "Spend on models used outside their approval (Out of Approved Scope) or with no Business Request (Not Business Approved), with the models.",
        annotations(read_only_hint = true)
    )]
    async fn unapproved_models(
        &self,
        Parameters(a): Parameters<PeriodArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        self.tool(&ctx, "unapproved_models", a.period, None, a.as_of).await
    }

    #[tool(
        description = "The open Allocation Gaps of a period by kind: how many and how many dollars.",
        annotations(read_only_hint = true)
    )]
    async fn gaps(
        &self,
        Parameters(a): Parameters<PeriodArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        self.tool(&ctx, "gaps", a.period, None, a.as_of).await
    }

    #[tool(
        description = "One Allocation Gap explained: its scenario, anchor, account and caller, spend per period, the people it concerns, the last action and the actions that answer it.",
        annotations(read_only_hint = true)
    )]
    async fn explain_gap(
        &self,
        Parameters(a): Parameters<GapArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        self.ask(
            &ctx,
            pb::AskRequest {
                tool: "explain_gap".into(),
                gap: a.gap,
                as_of: a.as_of.unwrap_or_default(),
                ..Default::default()
            },
        )
        .await
    }

    #[tool(
        description = "Act on an Allocation Gap (the FinOps Lead, or a Product Owner where the action is theirs): the same ActOnGap decision, with the caller as who and the rationale as why; the answer lists the steps and commands the action hands over. Does nothing unless `confirm` is true.",
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = true)
    )]
    async fn act_on_gap(
        &self,
        Parameters(a): Parameters<ActOnGapArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        self.ask(
            &ctx,
            pb::AskRequest {
                tool: "act_on_gap".into(),
                gap: a.gap,
                gap_action: a.action,
                rationale: a.rationale,
                business_request: a.business_request.unwrap_or_default(),
                product_owner: a.product_owner.unwrap_or_default(),
                confirm: a.confirm,
                ..Default::default()
            },
        )
        .await
    }

    #[tool(
        description = "Weekly Spend Cards by status, and those waiting for sign-off.",
        annotations(read_only_hint = true)
    )]
    async fn spend_cards(
        &self,
        Parameters(a): Parameters<AsOfArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        self.tool(&ctx, "spend_cards", None, None, a.as_of).await
    }

    #[tool(
        description = "Accept a Weekly Spend Card as its Product Owner: the same AcceptSpendCard decision, with the caller as who and the rationale as why. Does nothing unless `confirm` is true.",
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true)
    )]
    async fn accept_card(
        &self,
        Parameters(a): Parameters<AcceptCardArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        self.ask(
            &ctx,
            pb::AskRequest {
                tool: "accept_card".into(),
                card: a.card,
                version: a.version.unwrap_or(0),
                rationale: a.rationale,
                confirm: a.confirm,
                ..Default::default()
            },
        )
        .await
    }

    #[tool(
        description = "Dispute a Weekly Spend Card's flagged lines as its Product Owner (the FinOps Lead then resolves it): the same DisputeSpendCard decision. Does nothing unless `confirm` is true.",
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true)
    )]
    async fn dispute_card(
        &self,
        Parameters(a): Parameters<DisputeCardArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        self.ask(
            &ctx,
            pb::AskRequest {
                tool: "dispute_card".into(),
                card: a.card,
                version: a.version.unwrap_or(0),
                lines: a.lines,
                rationale: a.rationale,
                confirm: a.confirm,
                ..Default::default()
            },
        )
        .await
    }

    #[tool(
        description = "The kill switch: suspend a workload at once (its Product Owner, or the FinOps Lead) — its IAM roles are tagged finops-suspended=true and denied Bedrock invocation; the answer lists the exact IAM calls. The same SuspendWorkload decision, shown in the workload's history. Does nothing unless `confirm` is true.",
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = true)
    )]
    async fn suspend(
        &self,
        Parameters(a): Parameters<ControlArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        self.control(&ctx, "suspend", a).await
    }

    #[tool(
        description = "Resume a suspended workload (the FinOps Lead): removes exactly what its suspension added. The same ResumeWorkload decision. Does nothing unless `confirm` is true.",
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true)
    )]
    async fn resume(
        &self,
        Parameters(a): Parameters<ControlArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        self.control(&ctx, "resume", a).await
    }

    #[tool(
        description = "Investigations not yet closed: what fired (spend spike, model surge, new principal), on what, the evidence in one line, and who owns it.",
        annotations(read_only_hint = true)
    )]
    async fn investigations(
        &self,
        Parameters(a): Parameters<AsOfArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        self.tool(&ctx, "investigations", None, None, a.as_of).await
    }

    #[tool(
        description = "The AI Governance Maturity score of a period: its four dimensions, the next move and what it is worth, the trend.",
        annotations(read_only_hint = true)
    )]
    async fn maturity(
        &self,
        Parameters(a): Parameters<PeriodArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        self.tool(&ctx, "maturity", a.period, None, a.as_of).await
    }

    #[tool(
        description = "Ask Agent Bill in plain English; the question is mapped to one of the other tools. An unknown question is answered with what can be asked. An action asked for (accept, dispute, suspend, resume) is taken only if the question says \"confirm\".",
        annotations(read_only_hint = false, destructive_hint = true)
    )]
    async fn ask_bill(
        &self,
        Parameters(a): Parameters<QuestionArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        self.ask(
            &ctx,
            pb::AskRequest { question: a.question, as_of: a.as_of.unwrap_or_default(), ..Default::default() },
        )
        .await
    }
}

#[tool_handler]
impl ServerHandler for FinopsMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_instructions(
            "FinOps Center: AI spend governance. Every figure is real, read as the caller may see it; \
             periods are YYYY-MM billing months; as_of reads the past.",
        )
    }
}

/// How `finops mcp` serves.
#[derive(Debug, clap::Args)]
pub struct McpArgs {
    /// Serve over streamable HTTP at this address (`127.0.0.1:8765`; port 0: any) instead
    /// of stdio; each request's `Authorization: Bearer` token is its caller. The URL is
    /// printed on stdout once it listens.
    #[arg(long)]
    pub http: Option<std::net::SocketAddr>,
    /// A `Host` the HTTP server answers besides loopback names (repeat; protects a local
    /// server from DNS rebinding, so list only the names clients use).
    #[arg(long)]
    pub allowed_host: Vec<String>,
}

/// `finops mcp [--http ADDR]`: serves the tools over stdio (as the holder of `--token`)
/// until the client closes it, or over streamable HTTP until interrupted.
pub async fn mcp(conn: &Connection, args: McpArgs) -> anyhow::Result<()> {
    match args.http {
        None => {
            let token = conn.token()?;
            let server = FinopsMcp::new(conn.channel().await?, Some(token)).serve(rmcp::transport::stdio()).await?;
            server.waiting().await?;
            Ok(())
        }
        Some(address) => serve_http(conn.channel().await?, address, args.allowed_host).await,
    }
}

/// Streamable HTTP at `/mcp`: rmcp's session-keeping service behind a check that every
/// request carries a bearer token (401 with `WWW-Authenticate: Bearer` otherwise); the
/// token itself is verified by the FinOps Center server on each tool call.
async fn serve_http(channel: Channel, address: std::net::SocketAddr, hosts: Vec<String>) -> anyhow::Result<()> {
    use http_body_util::BodyExt;
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
    use tower_service::Service;

    let listener = tokio::net::TcpListener::bind(address).await?;
    let local = listener.local_addr()?;
    let mut allowed: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into(), local.ip().to_string()];
    allowed.extend(hosts);
    let config = StreamableHttpServerConfig::default().with_allowed_hosts(allowed);
    let mcp = StreamableHttpService::new(
        move || Ok(FinopsMcp::new(channel.clone(), None)),
        std::sync::Arc::new(LocalSessionManager::default()),
        config,
    );
    println!("MCP over streamable HTTP at http://{local}/mcp");
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let mcp = mcp.clone();
        tokio::spawn(async move {
            let handler = hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let mut mcp = mcp.clone();
                async move {
                    let bearer = request
                        .headers()
                        .get(http::header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.starts_with("Bearer ") && v.len() > "Bearer ".len());
                    if request.uri().path() != "/mcp" {
                        return Ok::<_, std::convert::Infallible>(plain(
                            http::StatusCode::NOT_FOUND,
                            "MCP is served at /mcp",
                        ));
                    }
                    if !bearer {
                        let mut refused = plain(
                            http::StatusCode::UNAUTHORIZED,
                            "send Authorization: Bearer <token> (finops dev-token, or your identity provider's)",
                        );
                        refused
                            .headers_mut()
                            .insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
                        return Ok(refused);
                    }
                    mcp.call(request).await
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new().serve_connection(io, handler).await {
                tracing::debug!(error = %e, "MCP HTTP connection ended");
            }
        });
    }

    fn plain(
        status: http::StatusCode,
        text: &'static str,
    ) -> http::Response<http_body_util::combinators::BoxBody<bytes::Bytes, std::convert::Infallible>> {
        let body = http_body_util::Full::new(bytes::Bytes::from_static(text.as_bytes())).boxed();
        let mut response = http::Response::new(body);
        *response.status_mut() = status;
        response
    }
}
