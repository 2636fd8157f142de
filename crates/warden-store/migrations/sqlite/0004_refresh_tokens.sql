-- Refresh tokens of the built-in authorization server: stored as HMACs,
-- single use, grouped in families so a reused one revokes its whole family.
CREATE TABLE refresh_tokens (
    token_hmac TEXT PRIMARY KEY,
    family TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    revoked_at BIGINT,
    -- The access token issued with this refresh token (revoked with the family).
    access_jti TEXT NOT NULL,
    access_exp BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family);
