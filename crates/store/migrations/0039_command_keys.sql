-- The command-signing key ring (issue 24, spec 65.1): the Ed25519 keys that sign every
-- command to a sidecar, sealed under the vault's master key and bound to their key id.
--
-- A rotation adds a NEXT key. Heartbeat answers tell every sidecar to trust it beside the
-- ACTIVE one, and each heartbeat reports the ids its sidecar trusts. When every awake droplet
-- has reported the NEXT key (or the grace period is over), one transaction makes it ACTIVE
-- and the old key RETIRED, with the list of droplets that never confirmed. Sidecars are then
-- told to trust the new key only; one that slept through it is told at its first heartbeat.
CREATE TABLE genesis.command_keys (
    kid          text PRIMARY KEY CHECK (kid ~ '^[0-9a-f]{16}$'),
    public_key   text NOT NULL,
    key_version  integer NOT NULL,
    nonce        bytea NOT NULL,
    ciphertext   bytea NOT NULL,
    state        text NOT NULL CHECK (state IN ('NEXT', 'ACTIVE', 'RETIRED')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    activated_at timestamptz,
    retired_at   timestamptz,
    -- At the switch: the droplets that had not confirmed this key, and why.
    unconfirmed  jsonb,
    CHECK ((state = 'NEXT') = (activated_at IS NULL)),
    CHECK ((state = 'RETIRED') = (retired_at IS NOT NULL))
);
-- At most one active and one next key.
CREATE UNIQUE INDEX command_keys_one_active ON genesis.command_keys ((true)) WHERE state = 'ACTIVE';
CREATE UNIQUE INDEX command_keys_one_next ON genesis.command_keys ((true)) WHERE state = 'NEXT';

GRANT SELECT, INSERT, UPDATE ON genesis.command_keys TO genesis_app;
