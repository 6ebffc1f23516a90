#!/usr/bin/env bash
# The README's invocation-log walkthrough, runnable: generated logs with a storm are
# ingested, the investigation opens on the hour, the Product Owner suspends the workload,
# the kill switch's IAM calls land in moto's IAM, the FinOps Lead resumes and they are gone.
# CI runs it against `finops serve --dev --demo --kill-switch automatic` pointed at moto.
# Usage: scripts/logs_walkthrough.sh HOST:PORT FINOPS STORE OBJECTS IAM_ENDPOINT
set -euo pipefail
addr=$1
finops=$2
store=$3
objects=$4
iam=$5
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

token() { "$finops" dev-token --subject "$1" --role "$2"; }
MARIA=$(token po-maria product_owner)
FL=$(token fl-ana finops_lead)
as() { local t=$1; shift; FINOPS_TOKEN=$t "$finops" --server "http://$addr" "$@"; }
iam() { # iam ACTION ROLE: one IAM call to moto, its answer as JSON
  python3 - "$iam" "$1" "$2" <<'EOF'
import boto3, json, sys
endpoint, action, role = sys.argv[1:4]
c = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                 aws_access_key_id="finops-test", aws_secret_access_key="finops-test")
if action == "create":
    try:
        c.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    except c.exceptions.EntityAlreadyExistsException:
        pass
    print("{}")
elif action == "tags":
    print(json.dumps(c.list_role_tags(RoleName=role)["Tags"]))
elif action == "policies":
    print(json.dumps(c.list_role_policies(RoleName=role)["PolicyNames"]))
EOF
}
wait_for() { # wait_for WHAT COMMAND…: until the command succeeds (bounded)
  local what=$1; shift
  for _ in $(seq 1 300); do "$@" && return 0; sleep 0.2; done
  echo "FAIL: $what" >&2
  return 1
}

echo "0. Support Bot's role exists in the account (here: moto's IAM)"
iam create finops-support-bot-88aa >/dev/null

echo "1. A month's invocation logs with a storm by Support Bot's role on the 20th"
mkdir -p "$work/logs"
"$finops" cur generate --period 2026-11 --rows 20000 --spike finops-support-bot-88aa \
  --out "$work/month.csv" --logs "$work/logs/nov-invocations.json.gz"
"$finops" logs ingest "$work/logs" --store "$store" --objects "$objects"

echo "2. The detector opens a spend spike on the storm's first hour"
spike() {
  as "$FL" --json investigations list | python3 -c '
import json, sys
found = [i for i in json.load(sys.stdin) if "in the hour from 2026-11-20 02:00 UTC" in i["summary"]]
print(found[0]["summary"]) if found else None
sys.exit(0 if found else 1)'
}
wait_for "no investigation of the storm" spike

echo "3. Maria suspends Support Bot; the enforcer tags the role and puts the deny"
as "$MARIA" suspend "Support Bot" --rationale "Runaway retry loop since 02:00 on the 20th" >/dev/null
status() { as "$FL" --json control "Support Bot" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])'; }
suspended() { [ "$(status)" = suspended ]; }
wait_for "Support Bot never suspended" suspended
# sed and grep read to the end: `head`/`grep -q` stop early, and under pipefail the writer's
# SIGPIPE (exit 141) failed the walkthrough whenever it had more to write.
as "$FL" control "Support Bot" | sed -n '1,6p'
iam tags finops-support-bot-88aa | grep '"finops-suspended"' >/dev/null
iam policies finops-support-bot-88aa | grep FinOpsKillSwitch >/dev/null
echo "   moto: tag finops-suspended and inline policy FinOpsKillSwitch on finops-support-bot-88aa"

echo "4. Ana resumes it; exactly what the suspension added is removed"
as "$FL" resume "Support Bot" --rationale "Retries capped at 3 in release 4.2" >/dev/null
# Resumed and applied; the open investigation still shows (`alerting`) until it is closed.
resumed() {
  as "$FL" --json control "Support Bot" | python3 -c '
import json, sys
last = json.load(sys.stdin)["decisions"][-1]
sys.exit(0 if last["action"] == "resume" and last["applied"] else 1)'
}
wait_for "Support Bot never resumed" resumed
[ "$(iam tags finops-support-bot-88aa)" = "[]" ]
[ "$(iam policies finops-support-bot-88aa)" = "[]" ]
echo "   moto: no tag, no policy"
