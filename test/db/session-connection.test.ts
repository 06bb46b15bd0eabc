import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionConnection } from '../../src/db/pool.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { until } from '../helpers/wait.ts';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t?.drop();
});

describe('SessionConnection', () => {
  it('runs back-to-back statements on one connection with its settings, then hands it back to the pool reset', async () => {
    const session = new SessionConnection(t.db, { plan_cache_mode: 'force_generic_plan' });
    const show = () => session.query<{ pid: number; mode: string }>({ text: `SELECT pg_backend_pid() AS pid, current_setting('plan_cache_mode') AS mode` });
    // Statements that follow each other (as a group-commit writer's do) share the connection.
    const seen = [];
    let next = show();
    for (let i = 0; i < 5; i++) {
      const { rows } = await next;
      next = show();
      seen.push(rows[0]);
    }
    seen.push((await next).rows[0]);
    expect(new Set(seen.map((r) => r.pid)).size).toBe(1);
    expect(seen.every((r) => r.mode === 'force_generic_plan')).toBe(true);

    // Back in the pool once nothing follows, with the pool's defaults: no other user of that
    // connection sees the setting.
    await until(() => t.db.totalCount === t.db.idleCount, 5000, 'the connection back in the pool');
    const clients = await Promise.all(Array.from({ length: t.db.totalCount }, () => t.db.connect()));
    try {
      const modes = await Promise.all(clients.map((c) => c.query<{ pid: number; mode: string }>(`SELECT pg_backend_pid() AS pid, current_setting('plan_cache_mode') AS mode`)));
      expect(modes.map((m) => m.rows[0].pid)).toContain(seen[0].pid);
      expect(modes.map((m) => m.rows[0].mode)).toEqual(clients.map(() => 'auto'));
    } finally {
      for (const c of clients) c.release();
    }
    // Again, on a connection it held before: handed back again (db.end() waits for every one).
    await show();
    await until(() => t.db.totalCount === t.db.idleCount, 5000, 'the connection back in the pool again');
  });

  it('commits each statement on its own: a failing one is rolled back alone, and the connection goes on', async () => {
    await t.db.query('CREATE TABLE session_rows (id int PRIMARY KEY)');
    const session = new SessionConnection(t.db, { plan_cache_mode: 'force_generic_plan' });
    const first = session.query({ text: 'INSERT INTO session_rows VALUES (1)' });
    const duplicate = session.query({ text: 'INSERT INTO session_rows VALUES (2), (1)' });
    const third = session.query({ text: 'INSERT INTO session_rows VALUES (3)' });
    await first;
    await expect(duplicate).rejects.toMatchObject({ code: '23505' });
    await third;
    // Committed: another connection sees rows 1 and 3 as soon as each answer came, never 2.
    const { rows } = await t.db.query<{ id: number }>('SELECT id FROM session_rows ORDER BY id');
    expect(rows.map((r) => r.id)).toEqual([1, 3]);
  });

  it('drops a connection the server closed: the next statement runs on another', async () => {
    const session = new SessionConnection(t.db, { plan_cache_mode: 'force_generic_plan' });
    const sleeping = session.query({ text: 'SELECT pg_sleep(30) AS session_sleep' });
    const pid = await until(async () => {
      const { rows } = await t.db.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE query LIKE '%AS session_sleep' AND pid <> pg_backend_pid()`);
      return rows[0]?.pid;
    }, 5000, 'the statement running');
    await t.db.query('SELECT pg_terminate_backend($1)', [pid]);
    await expect(sleeping).rejects.toThrow();
    // At once, before the connection would have been handed back.
    const { rows } = await session.query<{ pid: number }>({ text: 'SELECT pg_backend_pid() AS pid' });
    expect(rows[0].pid).not.toBe(pid);
  });
});
