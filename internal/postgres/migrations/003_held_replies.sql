-- Planfix replies that came before their task had a conversation row: the bridge creates
-- the task, then saves the row, and a comment written in between (milliseconds, or
-- minutes while the worker or Temporal is down) finds no chat. The webhook keeps such a
-- reply here and answers 200, since Planfix does not send a request again once it got
-- 200. A repeated request is the same row (the comment id).
--
-- The first save of a conversation with the task takes the task's rows, in the same
-- transaction: it marks them with its key (taken_by: the activity, the same on each of
-- its attempts) rather than deleting them, so that an attempt whose result was lost (a
-- worker that died, Temporal down when it answered) is retried and gets them again.
-- Every row, taken or not, is deleted by the janitor a week after it came
-- (HeldRepliesRetention): untaken, it was a comment in a task that is not the bridge's.
CREATE TABLE held_replies (
    integration_id  text NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    task_id         bigint NOT NULL,
    comment_id      bigint NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    taken_by        text,
    taken_at        timestamptz,
    PRIMARY KEY (integration_id, comment_id)
);
CREATE INDEX held_replies_by_task ON held_replies (integration_id, task_id);
CREATE INDEX held_replies_by_age ON held_replies (received_at);
