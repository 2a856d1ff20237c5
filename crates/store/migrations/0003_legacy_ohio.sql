-- The Ohio exception (spec 3): the legacy tenant's single table. In production it already
-- exists on the legacy database; here it is created so the legacy path is real and tested.
-- Only the legacy adapter (crates/store/src/legacy/ohio.rs) names it in code.
CREATE TABLE genesis.leads_ohio (
    id          uuid PRIMARY KEY,
    email       text NOT NULL UNIQUE,
    first_name  text,
    last_name   text,
    company     text,
    status      text NOT NULL DEFAULT 'new',
    created_at  timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT, INSERT, UPDATE, DELETE ON genesis.leads_ohio TO genesis_app;
