import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import nodemailer from 'nodemailer';
import { issueToken } from '../../src/auth/jwt.ts';
import { newDkimKey } from '../../src/domains/keys.ts';
import { newId } from '../../src/ids.ts';
import { deriveSecretsKey, encryptSecret } from '../../src/secrets.ts';
import { createTenant } from '../../src/tenants/tenants.ts';
import { noDelaySocket } from '../../src/transports/smtp.ts';
import { freshBundle } from '../../bin/bundle.mjs';
import { BENCH_JWT_SECRET, bareNodeRssMb, benchDatabase, cpuMeter, fmt, freePort, peakRssMb, ROOT, rssMb, sleep, startEngineProcess, startSink, stopProcess, type BenchDatabase, seedMembers } from '../lib.ts';

const MEMBERS = Number(process.env.BENCH_LIST_MEMBERS ?? 100_000);
const CONCURRENCY = Number(process.env.BENCH_LIST_CONCURRENCY ?? 20);
const BASELINE = Math.min(MEMBERS, 20_000);
// BENCH_LIST_SIGNED=0: the unsigned send only (a 1,000,000-member memory run takes long enough).
const SIGNED = process.env.BENCH_LIST_SIGNED !== '0';
// BENCH_LIST_BASELINES=0: the engine only (quick before/after pairs; the ratios then read n/a).
const BASELINES = process.env.BENCH_LIST_BASELINES !== '0';
// Peak RSS of the engine process (API, dispatcher, render threads) through a 1,000,000-member send.
const MEMORY_GOAL_MB = 150;

const HTML = `<html><body><h1>November news</h1>${'<p>Lorem ipsum dolor sit amet, <a href="https://acme.example/article">read more</a>.</p>'.repeat(10)}</body></html>`;
const SUBJECT = 'November news for {{ email }}';
const TEXT = 'November news';

type Dkim = { domainName: string; keySelector: string; privateKey: string };

/** nodemailer doing it all (MailComposer, its DKIM signer, its pooled SMTP client), same HTML and sink. */
async function bareNodemailer(port: number, n: number, from: string, dkim?: Dkim): Promise<number> {
  const transporter = nodemailer.createTransport({ host: '127.0.0.1', port, pool: true, maxConnections: CONCURRENCY, maxMessages: Infinity, getSocket: noDelaySocket, dkim } as nodemailer.TransportOptions);
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < n) {
        const i = next++;
        const to = `member${i}@example.com`;
        await transporter.sendMail({ from, to, subject: `November news for ${to}`, html: HTML, text: TEXT, headers: { 'List-Unsubscribe': '<https://acme.example/u/x>', 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' } });
      }
    }),
  );
  const rate = n / ((performance.now() - started) / 1000);
  transporter.close();
  return rate;
}

/** Postfix's own C client into the same sink: the machine's SMTP ceiling for messages of this size. */
async function smtpSource(port: number, n: number, bytes: number): Promise<number | undefined> {
  const started = performance.now();
  const child: ChildProcess = spawn('/usr/sbin/smtp-source', ['-s', String(CONCURRENCY), '-m', String(n), '-l', String(bytes), '-f', 'news@acme.example', '-t', 'member@example.com', `127.0.0.1:${port}`], { stdio: 'ignore' });
  const code = await new Promise<number | null>((resolve) => {
    child.once('exit', resolve);
    child.once('error', () => resolve(-1));
  });
  return code === 0 ? n / ((performance.now() - started) / 1000) : undefined;
}

/** A verified sending domain with an active key, as `domain add` + `domain verify` leave it. */
async function verifiedDomain(database: BenchDatabase, tenantId: string, name: string): Promise<Dkim> {
  const key = await newDkimKey();
  const domainId = newId();
  const keyId = newId();
  await database.db.query(`INSERT INTO sending_domains (id, tenant_id, name, return_path, status, verified_at) VALUES ($1, $2, $3, $4, 'verified', now())`, [domainId, tenantId, name, `bounces.${name}`]);
  // The engine derives its SECRETS_KEY from JWT_SECRET when none is set.
  await database.db.query(`INSERT INTO domain_dkim_keys (id, domain_id, selector, state, public_key, private_key_enc) VALUES ($1, $2, $3, 'active', $4, $5)`, [keyId, domainId, key.selector, key.publicKey, encryptSecret(deriveSecretsKey(BENCH_JWT_SECRET), key.privateKeyPem, keyId)]);
  return { domainName: name, keySelector: key.selector, privateKey: key.privateKeyPem };
}

