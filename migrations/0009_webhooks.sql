-- soute schema: webhooks (issue K). Append-only: never edit a released
-- migration.

-- A receiver of event notifications, configured by an admin with
-- `soute webhook add`. `events` is the canonical comma list of actions it
-- subscribes to (push,delete,pull,tag,login-failure), `repo_pattern` an
-- access-rule glob (`**`: every repository). The secret signs deliveries
-- (HMAC-SHA256); it is stored as given (the database is 0600) and is never
-- listed nor logged. `pending` counts its rows in `webhook_event` (kept in
-- the same transactions that insert and delete them) so the backlog bound is
-- one indexed UPDATE, never a count.
CREATE TABLE webhook (
    id                INTEGER PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    url               TEXT NOT NULL,
    events            TEXT NOT NULL,
    repo_pattern      TEXT NOT NULL DEFAULT '**',
    secret            TEXT,
    pending           INTEGER NOT NULL DEFAULT 0 CHECK (pending >= 0),
    delivered         INTEGER NOT NULL DEFAULT 0,
    dropped           INTEGER NOT NULL DEFAULT 0,
    last_error        TEXT,
    last_error_at     INTEGER,
    last_delivered_at INTEGER,
    created_at        INTEGER NOT NULL
) STRICT;

-- The outbox: one row per event and webhook that subscribes to it, written
-- in the transaction of the change it describes, deleted once the receiver
-- answered 2xx. `seq` orders a webhook's deliveries; `event_id` is the
-- event's stable id (the same for every webhook and every retry), `event`
-- the JSON of one element of the envelope's `events` array.
CREATE TABLE webhook_event (
    seq        INTEGER PRIMARY KEY,
    webhook_id INTEGER NOT NULL REFERENCES webhook(id) ON DELETE CASCADE,
    event_id   TEXT NOT NULL,
    event      TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE INDEX webhook_event_by_webhook ON webhook_event (webhook_id, seq);
