#!/usr/bin/env bash
# The README's walkthrough, runnable: from a Product Owner's request to a claimed role,
# over gRPC with grpcurl. CI runs it against a fresh `finops serve --dev`.
# Usage: scripts/walkthrough.sh HOST:PORT [path/to/finops]
set -euo pipefail
addr=${1:-127.0.0.1:50051}
finops=${2:-finops}

token() { "$finops" dev-token --subject "$1" --role "$2"; }
PO=$(token po-maria product_owner)
FL=$(token fl-ana finops_lead)
CE=$(token ce-li cloud_engineer)
call() { # call TOKEN METHOD JSON
  grpcurl -plaintext -H "authorization: Bearer $1" -d "$3" "$addr" "finops.v1.$2"
}
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d' + sys.argv[1]))" "$1"; }

echo "0. The FinOps Lead sets up the organisation: a portfolio and Maria's product"
call "$FL" OrganisationService/AddPortfolio '{"portfolio_id": "0192f0c4-2222-7000-8000-000000000001",
  "name": "Customer Experience", "owner": "pf-omar"}' >/dev/null
call "$FL" OrganisationService/AddProduct '{"product_id": "0192f0c4-1111-7000-8000-000000000001",
  "portfolio_id": "0192f0c4-2222-7000-8000-000000000001", "name": "Support Assistant", "owner": "po-maria"}' >/dev/null

echo "1. The FinOps Lead approves a model in the catalog"
call "$FL" CatalogService/ApproveModel '{
  "platform": "PLATFORM_AMAZON_BEDROCK", "model_id": "anthropic.claude-3-haiku-20240307-v1:0",
  "scope": {"account_ids": ["123456789012"], "regions": ["us-east-1"],
            "actions": ["INVOKE_ACTION_INVOKE_MODEL", "INVOKE_ACTION_INVOKE_MODEL_WITH_RESPONSE_STREAM",
                        "INVOKE_ACTION_CONVERSE", "INVOKE_ACTION_CONVERSE_STREAM"]},
  "rationale": "Vetted for customer data"}' >/dev/null

echo "2. A Product Owner submits a Business Request"
request=$(call "$PO" BusinessRequestService/SubmitBusinessRequest '{
  "product_id": "0192f0c4-1111-7000-8000-000000000001",
  "details": {"workload_name": "Support Bot",
    "operations": {"workload_type": "WORKLOAD_TYPE_CUSTOMER_SUPPORT",
      "description": "Answers tier-1 tickets", "availability": "AVAILABILITY_STANDARD",
      "monthly_budget": {"cents": "250000"}}}}' | field '["name"]')
echo "   $request"

echo "3. The FinOps Lead approves it on Bedrock"
role=$(call "$FL" BusinessRequestService/ApproveBusinessRequest "{
  \"name\": \"$request\", \"rationale\": \"Fits the support pilot\",
  \"review\": {\"platform\": \"PLATFORM_AMAZON_BEDROCK\", \"model_id\": \"anthropic.claude-3-haiku-20240307-v1:0\",
    \"account_id\": \"123456789012\", \"region\": \"us-east-1\", \"confirmed_estimate\": {\"cents\": \"310000\"}}}" \
  | field '["approval"]["roleName"]')
echo "   role $role"

echo "4. The Cloud Engineer works the task queue"
task=""
for _ in $(seq 1 100); do
  task=$(call "$CE" TaskService/ListTasks '{"status": "open"}' | field '.get("tasks", [{}])[0].get("name", "")')
  [ -n "$task" ] && break
  sleep 0.1
done
echo "   $task"
for step in 1 2 3; do
  call "$CE" TaskService/CompleteTaskStep "{\"name\": \"$task\", \"step\": $step}" >/dev/null
done
call "$CE" TaskService/MarkTaskImplemented "{\"name\": \"$task\"}" | field '["status"]'

echo "5. The Product Owner claims the role"
call "$PO" SpacesService/ClaimResource "{\"business_request\": \"$request\",
  \"role\": {\"account_id\": \"123456789012\", \"role_name_or_arn\": \"$role\"}}" | field '["name"] + " " + d["status"]'

echo "6. An auditor reads the request's history: who decided what, when and why"
AUDITOR=$(token au-ines auditor)
call "$AUDITOR" HistoryService/GetHistory "{\"name\": \"$request\"}" \
  | field '["entries"][-1]["event"] + " by " + d["entries"][-1]["who"] + ": " + d["entries"][-1]["why"]'
