import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { startEmbeddedDatabase } from '../../src/db/embedded.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A superuser URL of the PostgreSQL server the tests create their databases on. */
    pgAdminUrl: string;
  }
}

async function reachable(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Tests run on DATABASE_URL's server, else the machine's PostgreSQL on 127.0.0.1:5432, else an
 * embedded server started here for the run. Each test file then makes its own database on it.
 */
export default async function setup(project: TestProject) {
  const candidates = [process.env.DATABASE_URL, 'postgres://postgres@127.0.0.1:5432/postgres'].filter(Boolean) as string[];
  for (const url of candidates) {
    if (await reachable(url)) {
      project.provide('pgAdminUrl', url);
      console.log(`tests use PostgreSQL at ${new URL(url).host}`);
      return;
    }
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'send-engine-test-pg-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const embedded = await startEmbeddedDatabase(dir, port);
  project.provide('pgAdminUrl', embedded.url);
  console.log(`no PostgreSQL reachable: tests use an embedded server on port ${port}`);
  return async () => {
    await embedded.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
