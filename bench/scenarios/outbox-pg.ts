import { readFileSync } from 'node:fs';
import { newId } from '../../src/ids.ts';
import { claimMessages } from '../../src/outbox/claim.ts';
import { ENQUEUE_WAKE, enqueueCtes } from '../../src/outbox/enqueue.ts';
import { recordOutcomes } from '../../src/outbox/outcomes.ts';
import { createTenant } from '../../src/tenants/tenants.ts';
import { benchDatabase } from '../lib.ts';

/**
 * PostgreSQL's cost per message of the outbox's own statements, without the engine, SMTP or the
 * machine's load in the way: on one connection, BENCH_OUTBOX_MESSAGES (10,000) messages with a list
 * send's tags are enqueued in 1,000-row statements, then claimed and recorded sent in batches of
 * BENCH_OUTBOX_BATCH (20), BENCH_OUTBOX_ROUNDS (3) times after a VACUUM. Printed: the backend's CPU
 * (utime + stime from /proc: the server must run on this machine) and the WAL written per message;
 * WAL bytes do not move with load, so they compare two schemas even on a busy machine.
 */
const N = Number(process.env.BENCH_OUTBOX_MESSAGES ?? 10_000);
const BATCH = Number(process.env.BENCH_OUTBOX_BATCH ?? 20);
const ROUNDS = Number(process.env.BENCH_OUTBOX_ROUNDS ?? 3);

/** CPU milliseconds of a process so far. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

export default async function run() {
  const bench = await benchDatabase();
  const client = await bench.db.connect();
  try {
    const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    const tenant = await createTenant(client, 'Outbox');
    const lsn = async () => (await client.query<{ l: string }>('SELECT pg_current_wal_insert_lsn()::text AS l')).rows[0].l;
    const walSince = async (from: string) => Number((await client.query<{ w: string }>('SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1) AS w', [from])).rows[0].w);
    for (let round = 1; round <= ROUNDS; round++) {
      await client.query('VACUUM ANALYZE messages');
      const job = newId();
      await client.query(
        `INSERT INTO proxy_jobs (id, tenant_id, message_type, from_address, subject, html, text_body, idempotency_key)
         VALUES ($1, $2, 'transactional', 'news@acme.test', 'Hello', '<p>x</p>', 'x', $3)`,
        [job, tenant.id, job],
      );
      const c0 = cpuMs(pid);
      const l0 = await lsn();
      for (let done = 0; done < N; done += 1000) {
        await client.query(
          `WITH ${enqueueCtes(`
             SELECT uuid_v7() AS id, $1::uuid AS tenant_id, $2::uuid AS proxy_job_id, NULL::uuid AS send_job_id, NULL::uuid AS subscriber_id,
                    'u' || g || '@example.com' AS recipient, jsonb_build_object('campaign_id', $2::text, 'list_id', 'l1', 'send_job_id', $2::text) AS tags,
                    '{}'::jsonb AS headers, now() AS next_attempt_at, NULL::timestamptz AS expires_at
               FROM generate_series(1, $3::int) g`)}
           SELECT ${ENQUEUE_WAKE}`,
          [tenant.id, job, Math.min(1000, N - done)],
        );
      }
      const c1 = cpuMs(pid);
      const enqueueWal = await walSince(l0);
      const l1 = await lsn();
      let sent = 0;
      for (;;) {
        const claimed = await claimMessages(client, 'bench', BATCH, 60);
        if (!claimed.length) break;
        await recordOutcomes(client, 'bench', claimed.map((c) => ({ id: c.id, attempt: c.attempts, kind: 'sent' as const, providerMessageId: `p-${c.id}` })));
        sent += claimed.length;
      }
      const c2 = cpuMs(pid);
      const sendWal = await walSince(l1);
      console.log(
        `round ${round}: enqueue ${(((c1 - c0) * 1000) / N).toFixed(0)} µs, ${(enqueueWal / N).toFixed(0)} B WAL a message; ` +
          `claim + outcome (batch ${BATCH}) ${(((c2 - c1) * 1000) / sent).toFixed(0)} µs, ${(sendWal / sent).toFixed(0)} B WAL a message`,
      );
    }
  } finally {
    client.release();
    await bench.drop();
  }
}
