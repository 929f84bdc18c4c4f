-- The first schema of turtle-api: fleets, their releases, provisioning keys,
-- devices (with their VPN address and last state report) and device logs.

CREATE TABLE fleets (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9-]{1,63}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE releases (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    fleet_id bigint NOT NULL REFERENCES fleets (id) ON DELETE CASCADE,
    version integer NOT NULL,
    compose text NOT NULL,
    -- {"<service>": "<repo>@sha256:<digest>"}
    images jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (fleet_id, version),
    UNIQUE (fleet_id, id)
);

-- The release an admin pinned; NULL means the fleet's newest release.
ALTER TABLE fleets ADD COLUMN target_release_id bigint;
ALTER TABLE fleets ADD CONSTRAINT fleets_target_release_fk
    FOREIGN KEY (id, target_release_id) REFERENCES releases (fleet_id, id);

CREATE TABLE provisioning_keys (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    fleet_id bigint NOT NULL REFERENCES fleets (id) ON DELETE CASCADE,
    -- SHA-256 of the key; the key itself is shown once and never stored.
    key_sha256 bytea NOT NULL UNIQUE,
    description text NOT NULL DEFAULT '',
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE devices (
    uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    fleet_id bigint NOT NULL REFERENCES fleets (id),
    name text,
    -- SHA-256 of the device key.
    key_sha256 bytea NOT NULL UNIQUE,
    provisioning_key_id bigint REFERENCES provisioning_keys (id) ON DELETE SET NULL,
    -- base64 of the 32-byte WireGuard public key, and the tunnel address given.
    wireguard_public_key text UNIQUE,
    vpn_address inet UNIQUE,
    registered_at timestamptz NOT NULL DEFAULT now(),
    last_seen timestamptz,
    state jsonb,
    state_at timestamptz,
    CHECK ((wireguard_public_key IS NULL) = (vpn_address IS NULL))
);
CREATE INDEX devices_fleet ON devices (fleet_id);

CREATE TABLE device_logs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_uuid uuid NOT NULL REFERENCES devices (uuid) ON DELETE CASCADE,
    at timestamptz NOT NULL,
    service text,
    message text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX device_logs_device_at ON device_logs (device_uuid, at, id);