interface EngineRun {
  rate: number;
  line: string;
  /** The engine's RSS (MB) once a second during the send. */
  rss: number[];
  /** CPU per message sent (µs): the engine process (all its threads) and the database's backends. */
  engineUs: number;
  postgresUs: number;
}

async function sendToList(database: BenchDatabase, port: number, token: string, listId: string, from: string, pid: number): Promise<EngineRun> {
  const meter = await cpuMeter(database.db, pid);
  const started = performance.now();
  const res = await fetch(`http://127.0.0.1:${port}/api/send-jobs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ list_id: listId, from, subject: SUBJECT, template: { html: HTML, text: TEXT }, tracking: { open: true, click: true } }),
  });
  if (!res.ok) throw new Error(`creating the job failed: ${res.status} ${await res.text()}`);
  const { send_job_id: jobId } = (await res.json()) as { send_job_id: string };
  let fanoutSeconds = 0;
  const rss: number[] = [];
  const sampler = setInterval(() => rss.push(rssMb(pid)), 1000);
  for (;;) {
    const { rows } = await database.db.query(`SELECT status, fanout_done FROM send_jobs WHERE id = $1`, [jobId]);
    if (!fanoutSeconds && rows[0].fanout_done) fanoutSeconds = (performance.now() - started) / 1000;
    if (rows[0].status !== 'pending' && rows[0].status !== 'running') break;
    await sleep(250);
  }
  clearInterval(sampler);
  const seconds = (performance.now() - started) / 1000;
  const cpu = await meter.stop();
  const { rows } = await database.db.query(`SELECT status, count(*)::int AS n FROM messages WHERE send_job_id = $1 GROUP BY status`, [jobId]);
  const sent = rows.find((r) => r.status === 'sent')?.n ?? 0;
  const statuses = JSON.stringify(Object.fromEntries(rows.map((r) => [r.status, r.n])));
  return { rss, rate: sent / seconds, engineUs: (1000 * cpu.engineMs) / sent, postgresUs: (1000 * cpu.postgresMs) / sent, line: `${fmt(sent)} sent in ${fmt(seconds, 1)} s, create to completed, fan-out done at ${fmt(fanoutSeconds, 1)} s; statuses ${statuses}` };
}

const verdict = (ok: boolean) => (ok ? 'reached' : 'NOT reached');

export default async function listSend() {
  const database = await benchDatabase();
  const sink = await startSink();
  const port = await freePort();
  const tenant = await createTenant(database.db, 'bench');
  const token = await issueToken(BENCH_JWT_SECRET, { tenantId: tenant.id, scopes: ['jobs.manage'], ttl: '1h' });
  const listId = '01890000-0000-7000-8000-00000000b001';
  await seedMembers(database.db, tenant.id, listId, MEMBERS);
  // Signed mail comes from a verified domain; unsigned from one the engine does not know.
  const dkim = await verifiedDomain(database, tenant.id, 'signed.acme.example');
  await database.db.query('ANALYZE');
  // Without autovacuum a large send slows as it goes (docs/operations.md#postgresql): say which it was.
  const { rows: [server] } = await database.db.query<{ autovacuum: string }>(`SELECT current_setting('autovacuum') AS autovacuum`);
  console.log(`sink: ${sink.kind}; ${fmt(MEMBERS)} members, SMTP concurrency ${CONCURRENCY}; open and click tracking on; PostgreSQL autovacuum ${server.autovacuum}`);

  // Baselines first, each alone on the machine.
  const source = BASELINES && sink.kind.startsWith('Postfix') ? await smtpSource(sink.port, BASELINE, 4096) : undefined;
  const bare = BASELINES ? await bareNodemailer(sink.port, BASELINE, 'news@acme.example') : NaN;
  const bareSigned = BASELINES && SIGNED ? await bareNodemailer(sink.port, BASELINE, 'news@signed.acme.example', dkim) : NaN;
  console.log(`smtp-source -> sink:   ${source ? `${fmt(source)} msgs/s (${fmt(BASELINE)} messages of 4 KB, ${CONCURRENCY} sessions)` : BASELINES ? 'not available (no Postfix)' : 'skipped (BENCH_LIST_BASELINES=0)'}`);

  const engine = await startEngineProcess('start', {
    DATABASE_URL: database.url,
    PORT: String(port),
    SEND_ENGINE_TRANSPORT: `smtp://127.0.0.1:${sink.port}`,
    REQUIRE_VERIFIED_DOMAIN: 'false',
    DISPATCH_CONCURRENCY: String(CONCURRENCY),
    DISPATCH_BATCH_SIZE: process.env.BENCH_LIST_BATCH ?? '200',
    DEFAULT_FROM_ADDRESS: 'news@acme.example',
  });
  try {
    // Idle: started, migrated, nothing sent yet (render threads start with the first render).
    await sleep(2000);
    const idle = rssMb(engine.pid!);
    const bareNode = await bareNodeRssMb();
    console.log(`engine idle RSS:       ${idle} MB (${freshBundle(ROOT) ? 'run from the dist/ bundle' : 'run through tsx: no up-to-date dist/ bundle'}); bare \`node -e\` process: ${bareNode} MB (same run); engine/bare ${fmt(idle / bareNode, 2)}`);
    const results: Array<{ label: string; engine: number; bare: number }> = [];
    for (const [label, from, bareRate] of [
      ['unsigned', 'news@acme.example', bare],
      ...(SIGNED ? [['DKIM-signed', 'news@signed.acme.example', bareSigned] as const] : []),
    ] as const) {
      const run = await sendToList(database, port, token, listId, from, engine.pid!);
      results.push({ label, engine: run.rate, bare: bareRate });
      console.log(`--- ${label} ---`);
      console.log(`engine end to end:     ${fmt(run.rate)} msgs/s (${run.line})`);
      console.log(`CPU per message:       engine ${fmt(run.engineUs)} µs (all its threads), PostgreSQL ${fmt(run.postgresUs)} µs (the bench database's backends)`);
      console.log(`bare nodemailer:       ${fmt(bareRate)} msgs/s (MailComposer${label === 'unsigned' ? '' : ' + its DKIM signer'} + pooled SMTP, same HTML, same sink, same connections)`);
      console.log(`ratios:                engine/bare nodemailer ${fmt(run.rate / bareRate, 2)}${source ? `; engine/smtp-source ${fmt((100 * run.rate) / source, 1)}%` : ''}`);
      const tenths = run.rss.length < 10 ? run.rss : Array.from({ length: 10 }, (_, i) => run.rss[Math.floor(((i + 1) * run.rss.length) / 10) - 1]);
      console.log(`engine RSS during it:  ${tenths.join(' ')} MB (${run.rss.length < 10 ? 'each second' : 'at each tenth'} of the send; ${run.rss.length} samples, 1 a second)`);
      console.log(`engine peak RSS:       ${peakRssMb(engine.pid!)} MB (kernel high-water mark since start, whole process: API, dispatcher, render threads)`);
    }
    const [plain, signed] = results;
    const peak = peakRssMb(engine.pid!);
    console.log(
      `goals: >= 3,000 msgs/s ${verdict(plain.engine >= 3000)}; engine/bare >= 1.2 ${verdict(plain.engine / plain.bare >= 1.2)}; ` +
        `>= 30% of smtp-source ${source ? verdict(plain.engine >= 0.3 * source) : 'n/a'}; DKIM-signed >= 1,500 msgs/s ${signed ? verdict(signed.engine >= 1500) : 'not run (BENCH_LIST_SIGNED=0)'}; ` +
        `peak RSS <= ${MEMORY_GOAL_MB} MB ${verdict(peak <= MEMORY_GOAL_MB)} (${peak} MB${MEMBERS < 1_000_000 ? `; the goal is for 1,000,000 members, this run had ${fmt(MEMBERS)}` : ''})`,
    );
  } finally {
    await stopProcess(engine);
    await sink.stop();
    await database.drop();
  }
}
