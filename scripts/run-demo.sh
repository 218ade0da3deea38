#!/usr/bin/env bash
# `make run`: Warden with demo data on http://127.0.0.1:8080, plus a small
# swarm of simulated agents so every Fleet status is on screen: some online,
# some degraded, some uninstalled, some orphaned (Detached Endpoint), and some
# that go silent and turn offline after a minute. A compliance rule watches
# them: the uninstalled and orphaned ones raise alerts, call a webhook (a
# receiver this script starts, printing what it gets to data/demo-webhooks.log)
# and open a case each. Two cloud connectors, checked by the permission
# verifier against a cloud emulator: one whose permissions are all granted,
# one whose credentials the cloud refuses.
set -euo pipefail
cd "$(dirname "$0")/.."
listen=${WARDEN_LISTEN:-127.0.0.1:8080}
receiver=${DEMO_WEBHOOK_RECEIVER:-127.0.0.1:8091}
mde=${DEMO_MDE_EMULATOR:-127.0.0.1:8092}
cloud=${DEMO_CLOUD_EMULATOR:-127.0.0.1:8093}
mkdir -p data

target/debug/warden-agent receive --listen "$receiver" > data/demo-webhooks.log &
sink=$!
# Microsoft Defender for Endpoint, emulated: three hosts (one whose actions
# succeed, one whose actions fail, one whose actions hang until cancelled).
RUST_LOG=warn target/debug/warden-mde-emulator --listen "$mde" > /dev/null &
emulator=$!
# A cloud's permission check (IAM's policy simulator), emulated with the
# principals of crates/cloud-emulator/demo.toml.
RUST_LOG=warn target/debug/warden-cloud-emulator --listen "$cloud" > /dev/null &
cloud_emulator=$!
target/debug/warden serve --demo --listen "$listen" --agent-offline-after 1m --mde-cancel true \
  --enable-otel-verifier true --verifier-cloud-url "http://$cloud" &
warden=$!
swarm=
reimaged_agent=
trap 'kill $warden $sink $emulator $cloud_emulator $swarm $reimaged_agent 2>/dev/null || true' EXIT INT TERM

for _ in $(seq 1 120); do
  curl -fs "http://$listen/api/status" >/dev/null 2>&1 && break
  kill -0 $warden 2>/dev/null || exit 1
  sleep 0.5
done

# The demo's compliance rule and its webhook, through the API as a user would
# (created once: a 409 means they are there already).
api() { curl -s -o /dev/null -w '%{http_code}' -u admin:warden-demo -H 'kbn-xsrf: demo' -H 'content-type: application/json' "$@"; }
api -X POST "http://$listen/api/actions/connector/demo-soc-webhook" -d "{
  \"name\": \"SOC webhook (demo receiver)\", \"connector_type_id\": \".webhook\",
  \"config\": {\"url\": \"http://$receiver/warden\", \"method\": \"post\", \"hasAuth\": false}}" >/dev/null
api -X POST "http://$listen/api/alerting/rule/demo-compliance" -d '{
  "name": "Compliance: endpoint protection removed", "rule_type_id": "fleet.agent_status", "consumer": "alerts",
  "tags": ["compliance", "pci-dss", "fedramp"], "schedule": {"interval": "1m"},
  "params": {"statuses": ["uninstalled", "orphaned"]},
  "actions": [
    {"id": "demo-soc-webhook", "group": "default",
     "frequency": {"summary": false, "notify_when": "onActionGroupChange", "throttle": null},
     "params": {"body": "{\"host\": \"{{context.host.name}}\", \"agent\": \"{{context.agent.id}}\", \"status\": \"{{context.status}}\", \"why\": \"{{context.reason}}\"}"}},
    {"id": "demo-soc-webhook", "group": "recovered",
     "frequency": {"summary": false, "notify_when": "onActionGroupChange", "throttle": null},
     "params": {"body": "{\"host\": \"{{context.host.name}}\", \"agent\": \"{{alert.id}}\", \"status\": \"recovered\"}"}},
    {"id": "system-connector-.cases",
     "params": {"subAction": "run", "subActionParams": {"groupingBy": ["host.name"], "reopenClosedCases": true, "timeWindow": "7d", "maximumCasesToOpen": 10}}}
  ]}' >/dev/null
echo "Demo compliance rule: http://$listen/rules/demo-compliance (webhooks it sends: data/demo-webhooks.log)"
api -X POST "http://$listen/api/actions/connector/demo-mde" -d "{
  \"name\": \"Microsoft Defender for Endpoint (demo emulator)\", \"connector_type_id\": \".microsoft_defender_endpoint\",
  \"config\": {\"clientId\": \"warden-demo-client\", \"tenantId\": \"warden-demo-tenant\", \"oAuthServerUrl\": \"http://$mde\",
             \"oAuthScope\": \"https://securitycenter.onmicrosoft.com/windowsatpservice/.default\", \"apiUrl\": \"http://$mde\"},
  \"secrets\": {\"clientSecret\": \"warden-demo-secret\"}}" >/dev/null
echo "Microsoft Defender for Endpoint (emulated at http://$mde): its hosts are in http://$listen/fleet"

