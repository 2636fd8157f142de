-- One row per refresh-token family. Rotation and family revocation both
-- write this row first, so they serialise on it: a rotation racing a
-- revocation either lands before it (and its new token is revoked with the
-- family) or sees the family revoked and issues nothing.
CREATE TABLE refresh_families (
    family TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    -- The latest expiry of its tokens: past it the family and its rows are pruned.
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
INSERT INTO refresh_families (family, client_id, created_at, expires_at, revoked_at)
    SELECT family, MIN(client_id), MIN(created_at), MAX(expires_at), MAX(revoked_at)
    FROM refresh_tokens GROUP BY family;
CREATE INDEX refresh_families_by_expiry ON refresh_families (expires_at);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);
