-- Spec 43.3 heals `orphan_db_record` (a workflow the database wants that n8n no longer has)
-- by marking the campaign as in error: the row stays, with why, until a redeploy replaces it.
ALTER TABLE genesis.droplet_workflows ADD COLUMN error text;
