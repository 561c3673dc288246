-- Cross-shard lineage (DESIGN §6). An edge with one end in a tenant of another shard is
-- queued here in the transaction that writes (or removes) it; the leader's delivery task sends
-- the entries to the shard owning that tenant and then removes them through Raft. Ids are
-- never reused (AUTOINCREMENT): the receiving shard skips ids it already applied.
CREATE TABLE outbox (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    target  TEXT NOT NULL,
    rev     INTEGER NOT NULL,
    at_ms   INTEGER NOT NULL,
    removed INTEGER NOT NULL,
    edge    TEXT NOT NULL
) STRICT;

-- The last outbox id applied from each origin shard group: redelivered references are skipped.
CREATE TABLE inbox (
    origin  TEXT PRIMARY KEY,
    last_id INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
