CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    hash        BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX api_keys_tenant ON api_keys(tenant_id, created_at);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT NOT NULL,
    at          INTEGER NOT NULL,
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
    seq         INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    details     TEXT NOT NULL,
    prev_hash   BLOB NOT NULL,
    hash        BLOB NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);

CREATE TABLE audit_heads (
    tenant_id   TEXT PRIMARY KEY,
    seq         INTEGER NOT NULL,
    hash        BLOB NOT NULL
);
