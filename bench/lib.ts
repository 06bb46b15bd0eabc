import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { SMTPServer } from 'smtp-server';
import { migrate } from '../src/db/migrate.ts';
import { createPool, type Db } from '../src/db/pool.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CLI = path.join(ROOT, 'bin/send-engine.mjs');
export const BENCH_JWT_SECRET = randomBytes(32).toString('hex');

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface BenchDatabase {
  url: string;
  db: Db;
  drop(): Promise<void>;
}

/** A fresh, migrated database on DATABASE_URL's server (default: the machine's PostgreSQL). */
export async function benchDatabase(): Promise<BenchDatabase> {
  const adminUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const name = `se_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const db = createPool(url.toString(), 10);
  await migrate(db);
  return {
    url: url.toString(),
    db,
    async drop() {
      await db.end();
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export interface Sink {
  kind: string;
  port: number;
  /** Messages accepted so far (smtp-server sink only; for Postfix's smtp-sink, count on our side). */
  count(): number;
  stop(): Promise<void>;
}

function findSmtpSink(): string | undefined {
  for (const candidate of ['/usr/sbin/smtp-sink', '/usr/lib/postfix/sbin/smtp-sink']) {
    if (spawnSync('test', ['-x', candidate]).status === 0) return candidate;
  }
  return undefined;
}

/** Postfix's C smtp-sink (installed on demand), else the smtp-server package. */
export async function startSink(): Promise<Sink> {
  let binary = findSmtpSink();
  if (!binary && process.getuid?.() === 0 && process.env.BENCH_NO_INSTALL !== '1') {
    spawnSync('apt-get', ['install', '-y', '-qq', 'postfix'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, stdio: 'ignore' });
    binary = findSmtpSink();
  }
  const port = await freePort();
  if (binary) {
    // -c: count; 1000 connections backlog; accepts everything and discards it.
    const child = spawn(binary, ['-c', '-u', 'nobody', `127.0.0.1:${port}`, '1000'], { stdio: 'ignore' });
    for (let i = 0; i < 50; i++) {
      if (await canConnect(port)) break;
      await sleep(100);
    }
    return { kind: "Postfix smtp-sink", port, count: () => -1, stop: async () => void child.kill('SIGTERM') };
  }
  let count = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    maxClients: 1000,
    onData(stream, _session, cb) {
      stream.resume();
      stream.on('end', () => {
        count++;
        cb();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { kind: 'smtp-server (Node)', port, count: () => count, stop: () => new Promise<void>((r) => server.close(() => r())) };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.end(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/**
 * Peak resident set size (VmHWM) of a process, in MB: the kernel's high-water mark over the process's
 * whole life so far (every thread), not a sample.
 */
export function peakRssMb(pid: number): number {
  return statusMb(pid, 'VmHWM');
}

/** Resident set size (VmRSS) of a process now, in MB. */
export function rssMb(pid: number): number {
  return statusMb(pid, 'VmRSS');
}

function statusMb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return Math.round(kb / 1024);
}

/** RSS of a bare `node` process that has loaded nothing: the floor any Node process starts from. */
export async function bareNodeRssMb(): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  try {
    await sleep(1000);
    return rssMb(child.pid!);
  } finally {
    await stopProcess(child);
  }
}

/** Starts `send-engine <role>` as a child process and waits for it to be ready. */
export async function startEngineProcess(role: 'start' | 'serve' | 'worker', env: Record<string, string>): Promise<ChildProcess> {
  // BENCH_ENGINE_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the engine.
  const nodeArgs = (process.env.BENCH_ENGINE_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, CLI, role], {
    env: { ...process.env, JWT_SECRET: BENCH_JWT_SECRET, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (role !== 'worker' && env.PORT) {
    for (let i = 0; i < 300; i++) {
      const ok = await fetch(`http://127.0.0.1:${env.PORT}/v1/_health`).then((r) => r.ok).catch(() => false);
      if (ok) return child;
      await sleep(100);
    }
    throw new Error('engine did not start');
  }
  return child;
}

export function stopProcess(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

export const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** CPU time (user + system) a process has used so far, in ms (/proc; clock ticks of 10 ms). */
export function processCpuMs(pid: number): number {
  try {
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return 0; // exited
  }
}

/**
 * CPU spent by a process and by the PostgreSQL backends serving one database (the shared server's
 * other databases, other helpers' tests, do not count), between `start()` and `stop()`; with the
 * load generator's (this process's) own.
 */
export async function cpuMeter(db: Db, enginePid: number) {
  const backends = async () => {
    const { rows } = await db.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = current_database()');
    return new Map(rows.map((r) => [r.pid, processCpuMs(r.pid)]));
  };
  const before = { engine: processCpuMs(enginePid), pg: await backends(), self: process.cpuUsage() };
  return {
    async stop() {
      const self = process.cpuUsage(before.self);
      const engine = processCpuMs(enginePid) - before.engine;
      let pg = 0;
      for (const [pid, ms] of await backends()) pg += ms - (before.pg.get(pid) ?? 0);
      return { engineMs: engine, postgresMs: pg, loadGeneratorMs: (self.user + self.system) / 1000 };
    },
  };
}

export interface Delivery {
  to: string;
  messageId: string;
  at: number;
}

/** A real SMTP server (smtp-server) that keeps each delivery's recipient and Message-ID header. */
export async function recordingSink() {
  const deliveries: Delivery[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    maxClients: 1000,
    onData(stream, session, callback) {
      let head = '';
      stream.on('data', (chunk: Buffer) => {
        if (head.length < 64 * 1024 && !head.includes('\r\n\r\n')) head += chunk.toString('latin1');
      });
      stream.on('end', () => {
        const messageId = /^Message-ID:\s*(\S+)/im.exec(head.split('\r\n\r\n')[0])?.[1] ?? '';
        for (const r of session.envelope.rcptTo) deliveries.push({ to: r.address, messageId, at: Date.now() });
        callback(null, 'Ok: recorded');
      });
    },
  });
  // Sessions of a killed engine end with a reset: expected here.
  server.on('error', () => {});
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { port, deliveries, stop: () => new Promise<void>((r) => server.close(() => r())) };
}

/**
 * A list of `members` active members (member1@example.com, ...) as full syncs would leave it, written
 * set-based in one statement; its id is returned.
 */
export async function seedMembers(db: Db, tenantId: string, listId: string, members: number): Promise<string> {
  await db.query('INSERT INTO lists (tenant_id, id) VALUES ($1, $2)', [tenantId, listId]);
  await db.query(
    `WITH s AS (
       INSERT INTO subscribers (tenant_id, id, email, status, updated_at)
       SELECT $1, uuid_v7(), 'member' || g || '@example.com', 'active', now() FROM generate_series(1, $3) g
       RETURNING id)
     INSERT INTO list_members (tenant_id, list_id, subscriber_id, status, reason, source_id, status_at)
     SELECT $1, $2, id, 'active', 'seed', gen_random_uuid(), now() FROM s`,
    [tenantId, listId, members],
  );
  return listId;
}
