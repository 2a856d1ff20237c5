-- Governed support access (spec 63.3; DECISIONS 100).
--
-- An operator account gets a role. Support staff reach a tenant only through a grant: a
-- tier, a reason, a lifetime that starts when it is granted, and, for the tiers that need
-- them, approvals by other people. Every grant, approval, refusal, end and action is also in
-- the audit log; this table is what the checks read and what the tenant's page lists.
--
-- Roles live with the operators (the coordinator); grants live with the tenant they open
-- (its region's database), beside the audit events that tell their story.

-- Existing accounts were all-powerful: they stay admins.
ALTER TABLE genesis.operators
    ADD COLUMN role text NOT NULL DEFAULT 'admin'
        CHECK (role IN ('support', 'manager', 'admin'));

CREATE TABLE genesis.support_grants (
    id               uuid PRIMARY KEY,
    workspace_id     uuid NOT NULL REFERENCES genesis.workspaces (id),
    -- The operator lives in the coordinator's database: no foreign key across databases.
    operator_id      uuid NOT NULL,
    operator_email   text NOT NULL CHECK (operator_email = lower(operator_email)),
    tier             text NOT NULL CHECK (tier IN ('read_only', 'debug', 'write', 'emergency')),
    reason           text NOT NULL CHECK (length(btrim(reason)) BETWEEN 10 AND 500),
    incident         text CHECK (incident IS NULL OR length(btrim(incident)) BETWEEN 1 AND 100),
    approvals_needed smallint NOT NULL CHECK (approvals_needed BETWEEN 0 AND 2),
    requested_at     timestamptz NOT NULL DEFAULT now(),
    granted_at       timestamptz,
    expires_at       timestamptz,
    ended_at         timestamptz,
    ended_by         text,
    end_reason       text CHECK (end_reason IN ('revoked', 'expired', 'lapsed')),
    CHECK ((granted_at IS NULL) = (expires_at IS NULL)),
    CHECK (expires_at IS NULL OR expires_at > granted_at),
    -- No grant outlives its tier's spec 63.3 duration, whoever writes the row.
    CHECK (expires_at - granted_at <= CASE tier
                                          WHEN 'debug' THEN interval '60 minutes'
                                          WHEN 'emergency' THEN interval '15 minutes'
                                          ELSE interval '30 minutes'
                                      END),
    CHECK ((ended_at IS NULL) = (end_reason IS NULL)),
    CHECK (tier <> 'emergency' OR incident IS NOT NULL)
);

-- One open (pending or granted, not ended) grant per operator and tenant: a second request
-- is a conflict, never a silent widening.
CREATE UNIQUE INDEX support_grants_open_idx ON genesis.support_grants (workspace_id, operator_id)
    WHERE ended_at IS NULL;
CREATE INDEX support_grants_workspace_idx ON genesis.support_grants (workspace_id, requested_at DESC);
-- The expiry sweep and the approvers' queue read only open grants.
CREATE INDEX support_grants_open_by_time_idx ON genesis.support_grants (requested_at)
    WHERE ended_at IS NULL;

CREATE TABLE genesis.support_grant_approvals (
    grant_id       uuid NOT NULL REFERENCES genesis.support_grants (id),
    approver_id    uuid NOT NULL,
    approver_email text NOT NULL,
    approved_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (grant_id, approver_id)
);

GRANT SELECT, INSERT, UPDATE ON genesis.support_grants TO genesis_app;
GRANT SELECT, INSERT ON genesis.support_grant_approvals TO genesis_app;

-- Step 4 of a deletion (spec 64.2) removes the tenant's grants with its other rows; what
-- happened under them stays in the (anonymised) audit trail.
CREATE OR REPLACE FUNCTION genesis.deletion_purge_support(ws uuid) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, genesis
AS $$
DECLARE
    n bigint;
BEGIN
    IF NOT genesis.deletion_at_step(ws, 4) THEN
        RAISE EXCEPTION 'workspace % is not at step 4 of its deletion', ws
            USING ERRCODE = 'GD004';
    END IF;
    DELETE FROM genesis.support_grant_approvals
        WHERE grant_id IN (SELECT id FROM genesis.support_grants WHERE workspace_id = ws);
    DELETE FROM genesis.support_grants WHERE workspace_id = ws;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
REVOKE ALL ON FUNCTION genesis.deletion_purge_support(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION genesis.deletion_purge_support(uuid) TO genesis_app;
