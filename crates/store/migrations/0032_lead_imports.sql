-- A tenant's CSV import of leads (issue 22): its progress, for the page that follows it,
-- and the rows it refused with why. Rows are imported in batches, each committed; an import
-- whose process stopped is shown as interrupted (importing the file again skips what is
-- already there, as duplicates).
CREATE TABLE genesis.lead_imports (
    id           uuid PRIMARY KEY,
    workspace_id uuid NOT NULL REFERENCES genesis.workspaces (id),
    actor        text NOT NULL,
    filename     text NOT NULL,
    state        text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done', 'failed')),
    -- Data rows in the file.
    total        integer NOT NULL CHECK (total >= 0),
    -- Rows handled so far (imported, duplicate or refused).
    handled      integer NOT NULL DEFAULT 0,
    imported     integer NOT NULL DEFAULT 0,
    duplicates   integer NOT NULL DEFAULT 0,
    refused      integer NOT NULL DEFAULT 0,
    -- The first refusals: [{row, field, message}].
    errors       jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(errors) = 'array'),
    failure      text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
CREATE INDEX lead_imports_workspace ON genesis.lead_imports (workspace_id, created_at DESC);

GRANT SELECT, INSERT, UPDATE ON genesis.lead_imports TO genesis_app;
