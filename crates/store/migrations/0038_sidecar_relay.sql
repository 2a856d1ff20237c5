-- The sidecar's relay (issue 24, spec 65.3): where the droplet's n8n reaches the sidecar to
-- have its calls to the control plane signed. Reported at the handshake; the ignition maps
-- the templates' YOUR_DASHBOARD_URL to it. NULL for a sidecar that reported none.
ALTER TABLE genesis.droplets ADD COLUMN relay_url text;
