CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    hash        BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX api_keys_tenant ON api_keys(tenant_id, created_at);

CREATE TABLE events (
    id          BIGSERIAL PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    at          BIGINT NOT NULL,
    type        TEXT NOT NULL,
    feature     TEXT,
    campaign    TEXT,
    data        TEXT NOT NULL
);
CREATE INDEX events_tenant_id ON events(tenant_id, id);
CREATE INDEX events_tenant_type ON events(tenant_id, type, id);
CREATE INDEX events_tenant_at ON events(tenant_id, at);

CREATE TABLE audit_records (
    tenant_id   TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    details     TEXT NOT NULL,
    prev_hash   BYTEA NOT NULL,
    hash        BYTEA NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);

CREATE TABLE audit_heads (
    tenant_id   TEXT PRIMARY KEY,
    seq         BIGINT NOT NULL,
    hash        BYTEA NOT NULL
);
