import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../src/db/migrate.ts';
import { MESSAGE_STATUS_RANK, MESSAGE_STATUSES } from '../../src/outbox/status.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database.drop());

describe('the message status vocabulary, declared once in src/outbox/status.ts', () => {
  it('message_status_rank() in SQL ranks every status as the TypeScript constant does, and unknown text as NULL', async () => {
    const { rows } = await database.db.query<{ status: string; rank: number | null }>(
      'SELECT s AS status, message_status_rank(s) AS rank FROM unnest($1::text[]) AS s',
      [[...MESSAGE_STATUSES, 'delivering']],
    );
    expect(Object.fromEntries(rows.map((r) => [r.status, r.rank]))).toEqual({ ...MESSAGE_STATUS_RANK, delivering: null });
  });

  it('the CHECK on messages.status admits exactly these statuses', async () => {
    const { rows } = await database.db.query<{ def: string }>(
      `SELECT pg_get_constraintdef(c.oid) AS def FROM pg_constraint c
        WHERE c.conrelid = 'messages'::regclass AND c.contype = 'c' AND pg_get_constraintdef(c.oid) LIKE '%status%'`,
    );
    expect(rows).toHaveLength(1);
    const inCheck = [...rows[0].def.matchAll(/'([a-z_]+)'::text/g)].map((m) => m[1]);
    expect(inCheck.sort()).toEqual([...MESSAGE_STATUSES].sort());
  });
});

describe('functions/*.sql', () => {
  it('are applied after the migrations, and again only when a file changed', async () => {
    const { rows } = await database.db.query<{ name: string }>('SELECT name FROM schema_functions ORDER BY name');
    expect(rows.map((r) => r.name)).toEqual(['010_outbox.sql', '020_event_counters.sql', '030_undeliverable.sql', '040_webhooks.sql', '050_tenant_numbers.sql']);
    expect(await migrate(database.db)).toEqual([]);
    // A body changed behind migrate's back (or an edited file): the recorded hash no longer
    // matches, so the next start applies the file again.
    await database.db.query(`UPDATE schema_functions SET sha256 = 'stale' WHERE name = '010_outbox.sql'`);
    await database.db.query(`CREATE OR REPLACE FUNCTION message_status_rank(status text) RETURNS integer LANGUAGE sql IMMUTABLE AS $$ SELECT 7 $$`);
    expect(await migrate(database.db)).toEqual(['functions/010_outbox.sql']);
    const { rows: rank } = await database.db.query('SELECT message_status_rank($1) AS r', ['clicked']);
    expect(rank[0].r).toBe(MESSAGE_STATUS_RANK.clicked);
  });

  it('every trigger the migrations used to create exists once', async () => {
    const { rows } = await database.db.query<{ tgname: string }>(
      `SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY tgname`,
    );
    expect(rows.map((r) => r.tgname)).toEqual([
      'lists_number', 'message_events_count', 'message_events_hourly_sends', 'message_events_identity_counters', 'message_events_undeliverable',
      'message_events_webhooks', 'messages_webhooks', 'outbound_events_fan_out', 'send_jobs_webhooks',
      'suppressions_webhooks_delete', 'suppressions_webhooks_insert', 'templates_number',
    ]);
  });
});
