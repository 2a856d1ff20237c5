-- A tenant's data on request (issue 25, spec 64.3): each export, where it stands, and the
-- archive parts it wrote. One export runs per workspace at a time; a finished one is kept
-- until `expires_at`, then its files and this row's `parts` go.
CREATE TABLE genesis.exports (
    id            uuid PRIMARY KEY,
    workspace_id  uuid NOT NULL REFERENCES genesis.workspaces (id),
    requested_by  text NOT NULL,
    requested_at  timestamptz NOT NULL DEFAULT now(),
    state         text NOT NULL CHECK (state IN ('RUNNING', 'READY', 'FAILED', 'EXPIRED')),
    leads_total   bigint,
    leads_written bigint NOT NULL DEFAULT 0,
    -- When the builder last reported: a RUNNING export that stopped reporting was
    -- interrupted (its process died) and is failed when the next one is asked for.
    progress_at   timestamptz NOT NULL DEFAULT now(),
    -- [{"part": 1, "file": "<relative path>", "bytes": n}, ...]
    parts         jsonb NOT NULL DEFAULT '[]'::jsonb,
    finished_at   timestamptz,
    expires_at    timestamptz,
    error         text,
    CHECK ((state = 'READY') = (finished_at IS NOT NULL AND expires_at IS NOT NULL)
           OR state IN ('FAILED', 'EXPIRED'))
);
CREATE UNIQUE INDEX exports_one_running_idx ON genesis.exports (workspace_id)
    WHERE state = 'RUNNING';
CREATE INDEX exports_workspace_idx ON genesis.exports (workspace_id, requested_at DESC);
CREATE INDEX exports_expiry_idx ON genesis.exports (expires_at) WHERE state = 'READY';

GRANT SELECT, INSERT, UPDATE ON genesis.exports TO genesis_app;

-- Step 4 of a deletion removes its exports' rows too (their files are the caller's).
CREATE OR REPLACE FUNCTION genesis.deletion_purge_exports(ws uuid) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, genesis
AS $$
DECLARE
    n bigint;
BEGIN
    IF NOT genesis.deletion_at_step(ws, 4) THEN
        RAISE EXCEPTION 'workspace % is not at step 4 of its deletion', ws
            USING ERRCODE = 'GD004';
    END IF;
    DELETE FROM genesis.exports WHERE workspace_id = ws;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
REVOKE ALL ON FUNCTION genesis.deletion_purge_exports(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION genesis.deletion_purge_exports(uuid) TO genesis_app;
