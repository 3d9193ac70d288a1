-- The webhook inbox: deliveries (Chatra's and Planfix's) the bridge answered 200 while
-- Temporal could not take them. Each row is what the webhook would have sent: the
-- conversation's workflow id, its start options and its signals, as JSON (json, not
-- jsonb: kept as written). The forwarder of every api and worker process sends them to
-- Temporal, oldest first per conversation, and deletes each once Temporal accepted it.
CREATE TABLE webhook_inbox (
    id              bigserial PRIMARY KEY,
    integration_id  text NOT NULL,
    workflow_id     text NOT NULL,
    delivery        json NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_inbox_by_workflow ON webhook_inbox (workflow_id, id);
