-- Planfix's one request a second per account, spent where a person is waiting
-- (RateLimiter with priorities): each request waiting for its account's next slot is a
-- row here, and the slot goes to the best live row (by class, then the age of its chat,
-- then the time it came), whichever process it is in. A row is deleted when its request
-- is let through or its wait ends; a row whose process died stops counting at
-- expires_at, and a later wait on the account deletes it.
CREATE TABLE planfix_rate_waiters (
    id               bigserial PRIMARY KEY,
    account          text NOT NULL,
    rank             int NOT NULL,          -- planfix.Class.Rank: 1 first, 4 last
    chat_started_at  timestamptz,           -- null: not known, after the known ones
    enqueued_at      timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL
);
CREATE INDEX planfix_rate_waiters_by_account ON planfix_rate_waiters (account);
