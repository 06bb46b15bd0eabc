import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { signWebhook } from '../../src/index.ts';
import { CLI, fmt, freePort, recordingSink, sleep, type Delivery } from '../lib.ts';

/**
 * The crash figure: a BENCH_KILL_MEMBERS (20,000) member list send into a real SMTP sink that
 * records every delivery's Message-ID, with the engine in embedded mode (its own data folder) killed
 * with SIGKILL BENCH_KILL_TIMES (3) times mid-send, its embedded server with it (a power cut),
 * restarted each time; then the job must reach `completed`. Prints members lost, duplicates (in
 * total and per kill, against DISPATCH_CONCURRENCY, the sends that can be in flight), whether
 * every duplicate carries the same Message-ID, and the job's status.
 */
const MEMBERS = Number(process.env.BENCH_KILL_MEMBERS ?? 20_000);
const KILLS = Number(process.env.BENCH_KILL_TIMES ?? 3);
const CONCURRENCY = Number(process.env.BENCH_KILL_CONCURRENCY ?? 10);
const LEASE_SECONDS = Number(process.env.BENCH_KILL_LEASE_SECONDS ?? 15);
const BATCH = 1000;
const STEP_TIMEOUT_MS = 5 * 60_000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The embedded server's pid, from its postmaster.pid (it runs in a process group of its own). */
function serverPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
    return alive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = STEP_TIMEOUT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`kill test: timed out waiting for ${what}`);
    await sleep(100);
  }
}

function cli(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.stderr.on('data', (c: Buffer) => (err += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), STEP_TIMEOUT_MS);
    child.once('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out.trim().split('\n').at(-1)!);
      else reject(new Error(`send-engine ${args.join(' ')} exited with ${code}: ${err}`));
    });
  });
}

