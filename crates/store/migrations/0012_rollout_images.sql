-- A rollout may swap n8n's container image (spec 56.2's blue-green update) instead of
-- redeploying workflows.
ALTER TABLE genesis.rollouts ADD COLUMN n8n_image text;
