-- GET /v1/messages?tag=name:value (a tags @> '{"name": "value"}' test beside the tenant and window):
-- without it a rare tag scans every message of the tenant's window. jsonb_path_ops indexes each
-- name/value pair as one hash, the smallest GIN form, and serves exactly @>.
CREATE INDEX messages_tags ON messages USING gin (tags jsonb_path_ops);
