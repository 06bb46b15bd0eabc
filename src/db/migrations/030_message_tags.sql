-- GET /v1/messages?tag=name:value through a side table written once at enqueue (src/outbox/enqueue.ts),
-- instead of the GIN index messages_tags (026) that both status updates of every message wrote again
-- (a list send lost ~20% of its throughput to it). Every message of a job carries its job's tags (a
-- transactional request's, a list job's campaign/list/job), so a row names the job, not the message:
-- a 1,000,000-member list send writes 3 rows, not 3,000,000. source_id is the message's send_job_id,
-- else its proxy_job_id, else its own id, as `source` says (the reader filters only the columns the
-- tag's sources need). Only string values are searchable, as the filter compares strings (a
-- tags @> '{"name": "value"}' test before).
CREATE TABLE message_tags (
  tenant_id  uuid NOT NULL REFERENCES tenants(id),
  name       text NOT NULL,
  value      text NOT NULL,
  source_id  uuid NOT NULL,
  source     text NOT NULL CHECK (source IN ('send_job', 'proxy_job', 'message')),
  PRIMARY KEY (tenant_id, name, value, source_id) INCLUDE (source)
);

INSERT INTO message_tags (tenant_id, name, value, source_id, source)
SELECT DISTINCT m.tenant_id, t.key, t.value #>> '{}', coalesce(m.send_job_id, m.proxy_job_id, m.id),
       CASE WHEN m.send_job_id IS NOT NULL THEN 'send_job' WHEN m.proxy_job_id IS NOT NULL THEN 'proxy_job' ELSE 'message' END
  FROM messages m, jsonb_each(m.tags) t
 WHERE jsonb_typeof(t.value) = 'string';

DROP INDEX messages_tags;
