-- What each background reconciler last did (issue 19), written by the replica that leads
-- it and read by every replica (`GET /api/v1/fleet/reconcilers`, God Mode): a replica that
-- does not lead a reconciler has nothing of its own to show. One row per reconciler,
-- replaced in place.
CREATE TABLE genesis.reconciler_status (
    name       text PRIMARY KEY,
    replica    text NOT NULL,
    status     jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT, INSERT, UPDATE ON genesis.reconciler_status TO genesis_app;
