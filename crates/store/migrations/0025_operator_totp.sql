-- A second factor for God Mode operators (issue 19): an RFC 6238 TOTP secret, encrypted
-- with the vault's master key (AES-256-GCM, bound to the operator's id), never in clear.
-- `totp_last_step` is the last 30-second step a code was accepted for: a code is accepted
-- once, so one seen over a shoulder or in a proxy log cannot be replayed.
ALTER TABLE genesis.operators
    ADD COLUMN totp_key_version integer,
    ADD COLUMN totp_nonce       bytea,
    ADD COLUMN totp_ciphertext  bytea,
    ADD COLUMN totp_last_step   bigint,
    ADD CONSTRAINT operators_totp_whole CHECK (
        (totp_key_version IS NULL) = (totp_nonce IS NULL)
        AND (totp_nonce IS NULL) = (totp_ciphertext IS NULL)
    );
