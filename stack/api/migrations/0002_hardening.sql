-- Hardening before the fleet: provisioning keys get a use count and a
-- bounded life, logs get the indexes their trimming needs, and fleet names
-- follow the repository-name grammar (see turtle-fleet-api's FleetName).

-- A key registers at most max_uses devices. A key made before this migration
-- had no count: it keeps the uses it has had (at least one more if it had
-- none), and its life is cut to the new maximum of 30 days from now.
ALTER TABLE provisioning_keys
    ADD COLUMN max_uses integer NOT NULL DEFAULT 1,
    ADD COLUMN uses integer NOT NULL DEFAULT 0;
UPDATE provisioning_keys k SET
    uses = (SELECT count(*) FROM devices d WHERE d.provisioning_key_id = k.id),
    max_uses = GREATEST(1, (SELECT count(*) FROM devices d WHERE d.provisioning_key_id = k.id)),
    expires_at = LEAST(k.expires_at, now() + interval '30 days');
ALTER TABLE provisioning_keys
    ADD CONSTRAINT provisioning_keys_uses_check CHECK (max_uses >= 1 AND uses >= 0 AND uses <= max_uses);
CREATE INDEX provisioning_keys_fleet ON provisioning_keys (fleet_id);

-- Trimming a device's lines to the row cap walks its newest ids; the
-- retention sweep finds old lines by when they arrived.
CREATE INDEX device_logs_device_id ON device_logs (device_uuid, id);
CREATE INDEX device_logs_received_at ON device_logs (received_at);

-- Fleet names: [a-z0-9]+(-+[a-z0-9]+)*, at most 63 bytes. A database holding a
-- name outside it stops here, naming the fleets to rename.
DO $$
DECLARE
    bad text;
BEGIN
    SELECT string_agg(format('%s (id %s)', quote_literal(name), id), ', ' ORDER BY id) INTO bad
    FROM fleets WHERE NOT (name ~ '^[a-z0-9]+(-+[a-z0-9]+)*$' AND length(name) <= 63);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'fleet names % are not valid repository names: rename each to lowercase letters and digits joined by dashes (UPDATE fleets SET name = ''...'' WHERE id = ...) and start the api again', bad;
    END IF;
END
$$;
ALTER TABLE fleets DROP CONSTRAINT fleets_name_check;
ALTER TABLE fleets ADD CONSTRAINT fleets_name_check
    CHECK (name ~ '^[a-z0-9]+(-+[a-z0-9]+)*$' AND length(name) <= 63);
