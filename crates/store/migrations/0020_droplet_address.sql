-- The public IPv4 address the cloud API reported for a droplet (issue 18): a handshake is
-- accepted only from it, so a provisioning token read from the droplet's user-data is
-- useless anywhere else.

ALTER TABLE genesis.droplets ADD COLUMN public_ipv4 text;
