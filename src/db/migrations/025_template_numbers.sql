-- Integer template ids for APIs that name templates by number (Brevo's `templateId`, src/compat/brevo):
-- a per-tenant sequence (1, 2, 3 … within each account), so a number says nothing about other tenants.
-- Numbers are never reused: a deleted template's number stays unknown rather than naming another one.
-- The counter row's lock serializes concurrent creates of one tenant, so two never draw the same number.

CREATE TABLE template_number_counters (
  tenant_id  uuid PRIMARY KEY REFERENCES tenants(id),
  last       integer NOT NULL
);

ALTER TABLE templates ADD COLUMN number integer;

UPDATE templates t SET number = n.number
  FROM (SELECT id, row_number() OVER (PARTITION BY tenant_id ORDER BY created_at, id) AS number FROM templates) n
 WHERE n.id = t.id;

INSERT INTO template_number_counters (tenant_id, last) SELECT tenant_id, max(number) FROM templates GROUP BY tenant_id;

ALTER TABLE templates ALTER COLUMN number SET NOT NULL;
ALTER TABLE templates ADD CONSTRAINT templates_tenant_number UNIQUE (tenant_id, number);

CREATE FUNCTION templates_assign_number() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO template_number_counters AS c (tenant_id, last) VALUES (NEW.tenant_id, 1)
  ON CONFLICT (tenant_id) DO UPDATE SET last = c.last + 1
  RETURNING last INTO NEW.number;
  RETURN NEW;
END $$;

CREATE TRIGGER templates_number BEFORE INSERT ON templates FOR EACH ROW EXECUTE FUNCTION templates_assign_number();
