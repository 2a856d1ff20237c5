-- Indexes for queries that leaders run every second, so their cost does not grow with
-- history: image rollouts' deferred targets (the conductor's wake pass) and a droplet's
-- latest hibernation episode (the hot-standby pool's claim pass).
CREATE INDEX rollout_targets_deferred_idx ON genesis.rollout_targets (droplet_id) WHERE status = 'DEFERRED';
CREATE INDEX hibernations_droplet_idx ON genesis.hibernations (droplet_id, id);
