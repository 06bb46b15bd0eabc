import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDomain } from '../../src/domains/domains.ts';
import { createList } from '../../src/lists/contacts.ts';
import pg from 'pg';
import { inject } from 'vitest';
import { TEST_JWT_SECRET, tenantWithToken, testConfig } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { startDnsServer, type TestDnsServer } from '../domains/dns-server.ts';
import { until } from '../helpers/wait.ts';

const run = promisify(execFile);
const BIN = path.resolve('bin/send-engine.mjs');

let database: TestDatabase;
let sink: SmtpSink;
let dns: TestDnsServer;

beforeAll(async () => {
  database = await createTestDatabase();
  sink = await startSmtpSink();
  dns = await startDnsServer();
});
afterAll(async () => {
  await sink?.close();
  await dns?.close();
  await database?.drop();
});

const cli = (args: string[], env: Record<string, string> = {}) =>
  run(process.execPath, [BIN, ...args], {
    env: { ...process.env, DATABASE_URL: database.url, JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: 'silent', DNS_SERVERS: dns.address, NO_COLOR: '1', ...env },
    timeout: 60_000,
  }).then((r) => ({ code: 0, ...r }), (err) => err as { code: number; stdout: string; stderr: string });

/** A port nothing listens on: bound, then released. */
const downPort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

describe('CLI mistakes are one line, never a stack trace', () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['unknown scope', ['key', 'create', '--tenant', '01890000-0000-7000-8000-000000000001', '--scopes', 'send,launch.missiles'], /unknown scope\(s\): launch\.missiles; known: send,/],
    ['missing flag', ['key', 'create', '--scopes', 'send'], /required option '--tenant <id>' not specified \(add --help for usage\)/],
    ['bad id', ['key', 'revoke', '--key', 'not-a-uuid'], /--key must be a key id \(uuid\)/],
    ['unknown send job', ['job', 'watch', '01890000-0000-7000-8000-00000000dead'], /send job 01890000-0000-7000-8000-00000000dead not found/],
    ['bad job id', ['job', 'watch', 'nope'], /value 'nope' is invalid for argument 'id'\. must be an id \(uuid\) \(add --help for usage\)/],
    ['unknown command', ['tenant', 'explode'], /unknown command 'explode'/],
    ['bad lifetime', ['token', 'issue', '--tenant', '01890000-0000-7000-8000-000000000001', '--ttl', 'forever'], /option '--ttl <ttl>' argument 'forever' is invalid\. use a number and a unit, e\.g\. 1h, 30d/],
  ];
  for (const [what, args, expected] of cases) {
    it(what, async () => {
      const r = await cli(args);
      expect(r.code).toBe(1);
      const lines = r.stderr.trim().split('\n');
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(expected);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    });
  }
});

