-- Integer ids for APIs that name things by number (Brevo's `templateId` and `listIds`, src/compat/brevo):
-- a per-tenant sequence per kind (1, 2, 3 … within each account), so a number says nothing about other
-- tenants. Numbers are never reused: a deleted template's number stays unknown rather than naming
-- another one. The counter row's lock serializes one tenant's concurrent creates of one kind.
-- Lists: only those the API owns are numbered (the only ones such APIs may write); Member Center
-- lists are created on every webhook batch's first use and must not take that lock.
-- The numbering trigger and its function: src/db/functions/050_tenant_numbers.sql.

CREATE TABLE tenant_number_counters (
  tenant_id  uuid NOT NULL REFERENCES tenants(id),
  kind       text NOT NULL,
  last       integer NOT NULL,
  PRIMARY KEY (tenant_id, kind)
);

ALTER TABLE templates ADD COLUMN number integer;
UPDATE templates t SET number = n.number
  FROM (SELECT id, row_number() OVER (PARTITION BY tenant_id ORDER BY created_at, id) AS number FROM templates) n
 WHERE n.id = t.id;
ALTER TABLE templates ALTER COLUMN number SET NOT NULL;
ALTER TABLE templates ADD CONSTRAINT templates_tenant_number UNIQUE (tenant_id, number);

ALTER TABLE lists ADD COLUMN number integer;
UPDATE lists l SET number = n.number
  FROM (SELECT tenant_id, id, row_number() OVER (PARTITION BY tenant_id ORDER BY created_at, id) AS number FROM lists WHERE owner = 'api') n
 WHERE n.tenant_id = l.tenant_id AND n.id = l.id;
ALTER TABLE lists ADD CONSTRAINT lists_tenant_number UNIQUE (tenant_id, number);

INSERT INTO tenant_number_counters (tenant_id, kind, last)
SELECT tenant_id, 'templates', max(number) FROM templates GROUP BY tenant_id
UNION ALL
SELECT tenant_id, 'lists', max(number) FROM lists WHERE number IS NOT NULL GROUP BY tenant_id;
