-- MLMD (ml_metadata.MetadataStoreService) on the mesh: the state of Google's MLMD model, per
-- tenant, in the shard's SQLite file, written through Raft like everything else (crate
-- metamesh-mlmd applies the writes and answers the reads).
--
-- `kind` is the node kind everywhere: 0 artifact, 1 execution, 2 context.
-- `proto` columns hold the whole encoded message as MLMD returns it (ids and times filled in);
-- the other columns are copies of its fields, for lookups, uniqueness and filter queries.
-- Ids are per tenant: types share one id space (as in MLMD), and artifacts, executions,
-- contexts and events each have their own, all starting at 1 (see mlmd_seq).

CREATE TABLE mlmd_type (
    tenant      TEXT NOT NULL,
    id          INTEGER NOT NULL,
    kind        INTEGER NOT NULL,
    name        TEXT NOT NULL,
    -- '' when the type has no version.
    version     TEXT NOT NULL,
    external_id TEXT,
    proto       BLOB NOT NULL,
    PRIMARY KEY (tenant, id),
    UNIQUE (tenant, kind, name, version)
) STRICT;
CREATE UNIQUE INDEX mlmd_type_external ON mlmd_type (tenant, kind, external_id) WHERE external_id IS NOT NULL;

CREATE TABLE mlmd_node (
    tenant      TEXT NOT NULL,
    kind        INTEGER NOT NULL,
    id          INTEGER NOT NULL,
    type_id     INTEGER NOT NULL,
    name        TEXT,
    -- Artifacts only.
    uri         TEXT,
    -- Artifact.state, or Execution.last_known_state; NULL when unset.
    state       INTEGER,
    external_id TEXT,
    create_ms   INTEGER NOT NULL,
    update_ms   INTEGER NOT NULL,
    proto       BLOB NOT NULL,
    PRIMARY KEY (tenant, kind, id)
) STRICT, WITHOUT ROWID;
CREATE UNIQUE INDEX mlmd_node_name ON mlmd_node (tenant, kind, type_id, name) WHERE name IS NOT NULL;
CREATE UNIQUE INDEX mlmd_node_external ON mlmd_node (tenant, kind, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX mlmd_node_type ON mlmd_node (tenant, kind, type_id, id);
CREATE INDEX mlmd_node_uri ON mlmd_node (tenant, kind, uri) WHERE uri IS NOT NULL;

-- One row per property (is_custom = 0) or custom property (is_custom = 1) of a node. Exactly
-- one value column is set for int, double, string and bool values; struct and proto values
-- are only in the node's `proto` and have every value column NULL.
CREATE TABLE mlmd_property (
    tenant       TEXT NOT NULL,
    kind         INTEGER NOT NULL,
    node_id      INTEGER NOT NULL,
    is_custom    INTEGER NOT NULL,
    name         TEXT NOT NULL,
    int_value    INTEGER,
    double_value REAL,
    string_value TEXT,
    bool_value   INTEGER,
    PRIMARY KEY (tenant, kind, node_id, is_custom, name)
) STRICT, WITHOUT ROWID;
-- Filter queries on a property's value (`properties.p.int_value = 42`) read these.
CREATE INDEX mlmd_property_int ON mlmd_property (tenant, kind, name, is_custom, int_value);
CREATE INDEX mlmd_property_double ON mlmd_property (tenant, kind, name, is_custom, double_value);
CREATE INDEX mlmd_property_string ON mlmd_property (tenant, kind, name, is_custom, string_value);

CREATE TABLE mlmd_event (
    tenant       TEXT NOT NULL,
    id           INTEGER NOT NULL,
    artifact_id  INTEGER NOT NULL,
    execution_id INTEGER NOT NULL,
    type         INTEGER NOT NULL,
    ms           INTEGER NOT NULL,
    proto        BLOB NOT NULL,
    PRIMARY KEY (tenant, id)
) STRICT, WITHOUT ROWID;
CREATE INDEX mlmd_event_artifact ON mlmd_event (tenant, artifact_id);
CREATE INDEX mlmd_event_execution ON mlmd_event (tenant, execution_id);

CREATE TABLE mlmd_attribution (
    tenant      TEXT NOT NULL,
    context_id  INTEGER NOT NULL,
    artifact_id INTEGER NOT NULL,
    PRIMARY KEY (tenant, context_id, artifact_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX mlmd_attribution_artifact ON mlmd_attribution (tenant, artifact_id);

CREATE TABLE mlmd_association (
    tenant       TEXT NOT NULL,
    context_id   INTEGER NOT NULL,
    execution_id INTEGER NOT NULL,
    PRIMARY KEY (tenant, context_id, execution_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX mlmd_association_execution ON mlmd_association (tenant, execution_id);

CREATE TABLE mlmd_parent_context (
    tenant    TEXT NOT NULL,
    child_id  INTEGER NOT NULL,
    parent_id INTEGER NOT NULL,
    PRIMARY KEY (tenant, child_id, parent_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX mlmd_parent_context_parent ON mlmd_parent_context (tenant, parent_id);

-- The next id of each id space ('type', 'artifact', 'execution', 'context', 'event') per tenant.
CREATE TABLE mlmd_seq (
    tenant TEXT NOT NULL,
    space  TEXT NOT NULL,
    next   INTEGER NOT NULL,
    PRIMARY KEY (tenant, space)
) STRICT, WITHOUT ROWID;
