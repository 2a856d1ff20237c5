-- The watchdog's desired state (spec 43): the workflows each droplet should run, as the
-- ignition (and later template rollouts) deployed them.

CREATE TABLE genesis.droplet_workflows (
    droplet_id       uuid NOT NULL REFERENCES genesis.droplets (id),
    workflow_id      text NOT NULL,
    key              text NOT NULL,
    active           boolean NOT NULL,
    template_version text NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (droplet_id, workflow_id)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON genesis.droplet_workflows TO genesis_app;
