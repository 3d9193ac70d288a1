-- Side effects the bridge made outside (a Chatra message sent, an action added to a
-- Planfix contact) that the remote API cannot find again by itself. An activity records
-- each one right after it succeeds and looks here before acting, so that a retry of the
-- same activity does not repeat it. Keys are chosen by the activities
-- ("reply:<key>#<part>", "contact-action:<chat>:<episode>"); result is what the remote
-- side answered (a message id, a comment id).
CREATE TABLE effects (
    integration_id  text NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    key             text NOT NULL,
    result          text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (integration_id, key)
);
CREATE INDEX effects_by_age ON effects (created_at);

-- Which Planfix contact's tasks a conversation used, newest first: how a chat finds the
-- contact's active task (one contact, one active task).
CREATE INDEX conversations_by_contact ON conversations (integration_id, planfix_contact_id, updated_at DESC)
    WHERE planfix_contact_id IS NOT NULL;
