#!/usr/bin/env bash
# The README's Allocation Gaps walkthrough, runnable over grpcurl: the gaps view, one
# gap's trail, an action, a resolution and its recall, and a gap that resolves by itself
# after its guardrail is claimed. Needs a server whose store holds an ingested CUR month
# and an approved Business Request (CI runs it after scripts/walkthrough.sh and an ingest).
# Usage: scripts/gaps_walkthrough.sh HOST:PORT [path/to/finops]
set -euo pipefail
addr=${1:-127.0.0.1:50051}
finops=${2:-finops}

FL=$("$finops" dev-token --subject fl-ana --role finops_lead)
call() { # call TOKEN METHOD JSON
  grpcurl -plaintext -H "authorization: Bearer $1" -d "$3" "$addr" "finops.v1.$2"
}
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d' + sys.argv[1]))" "$1"; }
first_gap() { # first_gap KIND → the name of its first active gap (waits for the detector)
  for _ in $(seq 1 200); do
    name=$(call "$FL" GapService/ListGaps "{\"kind\": \"$1\", \"state\": \"active\"}" \
      | field '.get("gaps", [{}])[0].get("name", "")')
    [ -n "$name" ] && { echo "$name"; return; }
    sleep 0.2
  done
  echo "no active $1 gap" >&2
  return 1
}

echo "1. The gaps view: totals per scenario"
first_gap attribution_not_enabled >/dev/null
call "$FL" GapService/ListGaps '{"page_size": 1}' \
  | field '["totals"]' | python3 -c "import ast,sys; [print('  ', t['scenario'], t['gaps'], t['cents']) for t in ast.literal_eval(sys.stdin.read())]"

echo "2. Guided CUR setup for an account without caller identity"
gap=$(first_gap attribution_not_enabled)
call "$FL" GapService/ActOnGap "{\"name\": \"$gap\", \"action\": \"guided_cur_setup\",
  \"rationale\": \"Turn caller identity on\"}" | field '["status"] + " " + d["lastAction"]["commands"][0][:60]'

echo "3. Resolved by decision, then the decision recalled (the original stays in the trail)"
gap=$(first_gap unattributed_spend)
call "$FL" GapService/ResolveGap "{\"name\": \"$gap\", \"rationale\": \"Accepted as shared platform cost\"}" \
  | field '["status"]'
call "$FL" GapService/RecallGapDecision "{\"name\": \"$gap\", \"rationale\": \"Not shared after all\"}" \
  | field '["status"] + " recalled=" + str(d["recalled"]) + " " + " → ".join(h["event"] for h in d["history"])'

echo "4. Claim in Spaces: the guardrail goes to an approved workload; the gap resolves by itself"
request=$(call "$FL" BusinessRequestService/ListBusinessRequests '{"status": "REQUEST_STATUS_APPROVED"}' \
  | field '["businessRequests"][0]["name"]')
gap=$(first_gap unallocated_guardrail)
call "$FL" GapService/ActOnGap "{\"name\": \"$gap\", \"action\": \"claim_in_spaces\",
  \"business_request\": \"$request\", \"rationale\": \"The support pilot's content filter\"}" \
  | field '["status"] + " " + d["lastAction"]["resources"][0]'
for _ in $(seq 1 200); do
  status=$(call "$FL" GapService/GetGap "{\"name\": \"$gap\"}" | field '["status"]')
  [ "$status" = resolved ] && break
  sleep 0.2
done
call "$FL" GapService/GetGap "{\"name\": \"$gap\"}" \
  | field '["status"] + ": " + d["history"][-1]["who"] + " — " + d["history"][-1]["why"]'
[ "$status" = resolved ]

echo "5. Gateway mapping rules: the LLM gateway's gw-user-1* sessions, then its tenant-2 calls"
call "$FL" GatewayRuleService/RecordGatewayRule "{\"account\": \"111122223333\", \"role_name\": \"llm-gateway\",
  \"session_pattern\": \"gw-user-1*\", \"business_request\": \"$request\", \"effective_from\": \"2026-11-01\",
  \"rationale\": \"Users 1x are the support agents\"}" \
  | field '["name"] + " " + d["state"] + ": " + d["history"][0]["what"]'
call "$FL" GatewayRuleService/RecordGatewayRule "{\"account\": \"111122223333\", \"role_name\": \"llm-gateway\",
  \"principal_tag\": \"tenant=tenant-2\", \"business_request\": \"$request\", \"effective_from\": \"2026-11-15\",
  \"rationale\": \"Tenant 2 is the claims desk\"}" \
  | field '["name"] + " " + d["state"] + ": " + d["history"][0]["what"]'
rules=$(call "$FL" GatewayRuleService/ListGatewayRules '{}' | field '.get("rules", []).__len__()')
echo "   $rules rules in force"
[ "$rules" = 2 ]
