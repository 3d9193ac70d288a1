-- What the bridge learned about the integration's Planfix on the customer's own account
-- (`chatrabridge integrations verify --deep`), besides the contact's role (007):
-- 'returned' when Planfix returned the sourceObjectId the bridge sent on a task and a
-- comment, 'not_returned' when it returned none (the bridge then finds what a lost
-- create made by the reference line in its description alone), NULL while unknown; and
-- when a deep verify last recorded its findings.
ALTER TABLE integrations
    ADD COLUMN planfix_source_ids text CHECK (planfix_source_ids IN ('returned', 'not_returned')),
    ADD COLUMN deep_verified_at timestamptz;
