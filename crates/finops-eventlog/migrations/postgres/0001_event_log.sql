-- The append-only event log. `events` holds what writers committed; `ledger` is the
-- global order, written only by the sealer, which follows commit order (see
-- src/postgres.rs) and chains a SHA-256 hash through every entry.

CREATE TABLE events (
    -- Insertion id from a sequence: NOT the global order. A transaction that took a
    -- lower id can commit after one that took a higher id; only the ledger is gap-free.
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The writing transaction; the sealer only reads below the oldest one in flight.
    tx_id          xid8   NOT NULL DEFAULT pg_current_xact_id(),
    event_id       uuid   NOT NULL,
    stream_id      text   NOT NULL,
    stream_version bigint NOT NULL CHECK (stream_version >= 1),
    event_type     text   NOT NULL,
    schema_version integer NOT NULL,
    -- Stored as text, not jsonb: the hash chain covers these exact bytes.
    payload        text   NOT NULL,
    metadata       text   NOT NULL,
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
);

CREATE INDEX events_commit_order ON events (tx_id, id);

CREATE TABLE ledger (
    position  bigint PRIMARY KEY,
    event_row bigint NOT NULL,
    hash      bytea  NOT NULL
);

CREATE INDEX ledger_event_row ON ledger (event_row);

-- Nothing is deleted or rewritten: corrections are new events.
CREATE FUNCTION finops_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only: % on % is refused', TG_OP, TG_TABLE_NAME;
END;
$$;

CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION finops_refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION finops_refuse_change();
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON ledger
    FOR EACH ROW EXECUTE FUNCTION finops_refuse_change();
CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON ledger
    FOR EACH STATEMENT EXECUTE FUNCTION finops_refuse_change();
