import { newId } from '../../src/ids.ts';
import { resolveWindow } from '../../src/observability/cursor.ts';
import { listMessages } from '../../src/observability/messages.ts';
import { createTenant } from '../../src/tenants/tenants.ts';
import { benchDatabase, fmt } from '../lib.ts';

/**
 * GET /v1/messages?tag=name:value and its GIN index (messages_tags, migration 026).
 * Write cost: messages with the tags every send carries (campaign_id, site_id, list_id, segment)
 * are inserted in 5,000-row statements without the index, with it, and without it again (the
 * baseline is the mean of the two runs without; the table only grows, which favours neither).
 * Read: the first page of a rare tag (RARE messages) in one tenant's 30 days, through
 * listMessages, with the index and without it (the tenant's window read and filtered).
 */
const N = Number(process.env.BENCH_TAG_MESSAGES ?? 200_000);
const BATCH = 5_000;
const RUNS = Number(process.env.BENCH_TAG_RUNS ?? 30);
const RARE = 100;

const INSERT = `
  INSERT INTO messages (id, tenant_id, proxy_job_id, recipient, status, created_at, updated_at, tags)
  SELECT uuid_v7(), $1, $2, 'u' || g || '@example.com', 'delivered', now() - random() * interval '29 days', now(),
         jsonb_build_object('campaign_id', 'c-' || floor(random() * 500)::int, 'site_id', 'site-' || floor(random() * 5)::int,
                            'list_id', 'l-' || floor(random() * 50)::int, 'segment', CASE WHEN random() < 0.5 THEN 'all' ELSE 'vip' END)
    FROM generate_series(1, $3::int) g`;

export default async function run() {
  const bench = await benchDatabase();
  try {
    const { db } = bench;
    const tenant = await createTenant(db, 'Tags');
    const job = newId();
    await db.query(
      `INSERT INTO proxy_jobs (id, tenant_id, message_type, from_address, subject, html, text_body, idempotency_key)
       VALUES ($1, $2, 'transactional', 'news@acme.test', 'Hello', '<p>x</p>', 'x', $3)`,
      [job, tenant.id, job],
    );
    const insertRound = async () => {
      const started = performance.now();
      for (let done = 0; done < N; done += BATCH) await db.query(INSERT, [tenant.id, job, Math.min(BATCH, N - done)]);
      return N / ((performance.now() - started) / 1000);
    };
    await db.query('DROP INDEX messages_tags');
    const before = await insertRound();
    await db.query('CREATE INDEX messages_tags ON messages USING gin (tags jsonb_path_ops)');
    const indexed = await insertRound();
    await db.query('DROP INDEX messages_tags');
    const after = await insertRound();
    const baseline = (before + after) / 2;
    console.log(`insert without the index: ${fmt(before)} and ${fmt(after)} messages/s (baseline ${fmt(baseline)})`);
    console.log(`insert with messages_tags: ${fmt(indexed)} messages/s`);
    console.log(`ratio with/without: ${(indexed / baseline).toFixed(2)}`);

    // A rare tag among the 3N messages, spread over the window.
    await db.query(
      `UPDATE messages SET tags = tags || '{"campaign_id": "rare"}' WHERE id IN (SELECT id FROM messages WHERE tenant_id = $1 ORDER BY random() LIMIT ${RARE})`,
      [tenant.id],
    );
    const page = async () => {
      const times: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const started = performance.now();
        const r = await listMessages(db, tenant.id, { window: resolveWindow(undefined, undefined), tag: 'campaign_id:rare' }, { limit: 50, unmask: false });
        times.push(performance.now() - started);
        if (r.data.length !== 50) throw new Error(`expected a full page, got ${r.data.length}`);
      }
      times.sort((a, b) => a - b);
      return { p50: times[Math.floor(RUNS / 2)], p99: times[Math.min(RUNS - 1, Math.floor(RUNS * 0.99))] };
    };
    await db.query('VACUUM ANALYZE messages');
    const scan = await page();
    await db.query('CREATE INDEX messages_tags ON messages USING gin (tags jsonb_path_ops)');
    await db.query('ANALYZE messages');
    const gin = await page();
    console.log(`first page of a rare tag (${RARE} of ${fmt(3 * N)} messages), without the index: p50 ${scan.p50.toFixed(1)} ms, p99 ${scan.p99.toFixed(1)} ms`);
    console.log(`first page of a rare tag, with messages_tags: p50 ${gin.p50.toFixed(1)} ms, p99 ${gin.p99.toFixed(1)} ms`);
    console.log(`ratio without/with (p50): ${(scan.p50 / gin.p50).toFixed(1)}`);
  } finally {
    await bench.drop();
  }
}
