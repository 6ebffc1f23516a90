-- The append-only event log, embedded. SQLite serialises writers, so an append seals its
-- events into the ledger (global order + hash chain) in the same transaction.

CREATE TABLE events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id       BLOB    NOT NULL UNIQUE,
    stream_id      TEXT    NOT NULL,
    stream_version INTEGER NOT NULL CHECK (stream_version >= 1),
    event_type     TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    payload        TEXT    NOT NULL,
    metadata       TEXT    NOT NULL,
    UNIQUE (stream_id, stream_version)
);

CREATE TABLE ledger (
    position  INTEGER PRIMARY KEY,
    event_row INTEGER NOT NULL,
    hash      BLOB    NOT NULL
);

CREATE INDEX ledger_event_row ON ledger (event_row);

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only: UPDATE on events is refused'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only: DELETE on events is refused'); END;
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
BEGIN SELECT RAISE(ABORT, 'the event log is append-only: UPDATE on ledger is refused'); END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
BEGIN SELECT RAISE(ABORT, 'the event log is append-only: DELETE on ledger is refused'); END;
