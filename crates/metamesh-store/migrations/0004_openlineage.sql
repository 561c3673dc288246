-- OpenLineage events as received (Command::OpenLineage, src/openlineage.rs). Each is kept
-- once per tenant under the SHA-256 of its JSON, which makes a re-sent event a no-op; the
-- catalog entities and edges the events map onto live in the usual tables. The Marquez-shaped
-- `/api/v1/events/lineage` and a run's event history are read from here.
CREATE TABLE ol_events (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant        TEXT NOT NULL,
    digest        BLOB NOT NULL,
    rev           INTEGER NOT NULL,
    at_ms         INTEGER NOT NULL,
    by            TEXT NOT NULL,
    event_time_ms INTEGER NOT NULL,
    kind          TEXT NOT NULL,
    event_type    TEXT,
    run_id        TEXT,
    job_namespace TEXT,
    job_name      TEXT,
    body          TEXT NOT NULL,
    UNIQUE (tenant, digest)
) STRICT;
CREATE INDEX ol_events_time ON ol_events(tenant, event_time_ms, seq);
CREATE INDEX ol_events_run ON ol_events(tenant, run_id) WHERE run_id IS NOT NULL;
