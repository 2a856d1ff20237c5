-- Failback (issue 26, spec 66.4 phase 4 option B; DECISIONS 114): a second, planned
-- migration that takes a failover's tenants home once their region is back. It is a failover
-- of its own (from the backup datacenter to the original), naming the one it undoes, whose
-- tenants are moved with the new plan `migrate`: from a snapshot taken for the move and copied
-- home, whose image is recorded once it is there.
ALTER TABLE genesis.failovers ADD COLUMN failback_of uuid REFERENCES genesis.failovers (id);
CREATE UNIQUE INDEX failovers_one_failback_idx ON genesis.failovers (failback_of);

ALTER TABLE genesis.failover_tenants DROP CONSTRAINT failover_tenants_plan_check;
ALTER TABLE genesis.failover_tenants ADD CONSTRAINT failover_tenants_plan_check
    CHECK (plan IN ('restore', 'reignite', 'held', 'migrate'));
ALTER TABLE genesis.failover_tenants DROP CONSTRAINT failover_tenants_check1;
-- A restore has its image from the start, a re-ignition never has one, a migration gets its
-- own once its snapshot reached the target.
ALTER TABLE genesis.failover_tenants ADD CONSTRAINT failover_tenants_image_check
    CHECK ((plan <> 'restore' OR image_id IS NOT NULL) AND (plan <> 'reignite' OR image_id IS NULL));
