-- How the integration's Planfix keeps the customer's contact on a task it creates, as
-- the bridge found out from Planfix itself (never assumed): 'assigner' when Planfix kept
-- the contact as the task's assigner, 'counterparty' when it refused it or silently kept
-- someone else, NULL while unknown. Later creates use the recorded role directly.
ALTER TABLE integrations ADD COLUMN contact_role text
    CHECK (contact_role IN ('assigner', 'counterparty'));
