-- Hostile input and abuse (a leaked webhook URL, a visitor who claims another's email).

-- Whether a conversation receives the replies written in its task. A chat that created
-- its task does; a chat that joined a task another chat created (the visitor gave an
-- email that belongs to that task's contact) does only when a chat of the same Chatra
-- visitor in that task does, or when the integration trusts email claims. How a Planfix
-- reply finds its chat: never one that does not receive replies. Rows from before
-- this migration keep receiving them.
ALTER TABLE conversations ADD COLUMN receives_replies boolean NOT NULL DEFAULT true;

-- The chats each integration has seen: the first webhook of a chat not in here (nor in
-- conversations) opens a new conversation, and an integration may open at most its
-- options.newConversationsPerMinute of them a minute (a leaked Chatra webhook URL must
-- not spend Planfix's request budget on thousands of made-up chats). The janitor
-- deletes rows after ChatraRetention.
CREATE TABLE chatra_chats (
    integration_id  text NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    chat_id         text NOT NULL,
    admitted_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (integration_id, chat_id)
);
CREATE INDEX chatra_chats_by_time ON chatra_chats (integration_id, admitted_at);

-- The Chatra webhook deliveries Temporal accepted, by their event key: a delivery
-- repeated after its conversation ended (a new run would not know it) is answered 200
-- without starting the conversation again. The janitor deletes rows after
-- ChatraRetention.
CREATE TABLE chatra_events (
    integration_id  text NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    event_key       text NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (integration_id, event_key)
);
CREATE INDEX chatra_events_by_age ON chatra_events (received_at);
CREATE INDEX chatra_chats_by_age ON chatra_chats (admitted_at);
