-- The first schema: integrations and what a workflow must find from outside itself.
-- Secrets are stored sealed (AES-GCM, see internal/secrets); webhook tokens only as hashes.

CREATE TABLE integrations (
    id                  text PRIMARY KEY,
    name                text NOT NULL,
    -- Non-secret settings as JSON (Chatra origin and agent, Planfix account, templates, options).
    settings            jsonb NOT NULL DEFAULT '{}',
    chatra_secret_key   bytea,
    planfix_token       bytea,
    chatra_token_hash   bytea NOT NULL,
    planfix_token_hash  bytea NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- Employees allowed on an integration's channel, with what "send as employee" needs.
CREATE TABLE employees (
    integration_id   text NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    planfix_user_id  bigint NOT NULL,
    email            text NOT NULL DEFAULT '',
    name             text NOT NULL DEFAULT '',
    PRIMARY KEY (integration_id, planfix_user_id)
);

-- Chatra visitors mapped to Planfix contacts.
CREATE TABLE contacts (
    integration_id      text NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    chatra_client_id    text NOT NULL,
    email               text NOT NULL DEFAULT '',
    planfix_contact_id  bigint NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (integration_id, chatra_client_id)
);
CREATE INDEX contacts_by_email ON contacts (integration_id, lower(email)) WHERE email <> '';

-- One row per chat: how a Planfix reply finds its chat, and what the admin API lists.
CREATE TABLE conversations (
    integration_id      text NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    chat_id             text NOT NULL,
    workflow_id         text NOT NULL,
    client_id           text NOT NULL DEFAULT '',
    planfix_task_id     bigint,
    planfix_contact_id  bigint,
    customer_name       text NOT NULL DEFAULT '',
    customer_email      text NOT NULL DEFAULT '',
    status              text NOT NULL DEFAULT 'open'
                        CHECK (status IN ('open', 'closed', 'ended', 'cancelled')),
    started_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    closed_at           timestamptz,
    PRIMARY KEY (integration_id, chat_id)
);
CREATE UNIQUE INDEX conversations_by_workflow ON conversations (workflow_id);
CREATE INDEX conversations_by_task ON conversations (integration_id, planfix_task_id, updated_at DESC);
CREATE INDEX conversations_by_status ON conversations (integration_id, status, updated_at DESC);

-- Planfix allows one request per second per account. Every process reserves its slot here,
-- so the limit holds across all workers (see internal/postgres/ratelimit.go).
CREATE TABLE planfix_rate_limits (
    account        text PRIMARY KEY,
    next_at        timestamptz NOT NULL DEFAULT now(),
    blocked_until  timestamptz
);
