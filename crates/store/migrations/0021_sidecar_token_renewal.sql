-- Sidecar token renewal (issue 18, spec 65.1): a token near its end is renewed on
-- heartbeat; the old one keeps working until it expires (the overlap), and is renewed at
-- most once per ten minutes however often it is presented.

ALTER TABLE genesis.sidecar_tokens ADD COLUMN renewed_at timestamptz;
