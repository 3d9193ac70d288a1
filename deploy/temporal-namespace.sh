#!/bin/sh
# Creates the namespace and chatrabridge's custom search attributes (idempotent), so the
# Web UI can list conversations by integration, customer or status, and the chats whose
# customer waits for an answer.
set -eu
ns="${TEMPORAL_NAMESPACE:-default}"
until temporal operator cluster health >/dev/null 2>&1; do echo "waiting for temporal"; sleep 2; done
temporal operator namespace describe -n "$ns" >/dev/null 2>&1 || temporal operator namespace create -n "$ns" --retention 30d
for sa in ChatraIntegration ChatraChatId ChatraClientId CustomerEmail CustomerName ConversationStatus; do
  temporal operator search-attribute create -n "$ns" --name "$sa" --type Keyword >/dev/null 2>&1 || true
done
temporal operator search-attribute create -n "$ns" --name PlanfixTaskId --type Int >/dev/null 2>&1 || true
temporal operator search-attribute create -n "$ns" --name CustomerWaitingSince --type Datetime >/dev/null 2>&1 || true
temporal operator search-attribute list -n "$ns"