describe('send-engine doctor', () => {
  it('passes against a real SMTP server: database, clock, transport (EHLO), domains', async () => {
    const r = await cli(['doctor'], { SEND_ENGINE_TRANSPORT: sink.url });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/✓ database\s+PostgreSQL \d+/);
    expect(r.stdout).toMatch(/✓ clock\s+within \d+ ms/);
    // The server's own setting decides the line: a warning (not a failure) when autovacuum is off.
    const { rows: [{ autovacuum }] } = await database.db.query(`SELECT current_setting('autovacuum') AS autovacuum`);
    expect(r.stdout).toMatch(autovacuum === 'on' ? /✓ vacuum\s+autovacuum is on/ : /! vacuum\s+autovacuum is off: .*\n\s+fix: set autovacuum = on/);
    expect(r.stdout).toMatch(new RegExp(`✓ transport\\s+smtp://127\\.0\\.0\\.1:\\d+: connected, EHLO answered`));
    expect(r.stdout).toContain('all checks passed');
  });

  it('names a transport that is down and a domain whose records are missing, with the fix, and exits 1', async () => {
    const { tenantId } = await tenantWithToken(database.db);
    const config = testConfig(database.url, { DNS_SERVERS: dns.address });
    await createDomain(database.db, { settings: config.domains, secretsKey: config.secretsKey }, tenantId, 'unpublished.doctor.test');
    const port = await downPort();
    const r = await cli(['doctor'], { SEND_ENGINE_TRANSPORT: `smtp://127.0.0.1:${port}` });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`✗ transport\\s+smtp://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
    expect(r.stdout).toContain('fix: nothing listens there: start the relay, or correct the host and port in SEND_ENGINE_TRANSPORT');
    expect(r.stdout).toMatch(/✗ domain unpublished\.doctor\.test .*TXT \S+\._domainkey\.unpublished\.doctor\.test/);
    expect(r.stdout).toMatch(/fix: publish: TXT /);
    expect(r.stdout).toContain('2 problem(s) found');
  });
});

describe('send-engine job watch', () => {
  it('follows a job until it ends and prints its counters (a line per change when not a terminal)', async () => {
    const { tenantId } = await tenantWithToken(database.db);
    const jobId = '01890000-0000-7000-8000-0000000a11ce';
    await database.db.query(`INSERT INTO lists (tenant_id, id) VALUES ($1, '01890000-0000-7000-8000-00000000715d')`, [tenantId]);
    await database.db.query(`INSERT INTO campaigns (id, tenant_id) VALUES ('01890000-0000-7000-8000-0000000ca4a1', $1)`, [tenantId]);
    await database.db.query(
      `INSERT INTO send_jobs (id, tenant_id, list_id, campaign_id, from_address, template, scheduled_at, status, finished_at)
       VALUES ($1, $2, '01890000-0000-7000-8000-00000000715d', '01890000-0000-7000-8000-0000000ca4a1', 'a@b.test', '{"subject":"x","text":"x"}', now(), 'running', NULL)`,
      [jobId, tenantId],
    );
    await database.db.query(
      `INSERT INTO messages (id, tenant_id, recipient, status, send_job_id, subscriber_id) SELECT uuid_v7(), $1, 'w' || i || '@x.test', 'queued', $2, gen_random_uuid() FROM generate_series(1, 4) i`,
      [tenantId, jobId],
    );
    const child = spawn(process.execPath, [BIN, 'job', 'watch', jobId, '--interval', '200'], {
      env: { ...process.env, DATABASE_URL: database.url, JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: 'silent', NO_COLOR: '1' },
    });
    let stdout = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    child.stdout.on('data', (d) => (stdout += d));
    await until(() => stdout.includes('running'), 20_000, 'the watch prints the running job');
    await database.db.query(`UPDATE messages SET status = 'sent', sent_at = now() WHERE send_job_id = $1`, [jobId]);
    await database.db.query(`UPDATE send_jobs SET status = 'completed', finished_at = now() WHERE id = $1`, [jobId]);
    expect(await exited).toBe(0);
    expect(stdout).toMatch(/running: 0 sent, .* 4 queued of 4/);
    expect(stdout).toMatch(/completed: 4 sent, .* 0 queued of 4/);
  });
});

describe('send-engine contacts import', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'se-cli-import-'));

  it('streams a CSV file into an API list and prints what it did; the contacts exist after', async () => {
    const { tenantId } = await tenantWithToken(database.db);
    const list = await createList(database.db, tenantId, { name: 'cli readers' });
    const file = path.join(dir, 'readers.csv');
    writeFileSync(file, ['email,first_name,plan', ...Array.from({ length: 7_000 }, (_, i) => `cli${i}@readers.test,C${i},gold`), 'nope,X,Y'].join('\n'));
    const r = await cli(['contacts', 'import', '--tenant', tenantId, '--list', list.id, file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^import [0-9a-f-]{36} completed: 7001 rows read, 7000 created, 0 updated, 1 invalid\n$/);
    const { rows } = await database.db.query(`SELECT count(*)::int AS n, min(properties->>'plan') AS plan FROM subscribers WHERE tenant_id = $1 AND list_id = $2`, [tenantId, list.id]);
    expect(rows[0]).toEqual({ n: 7_000, plan: 'gold' });
    // JSON lines by the file name; the same addresses again are updates.
    const jsonl = path.join(dir, 'again.jsonl');
    writeFileSync(jsonl, '{"email": "cli1@readers.test", "first_name": "Again"}\n');
    const again = await cli(['contacts', 'import', '--tenant', tenantId, '--list', list.id, jsonl]);
    expect(again.stdout).toMatch(/completed: 1 rows read, 0 created, 1 updated, 0 invalid/);
    // On a terminal (script(1) gives it one): a bar over the bytes of the file, then the same line.
    const shell = [process.execPath, BIN, 'contacts', 'import', '--tenant', tenantId, '--list', list.id, file].map((a) => JSON.stringify(a)).join(' ');
    const tty = await run('script', ['-qec', shell, '/dev/null'], { env: { ...process.env, DATABASE_URL: database.url, JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: 'silent', NO_COLOR: '1' }, timeout: 60_000 });
    expect(tty.stdout).toMatch(new RegExp(`import .*100% \\| ${statSync(file).size}/${statSync(file).size} bytes`));
    expect(tty.stdout).toMatch(/completed: 7001 rows read, 0 created, 7000 updated, 1 invalid/);
  });

  it('a list that is not there, an id that is not one, a missing file: one line each, exit 1, nothing imported', async () => {
    const { tenantId } = await tenantWithToken(database.db);
    const file = path.join(dir, 'one.csv');
    writeFileSync(file, 'email\na@b.test\n');
    const cases: Array<[string[], RegExp]> = [
      [['--list', '01890000-0000-7000-8000-0000000b1a57', file], /^error: list 01890000-0000-7000-8000-0000000b1a57 not found$/],
      [['--list', 'not-a-list', file], /option '--list <id>' argument 'not-a-list' is invalid\. must be an id \(uuid\) \(add --help for usage\)$/],
      [['--list', '01890000-0000-7000-8000-0000000b1a57', path.join(dir, 'missing.csv')], /^error: cannot read .*missing\.csv: no such file$/],
    ];
    for (const [args, expected] of cases) {
      const r = await cli(['contacts', 'import', '--tenant', tenantId, ...args]);
      expect(r.code, args.join(' ')).toBe(1);
      const lines = r.stderr.trim().split('\n');
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(expected);
    }
    expect((await database.db.query('SELECT 1 FROM contact_imports WHERE tenant_id = $1', [tenantId])).rowCount).toBe(0);
  });
});

describe('send-engine migrate', () => {
  it('on a terminal, a progress bar over the pending migrations; otherwise one line', async () => {
    const name = `se_cli_migrate_${Date.now()}`;
    const admin = new pg.Client({ connectionString: inject('pgAdminUrl') });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    try {
      const url = new URL(inject('pgAdminUrl'));
      url.pathname = `/${name}`;
      // script(1) gives the command a pseudo-terminal: stdout.isTTY holds as in a shell.
      const shell = `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} migrate`;
      const tty = await run('script', ['-qec', shell, '/dev/null'], { env: { ...process.env, DATABASE_URL: url.toString(), JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: 'silent', NO_COLOR: '1' }, timeout: 120_000 });
      expect(tty.stdout).toMatch(/migrations .*\d+\/\d+ \d{3}_\w+\.sql/);
      expect(tty.stdout).toMatch(/migrations applied \(\d+ changed: 001_foundation\.sql, /);
      const plain = await cli(['migrate'], { DATABASE_URL: url.toString() });
      expect(plain.code).toBe(0);
      expect(plain.stdout).toBe('migrations applied (none pending)\n');
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
  }, 120_000);
});
