-- A tenant's key update that is in the vault but not yet in its droplet's n8n (issue 24,
-- spec 65.1): the droplet was asleep, or did not answer. Set when the vault takes the new
-- version, cleared when the droplet confirms ROTATE_CREDENTIAL; the `pending-credentials`
-- reconciler applies what is still set once the droplet serves again (after a wake).
ALTER TABLE genesis.vault_credentials ADD COLUMN apply_pending_since timestamptz;
CREATE INDEX vault_credentials_pending_idx ON genesis.vault_credentials (apply_pending_since)
    WHERE apply_pending_since IS NOT NULL;
