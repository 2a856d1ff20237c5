-- Spec 55.3/55.4: a tenant's next scheduled campaign (a wake trigger, and for High-Priority
-- tenants the moment to pre-warm 5 minutes ahead), and when a pre-warm woke it (it goes back
-- to sleep after 2 hours without activity).
ALTER TABLE genesis.workspace_activity
    ADD COLUMN next_campaign_at timestamptz,
    ADD COLUMN prewarmed_at timestamptz;
