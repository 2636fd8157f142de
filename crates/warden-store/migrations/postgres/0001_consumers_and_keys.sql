-- Consumers and their API keys. Times are Unix seconds.
CREATE TABLE store_meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    -- Bumped by every change; gateways poll it to know when to reload.
    version BIGINT NOT NULL,
    -- Identifies the server secret keys were hashed under (not the secret).
    secret_id TEXT
);
INSERT INTO store_meta (id, version) VALUES (1, 0);

CREATE TABLE consumers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    groups_json TEXT NOT NULL DEFAULT '[]',
    attributes_json TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    source TEXT NOT NULL DEFAULT 'store' CHECK (source IN ('store', 'config')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    prefix TEXT NOT NULL UNIQUE,
    consumer_id TEXT NOT NULL REFERENCES consumers (id) ON DELETE CASCADE,
    -- Lower-case hex HMAC-SHA-256 of the whole key under the server secret.
    key_hmac TEXT NOT NULL,
    label TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX api_keys_by_consumer ON api_keys (consumer_id);
