-- Slugs are global (they appear in URLs and partition names) while each region's database
-- only knows its own tenants, so the UNIQUE constraint on genesis.workspaces cannot stop two
-- regions from taking one slug at the same moment (issue 19: check, then create, raced).
-- A slug is claimed here, in the coordinating database, before its workspace is created in
-- its region's; the primary key makes the claim atomic. Claims are kept for good, as a
-- workspace's slug is.
CREATE TABLE genesis.slug_claims (
    slug       text PRIMARY KEY CHECK (slug ~ '^[a-z0-9_]{1,50}$'),
    region     text NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now()
);

-- The workspaces this database already holds have their slugs claimed (when it is the
-- coordinating database; elsewhere the table stays empty and unused).
INSERT INTO genesis.slug_claims (slug, region, claimed_at)
SELECT slug, region, created_at FROM genesis.workspaces
ON CONFLICT DO NOTHING;

GRANT SELECT, INSERT, DELETE ON genesis.slug_claims TO genesis_app;
