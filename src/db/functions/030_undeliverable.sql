-- The undeliverable queue's intake (src/observability/undeliverable.ts folds it).

-- Its own trigger (count_message_events keeps the counters), once per statement, whoever inserts.
CREATE OR REPLACE FUNCTION track_undeliverable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO undeliverable_pending (event_id)
  SELECT id FROM new_events WHERE type IN ('bounce', 'complaint', 'reject', 'suppression');
  RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER message_events_undeliverable
  AFTER INSERT ON message_events
  REFERENCING NEW TABLE AS new_events
  FOR EACH STATEMENT EXECUTE FUNCTION track_undeliverable();
