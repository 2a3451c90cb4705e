-- soute schema: one outbox row may carry several events (issue K). Append-only:
-- never edit a released migration.

-- The events a change produces for one webhook (a push: its `push` event and
-- one `tag` event per tag) go in ONE `webhook_event` row: `event` holds their
-- JSON joined by commas (the envelope's `events` array is those bytes joined
-- again), `event_id` their ids separated by spaces, and `events` how many
-- there are, so `webhook.pending` and `delivered` still count events. Rows
-- written before this migration hold one event each.
ALTER TABLE webhook_event ADD COLUMN events INTEGER NOT NULL DEFAULT 1 CHECK (events >= 1);
