-- Revoked access tokens, by `jti`, kept until the token would have expired.
CREATE TABLE revoked_tokens (
    jti TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL,
    reason TEXT
);
CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens (expires_at);
