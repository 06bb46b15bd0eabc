import { newId } from '../../src/ids.ts';
import { resolveWindow } from '../../src/observability/cursor.ts';
import { listMessages } from '../../src/observability/messages.ts';
import { ENQUEUE_WAKE, enqueueCtes } from '../../src/outbox/enqueue.ts';
import { createTenant } from '../../src/tenants/tenants.ts';
import { benchDatabase, fmt } from '../lib.ts';

/**
 * GET /v1/messages?tag=name:value and its side table message_tags (migration 030), one row per
 * tag of a job, written at enqueue.
 * Write cost: BENCH_TAG_MESSAGES messages in 5,000-row enqueue statements (jobs of JOB_SIZE
 * messages, each job with the usual tags campaign_id, site_id, list_id, segment), against the same
 * statements with no tags (no message_tags rows), alternated.
 * Read: in one tenant with 2 × BENCH_TAG_MESSAGES + BIG messages, the first page of a rare tag
 * (RARE one-message jobs), of one job's tag (BIG messages, as a list send's campaign_id) and of a
 * tag of half the small jobs (more sources than listMessages lists), BENCH_TAG_RUNS times through
 * listMessages.
 */
const N = Number(process.env.BENCH_TAG_MESSAGES ?? 200_000);
const BATCH = 5_000;
const JOB_SIZE = 10;
const BIG = Number(process.env.BENCH_TAG_BIG ?? 200_000);
const RUNS = Number(process.env.BENCH_TAG_RUNS ?? 30);
const RARE = 100;

// One statement: `jobs` proxy jobs of `size` messages each, enqueued as producers do.
const ENQUEUE = `
  WITH jobs AS (
    INSERT INTO proxy_jobs (id, tenant_id, message_type, from_address, subject, html, text_body, idempotency_key)
    SELECT uuid_v7(), $1, 'transactional', 'news@acme.test', 'Hello', '<p>x</p>', 'x', gen_random_uuid()::text
      FROM generate_series(1, $2::int)
    RETURNING id
  ), tagged AS (
    SELECT id, CASE WHEN $4::text = 'none' THEN '{}'::jsonb
                    WHEN $4::text <> 'random' THEN jsonb_build_object('campaign_id', $4::text)
                    ELSE jsonb_build_object('campaign_id', 'c-' || floor(random() * 500)::int, 'site_id', 'site-' || floor(random() * 5)::int,
                                            'list_id', 'l-' || floor(random() * 50)::int, 'segment', CASE WHEN random() < 0.5 THEN 'all' ELSE 'vip' END)
               END AS tags
      FROM jobs
  ), ${enqueueCtes(`
    SELECT uuid_v7() AS id, $1::uuid AS tenant_id, tagged.id AS proxy_job_id, NULL::uuid AS send_job_id, NULL::uuid AS subscriber_id,
           'u' || g || '@example.com' AS recipient, tagged.tags, '{}'::jsonb AS headers, now() + interval '1 day' AS next_attempt_at,
           NULL::timestamptz AS expires_at
      FROM tagged, generate_series(1, $3::int) g`)}
  SELECT ${ENQUEUE_WAKE}`;

export default async function run() {
  const bench = await benchDatabase();
  try {
    const { db } = bench;
    const tenant = await createTenant(db, 'Tags');
    const enqueue = (jobs: number, size: number, tags: string) => db.query(ENQUEUE, [tenant.id, jobs, size, tags]);
    const round = async (tags: string) => {
      const started = performance.now();
      for (let done = 0; done < N / 2; done += BATCH) await enqueue(BATCH / JOB_SIZE, JOB_SIZE, tags);
      return N / 2 / ((performance.now() - started) / 1000);
    };
    const untagged = [await round('none')];
    const tagged = [await round('random')];
    untagged.push(await round('none'));
    tagged.push(await round('random'));
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    console.log(`enqueue without tags: ${untagged.map((x) => fmt(x)).join(' and ')} messages/s; with 4 tags a job of ${JOB_SIZE}: ${tagged.map((x) => fmt(x)).join(' and ')}`);
    console.log(`ratio with/without: ${(mean(tagged) / mean(untagged)).toFixed(2)}`);

    // A list-send-sized job under one tag, and a rare tag on RARE one-message jobs.
    const big = newId();
    await db.query(
      `INSERT INTO proxy_jobs (id, tenant_id, message_type, from_address, subject, html, text_body, idempotency_key)
       VALUES ($1, $2, 'transactional', 'news@acme.test', 'Hello', '<p>x</p>', 'x', $3)`,
      [big, tenant.id, big],
    );
    for (let done = 0; done < BIG; done += BATCH) {
      await db.query(
        `WITH ${enqueueCtes(`
           SELECT uuid_v7() AS id, $1::uuid AS tenant_id, $2::uuid AS proxy_job_id, NULL::uuid AS send_job_id, NULL::uuid AS subscriber_id,
                  'b' || g || '@example.com' AS recipient, '{"campaign_id": "big"}'::jsonb AS tags, '{}'::jsonb AS headers,
                  now() + interval '1 day' AS next_attempt_at, NULL::timestamptz AS expires_at
             FROM generate_series(1, $3::int) g`)}
         SELECT ${ENQUEUE_WAKE}`,
        [tenant.id, big, Math.min(BATCH, BIG - done)],
      );
    }
    await enqueue(RARE, 1, 'rare');
    // Spread over the window, as a month of sends is (enqueue stamps them all now()).
    await db.query(`UPDATE messages SET created_at = now() - random() * interval '29 days'`);
    await db.query('VACUUM ANALYZE messages');
    await db.query('ANALYZE message_tags');
    const total = (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM messages WHERE tenant_id = $1', [tenant.id])).rows[0].n;
    const sources = (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM message_tags')).rows[0].n;

    const page = async (tag: string) => {
      const times: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const started = performance.now();
        const r = await listMessages(db, tenant.id, { window: resolveWindow(undefined, undefined), tag }, { limit: 50, unmask: false });
        times.push(performance.now() - started);
        if (r.data.length !== 50) throw new Error(`expected a full page, got ${r.data.length}`);
      }
      times.sort((a, b) => a - b);
      return { p50: times[Math.floor(RUNS / 2)], p99: times[Math.min(RUNS - 1, Math.floor(RUNS * 0.99))] };
    };
    const rare = await page('campaign_id:rare');
    const common = await page('campaign_id:big');
    const some = await page('segment:vip');
    console.log(`${fmt(total)} messages in the tenant, ${fmt(sources)} message_tags rows`);
    console.log(`first page of a rare tag (${RARE} messages of ${RARE} jobs): p50 ${rare.p50.toFixed(1)} ms, p99 ${rare.p99.toFixed(1)} ms`);
    console.log(`first page of one job's tag (${fmt(BIG)} messages): p50 ${common.p50.toFixed(1)} ms, p99 ${common.p99.toFixed(1)} ms`);
    console.log(`first page of a tag of half the small jobs (~${fmt(N / 2)} messages): p50 ${some.p50.toFixed(1)} ms, p99 ${some.p99.toFixed(1)} ms`);
  } finally {
    await bench.drop();
  }
}