# Cloud connectors, each used by a package policy so the verifier checks it
# (created once: a 409 on the name means they are there already).
cloud_connector() { # name body package-policy-json-with-CONNECTOR
  local answer id
  answer=$(curl -s -u admin:warden-demo -H 'kbn-xsrf: demo' -H 'content-type: application/json' \
    -X POST "http://$listen/api/fleet/cloud_connectors" -d "$2")
  id=$(printf '%s' "$answer" | grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4 || true)
  [ -n "$id" ] && api -X POST "http://$listen/api/fleet/package_policies" -d "${3//CONNECTOR/$id}" >/dev/null
  return 0
}
cloud_connector "AWS production" '{"name": "AWS production", "cloudProvider": "aws",
  "vars": {"role_arn": "arn:aws:iam::123456789012:role/warden-demo",
           "external_id": {"type": "password", "value": "warden-demo-external-id"}}}' '{
  "name": "AWS CloudTrail and GuardDuty", "policy_ids": ["demo-endpoints"], "cloud_connector_id": "CONNECTOR",
  "package": {"name": "aws", "title": "AWS", "version": "2.17.0"},
  "inputs": [{"type": "aws-cloudtrail", "policy_template": "cloudtrail", "enabled": true},
             {"type": "aws-guardduty", "policy_template": "guardduty", "enabled": true}]}'
cloud_connector "GCP audit (wrong audience)" '{"name": "GCP audit (wrong audience)", "cloudProvider": "gcp",
  "vars": {"service_account": "warden@warden-demo.iam.gserviceaccount.com",
           "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/other/providers/other"}}' '{
  "name": "GCP audit logs", "policy_ids": ["demo-endpoints"], "cloud_connector_id": "CONNECTOR",
  "package": {"name": "gcp", "title": "Google Cloud Platform", "version": "2.38.0"},
  "inputs": [{"type": "gcp-audit", "policy_template": "audit", "enabled": true}]}'
api -X POST "http://$listen/api/alerting/rule/demo-cloud-permissions" -d '{
  "name": "Cloud connector permissions", "rule_type_id": "fleet.cloud_connector_verification", "consumer": "alerts",
  "tags": ["cloud"], "schedule": {"interval": "5m"}, "params": {"on_failed": true, "on_revoked": true},
  "actions": [{"id": "demo-soc-webhook", "group": "default",
     "frequency": {"summary": false, "notify_when": "onActionGroupChange", "throttle": null},
     "params": {"body": "{\"cloud_connector\": \"{{context.connector.name}}\", \"status\": \"{{context.status}}\", \"why\": \"{{context.reason}}\"}"}}]}' >/dev/null
echo "Cloud connectors (their permissions checked at the emulated cloud http://$cloud): http://$listen/fleet/cloud-connectors"

token=$(printf '%s' 'demo-enrollment:warden-demo-enrollment-secret' | base64)
RUST_LOG=warn target/debug/warden-agent swarm --url "http://$listen" --enrollment-token "$token" \
  --count 25 --uninstalled 3 --orphaned 3 --silent 4 --degraded 2 --poll-timeout 5m --interval 2s \
  --state data/demo-swarm.json &
swarm=$!
echo "Simulated agents are checking in: open http://$listen/fleet"

# One host enrolled twice (reference 003's duplicate agents): the first agent
# is marked replaced by the second, linked both ways, out of the default view.
reimaged=data/demo-reimaged.json
if [ ! -f "$reimaged" ]; then
  target/debug/warden-agent enroll --url "http://$listen" --enrollment-token "$token" --hostname mac-reimaged --state "$reimaged" >/dev/null
  target/debug/warden-agent enroll --url "http://$listen" --enrollment-token "$token" --state "$reimaged" --reenroll >/dev/null
fi
RUST_LOG=warn target/debug/warden-agent run --state "$reimaged" --interval 5s >/dev/null 2>&1 &
reimaged_agent=$!
echo "A re-enrolled host, shown once: http://$listen/fleet?q=mac-reimaged (its replaced agent under Show inactive)"

# The scripts library's first script, and a few response actions so the
# history has something to show (each agent runs them in its sandbox under
# ${TMPDIR:-/tmp}/warden-agent-swarm).
script=$(mktemp)
printf '#!/bin/sh\n# Lists what is in the agent sandbox, newest first.\nls -lt "${1:-.}"\n' > "$script"
curl -s -o /dev/null -u admin:warden-demo -H 'kbn-xsrf: demo' "http://$listen/api/endpoint/scripts_library" \
  -F "file=@$script;filename=triage.sh" -F name=triage -F 'description=Lists the sandbox, newest first' \
  -F 'instructions=Optional: a folder inside the sandbox' -F example=. -F platform=linux
rm -f "$script"
# The swarm's last two hosts keep checking in (its first ones go silent,
# uninstall or detach): the actions go to them.
agent_named() {
  curl -s -u admin:warden-demo "http://$listen/api/fleet/agents?kuery=local_metadata.host.hostname:$1" |
    grep -o '"id":"[0-9a-f-]\{36\}"' | head -1 | cut -d'"' -f4 || true
}
for _ in $(seq 1 60); do
  agents="$(agent_named host-00024)
$(agent_named host-00023)"
  [ "$(echo "$agents" | grep -c .)" -ge 2 ] && break
  sleep 1
done
first=$(echo "$agents" | sed -n 1p)
second=$(echo "$agents" | sed -n 2p)
if [ -n "$first" ] && [ -n "$second" ]; then
  api -X POST "http://$listen/api/endpoint/action/isolate" -d "{\"endpoint_ids\": [\"$first\"], \"comment\": \"Demo: contain a suspicious host\"}" >/dev/null
  api -X POST "http://$listen/api/endpoint/action/running_procs" -d "{\"endpoint_ids\": [\"$second\"]}" >/dev/null
  api -X POST "http://$listen/api/endpoint/action/execute" -d "{\"endpoint_ids\": [\"$second\"], \"parameters\": {\"command\": \"sleep 600\"}, \"comment\": \"Demo: a long command to cancel from the history\"}" >/dev/null
  echo "Response actions: http://$listen/response-actions"
fi
wait $warden