export default async function kill() {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'send-engine-kill-'));
  const sink = await recordingSink();
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SEND_ENGINE_DATA_DIR: dataDir,
    PORT: String(port),
    EMBEDDED_PG_PORT: String(await freePort()),
    SEND_ENGINE_TRANSPORT: `smtp://127.0.0.1:${sink.port}`,
    DEFAULT_FROM_ADDRESS: 'news@acme.example',
    // Not about sending domains: the bench sends from a domain it never verifies.
    REQUIRE_VERIFIED_DOMAIN: 'false',
    DISPATCH_CONCURRENCY: String(CONCURRENCY),
    DISPATCH_LEASE_SECONDS: String(LEASE_SECONDS),
    LOG_LEVEL: 'warn',
  };
  // Embedded mode, configured by nothing else.
  for (const name of ['DATABASE_URL', 'JWT_SECRET', 'JWT_JWKS_URL']) delete env[name];

  let engine: ChildProcess | undefined;
  const startEngine = async () => {
    const started = Date.now();
    const child = spawn(process.execPath, [CLI, 'start'], { env, detached: true, stdio: ['ignore', 'ignore', 'inherit'] });
    engine = child;
    await waitFor('the engine to answer', async () => {
      if (child.exitCode !== null) throw new Error(`kill test: the engine exited with ${child.exitCode} at start`);
      return (await fetch(`${base}/v1/_health`).then((r) => r.ok, () => false)) || undefined;
    });
    return (Date.now() - started) / 1000;
  };
  const powerCut = async () => {
    const child = engine!;
    const pgPid = serverPid(dataDir);
    const gone = new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    process.kill(-child.pid!, 'SIGKILL');
    if (pgPid) process.kill(-pgPid, 'SIGKILL');
    await gone;
    if (pgPid) await waitFor('the killed server to be gone', () => (alive(pgPid) ? undefined : true), 10_000);
  };

  try {
    const { tenant_id: tenantId, token } = JSON.parse(await cli(['tenant', 'create', '--name', 'kill-test', '--json'], env));
    const client = JSON.parse(await cli(['webhook-client', 'create', '--tenant', tenantId, '--json'], env)) as { client_id: string; secret: string };
    await startEngine();

    // The list, as the Member Center sends it: one signed full sync in batches of 1,000.
    const listId = randomUUID();
    const syncId = randomUUID();
    const occurredAt = new Date().toISOString();
    const batches = Math.ceil(MEMBERS / BATCH);
    for (let no = 1; no <= batches; no++) {
      const subscribers = [];
      for (let i = (no - 1) * BATCH; i < Math.min(no * BATCH, MEMBERS); i++) subscribers.push({ id: randomUUID(), email: `member${i}@example.com`, status: 'active' });
      const body = JSON.stringify({ sync_id: syncId, batch_no: no, batch_total: batches, tenant_id: tenantId, list_id: listId, occurred_at: occurredAt, subscribers });
      const res = await fetch(`${base}/webhooks/lists/full-sync`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...signWebhook({ clientId: client.client_id, secret: client.secret, body }) },
        body,
      });
      if (res.status !== 200) throw new Error(`kill test: full sync batch ${no}: HTTP ${res.status} ${await res.text()}`);
    }
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const created = await fetch(`${base}/api/send-jobs`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ list_id: listId, subject: 'Kill test for {{ email }}', template: { html: '<p>Hello {{ email }}</p>', text: 'Hello' } }),
    });
    if (created.status !== 200) throw new Error(`kill test: creating the send job: HTTP ${created.status} ${await created.text()}`);
    const { send_job_id: jobId } = (await created.json()) as { send_job_id: string };
    console.log(`${fmt(MEMBERS)} members, DISPATCH_CONCURRENCY ${CONCURRENCY}, DISPATCH_LEASE_SECONDS ${LEASE_SECONDS}, sink: smtp-server recording Message-IDs`);

    const killedAt: number[] = [];
    for (let k = 1; k <= KILLS; k++) {
      const target = Math.round((MEMBERS * k) / (KILLS + 1));
      await waitFor(`${fmt(target)} deliveries before kill ${k}`, () => (sink.deliveries.length >= target ? true : undefined));
      const delivered = sink.deliveries.length;
      await powerCut();
      killedAt.push(Date.now());
      const restart = await startEngine();
      console.log(`kill ${k}: SIGKILL to the engine's and the embedded server's process groups at ${fmt(delivered)} deliveries; restart answered in ${fmt(restart, 1)} s`);
    }

    const job = await waitFor(
      'the job to finish',
      async () => {
        const res = await fetch(`${base}/api/send-jobs/${jobId}`, { headers: auth }).catch(() => undefined);
        const body = res?.ok ? ((await res.json()) as { status: string; counts?: Record<string, number> }) : undefined;
        return body && ['completed', 'failed', 'cancelled'].includes(body.status) ? body : undefined;
      },
      10 * 60_000,
    );

    const byRecipient = new Map<string, Delivery[]>();
    for (const d of sink.deliveries) byRecipient.set(d.to, [...(byRecipient.get(d.to) ?? []), d]);
    let lost = 0;
    for (let i = 0; i < MEMBERS; i++) if (!byRecipient.has(`member${i}@example.com`)) lost++;
    const perKill = new Array<number>(KILLS + 1).fill(0);
    let sameMessageId = true;
    for (const list of byRecipient.values()) {
      if (list.length < 2) continue;
      if (new Set(list.map((d) => d.messageId)).size > 1 || !list[0].messageId) sameMessageId = false;
      // A duplicate belongs to the first kill after the first copy was delivered.
      const kill = killedAt.findIndex((t) => list[0].at <= t);
      perKill[kill === -1 ? KILLS : kill] += list.length - 1;
    }
    const duplicates = perKill.reduce((a, b) => a + b, 0);
    console.log(`job status:            ${job.status} (counts ${JSON.stringify(job.counts ?? {})})`);
    console.log(`lost:                  ${fmt(lost)} members with no delivery (${fmt(byRecipient.size)} of ${fmt(MEMBERS)} reached, ${fmt(sink.deliveries.length)} deliveries)`);
    console.log(`duplicates:            ${fmt(duplicates)} in total; per kill ${perKill.slice(0, KILLS).join(', ')}${perKill[KILLS] ? ` (+${perKill[KILLS]} not after a kill)` : ''} (DISPATCH_CONCURRENCY ${CONCURRENCY})`);
    const over = perKill.slice(0, KILLS).flatMap((n, i) => (n > CONCURRENCY ? [`kill ${i + 1}`] : []));
    console.log(`per-kill limit:        ${over.length ? `over DISPATCH_CONCURRENCY at ${over.join(', ')} (sends confirmed but whose outcome was not yet written also repeat)` : 'every kill within DISPATCH_CONCURRENCY'}`);
    console.log(`same Message-ID:       ${duplicates ? (sameMessageId ? 'yes, every duplicate carries its first copy\'s Message-ID' : 'NO') : 'n/a (no duplicates)'}`);
  } finally {
    if (engine && engine.exitCode === null) {
      const child = engine;
      const exited = new Promise<number | null>((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const code = await Promise.race([exited, sleep(60_000).then(() => 'timeout' as const)]);
      if (code === 'timeout') process.kill(-child.pid!, 'SIGKILL');
      else console.log(`graceful stop:         exit code ${code}`);
    }
    const pgPid = serverPid(dataDir);
    if (pgPid) process.kill(-pgPid, 'SIGKILL');
    await sink.stop();
    await sleep(500);
    await rm(dataDir, { recursive: true, force: true, maxRetries: 5 });
  }
}
