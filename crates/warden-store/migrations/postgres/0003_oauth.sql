-- The built-in OAuth 2.0 authorization server: clients and signing keys.
CREATE TABLE oauth_clients (
    client_id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    -- client_secret_basic | client_secret_post | private_key_jwt | tls_client_auth
    auth_method TEXT NOT NULL,
    -- Lower-case hex HMAC-SHA-256 of the secret under the server secret (secret methods).
    secret_hmac TEXT,
    -- PEM public key (private_key_jwt).
    public_key_pem TEXT,
    -- Expected certificate identity (tls_client_auth): a SAN URI, DNS name or subject DN.
    tls_identity TEXT,
    scopes_json TEXT NOT NULL DEFAULT '[]',
    refresh_tokens BIGINT NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    -- PKCS#8, AES-256-GCM under a key derived from the server secret, base64 (nonce || ciphertext).
    private_sealed TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- Stops signing at this time; stays published until retired_at + overlap.
    retires_at BIGINT NOT NULL
);
