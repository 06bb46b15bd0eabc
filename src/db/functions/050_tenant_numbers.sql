-- Per-tenant integer ids (migration 025: tenant_number_counters, templates.number, lists.number):
-- every row inserted takes its tenant's next number of its table's kind. The counter row's
-- lock serializes one tenant's concurrent creates of one kind.
CREATE OR REPLACE FUNCTION assign_tenant_number() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO tenant_number_counters AS c (tenant_id, kind, last) VALUES (NEW.tenant_id, TG_TABLE_NAME, 1)
  ON CONFLICT (tenant_id, kind) DO UPDATE SET last = c.last + 1
  RETURNING last INTO NEW.number;
  RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER templates_number BEFORE INSERT ON templates FOR EACH ROW EXECUTE FUNCTION assign_tenant_number();

-- Only lists the API owns are numbered: Member Center lists never take the counter's lock.
CREATE OR REPLACE TRIGGER lists_number BEFORE INSERT ON lists FOR EACH ROW WHEN (NEW.owner = 'api') EXECUTE FUNCTION assign_tenant_number();
