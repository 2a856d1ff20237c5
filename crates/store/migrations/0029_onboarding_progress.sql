-- The Genesis Gateway wizard's progress (spec 60.1, issue 22), one row per workspace, kept
-- in the workspace's own database: a tenant resumes from any device where they left off.
-- Each stage adds what it confirmed; values the Golden Template needs (the company's name)
-- also go into the workspace's onboarding values.
CREATE TABLE genesis.onboarding_progress (
    workspace_id       uuid PRIMARY KEY REFERENCES genesis.workspaces (id),
    -- Stage 2 (spec 61.1): name, website, logo, description, products, as confirmed.
    brand              jsonb CHECK (brand IS NULL OR jsonb_typeof(brand) = 'object'),
    brand_confirmed_at timestamptz,
    updated_at         timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT, INSERT, UPDATE ON genesis.onboarding_progress TO genesis_app;
