-- metamesh shard state. Append-only by contract: rows are inserted, and the only column ever
-- updated is `until_rev`, which closes a version's validity interval when the next version
-- (or a tombstone) appears. That interval makes as-of reads a range check.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- One row per applied log entry, refused ones included (their `ok` is 0, `outcome` the error).
CREATE TABLE revisions (
    rev        INTEGER PRIMARY KEY,
    at_ms      INTEGER NOT NULL,          -- monotonic: max(proposed time, previous at_ms)
    principal  TEXT NOT NULL,
    request_id TEXT,
    ok         INTEGER NOT NULL,
    outcome    TEXT NOT NULL
) STRICT;
CREATE INDEX revisions_at ON revisions(at_ms, rev);
CREATE UNIQUE INDEX revisions_request ON revisions(principal, request_id)
    WHERE request_id IS NOT NULL AND ok = 1;

CREATE TABLE tenants (
    name       TEXT PRIMARY KEY,
    rev        INTEGER NOT NULL,
    at_ms      INTEGER NOT NULL,
    created_by TEXT NOT NULL
) STRICT;

CREATE TABLE schemas (
    tenant        TEXT NOT NULL,
    type_name     TEXT NOT NULL,
    version       INTEGER NOT NULL,
    base_kind     TEXT NOT NULL,
    compatibility TEXT NOT NULL,
    schema        TEXT NOT NULL,
    migration     TEXT NOT NULL,
    rev           INTEGER NOT NULL,
    at_ms         INTEGER NOT NULL,
    created_by    TEXT NOT NULL,
    PRIMARY KEY (tenant, type_name, version)
) STRICT;

-- Every URN that appears in this shard: local entities and remote edge ends alike. Edges refer
-- to nodes by integer id so that frontier expansion joins integers, not strings.
CREATE TABLE nodes (
    id  INTEGER PRIMARY KEY,
    urn TEXT NOT NULL UNIQUE
) STRICT;

-- Local entities; `id` is the entity's node id.
CREATE TABLE entities (
    id            INTEGER PRIMARY KEY REFERENCES nodes(id),
    tenant        TEXT NOT NULL,
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL,
    created_rev   INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    created_by    TEXT NOT NULL
) STRICT;
CREATE INDEX entities_tenant_kind ON entities(tenant, kind, id);

CREATE TABLE versions (
    entity_id      INTEGER NOT NULL REFERENCES entities(id),
    version        INTEGER NOT NULL,
    rev            INTEGER NOT NULL,
    until_rev      INTEGER,
    at_ms          INTEGER NOT NULL,
    by             TEXT NOT NULL,
    type_name      TEXT,
    schema_version INTEGER,
    properties     TEXT NOT NULL,
    tags           TEXT NOT NULL,
    owner          TEXT,
    status         TEXT,
    description    TEXT,
    deleted        INTEGER NOT NULL,
    PRIMARY KEY (entity_id, version)
) STRICT, WITHOUT ROWID;
CREATE INDEX versions_live ON versions(entity_id) WHERE until_rev IS NULL;
CREATE INDEX versions_rev ON versions(rev);

CREATE TABLE version_tags (
    entity_id INTEGER NOT NULL,
    version   INTEGER NOT NULL,
    tag       TEXT NOT NULL,
    PRIMARY KEY (entity_id, version, tag)
) STRICT, WITHOUT ROWID;
CREATE INDEX version_tags_tag ON version_tags(tag, entity_id);

CREATE TABLE documents (
    entity_id INTEGER NOT NULL REFERENCES entities(id),
    title     TEXT NOT NULL,
    version   INTEGER NOT NULL,
    rev       INTEGER NOT NULL,
    until_rev INTEGER,
    at_ms     INTEGER NOT NULL,
    by        TEXT NOT NULL,
    body      TEXT NOT NULL,
    deleted   INTEGER NOT NULL,
    PRIMARY KEY (entity_id, title, version)
) STRICT, WITHOUT ROWID;

-- Lineage, stored upstream (src) -> downstream (dst). Column names are '' for entity edges so
-- that they take part in the identity index. The ends' URNs are repeated beside their node ids:
-- the frontier query then reads each edge with one row lookup instead of three.
CREATE TABLE edges (
    id             INTEGER PRIMARY KEY,
    src            INTEGER NOT NULL REFERENCES nodes(id),
    src_urn        TEXT NOT NULL,
    src_version    INTEGER,
    dst            INTEGER NOT NULL REFERENCES nodes(id),
    dst_urn        TEXT NOT NULL,
    dst_version    INTEGER,
    kind           TEXT NOT NULL,
    src_column     TEXT NOT NULL,
    dst_column     TEXT NOT NULL,
    transformation TEXT,
    rev            INTEGER NOT NULL,
    until_rev      INTEGER,
    at_ms          INTEGER NOT NULL,
    by             TEXT NOT NULL
) STRICT;
CREATE INDEX edges_src ON edges(src, kind);
CREATE INDEX edges_dst ON edges(dst, kind);
CREATE UNIQUE INDEX edges_identity ON edges(
    src, dst, kind, src_column, dst_column, ifnull(src_version, 0), ifnull(dst_version, 0)
) WHERE until_rev IS NULL;

-- The change feed behind `watch`: one row per changed thing, in revision order.
CREATE TABLE changes (
    seq    INTEGER PRIMARY KEY,
    rev    INTEGER NOT NULL,
    tenant TEXT NOT NULL,
    urn    TEXT NOT NULL,
    change TEXT NOT NULL
) STRICT;
CREATE INDEX changes_rev ON changes(rev);

-- Full-text search over the current state of live entities; rowid = entity id.
CREATE VIRTUAL TABLE search USING fts5(
    name, description, tags, documents,
    tokenize = 'unicode61 remove_diacritics 2'
);
