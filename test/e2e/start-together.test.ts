import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { TEST_JWT_SECRET } from '../helpers/app.ts';
import { until } from '../helpers/wait.ts';
import { exitWithin, freePort, spawnEngine, type EngineProcess } from './processes.ts';

const databases: string[] = [];
async function admin(sql: string) {
  const client = new pg.Client({ connectionString: inject('pgAdminUrl') });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
afterAll(async () => {
  for (const name of databases) await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
});

/** A new, empty database: nothing migrated, no pg-boss schema. */
async function freshDatabase(): Promise<string> {
  const name = `se_test_${randomBytes(6).toString('hex')}`;
  await admin(`CREATE DATABASE ${name}`);
  databases.push(name);
  const url = new URL(inject('pgAdminUrl'));
  url.pathname = `/${name}`;
  return url.toString();
}

describe('processes started together on a fresh database', () => {
  it('1 serve + 4 workers started at the same moment all come up (three rounds)', async () => {
    for (let round = 1; round <= 3; round++) {
      const url = await freshDatabase();
      const port = await freePort();
      const env = { ...process.env, DATABASE_URL: url, JWT_SECRET: TEST_JWT_SECRET, PORT: String(port), LOG_LEVEL: 'info', SEND_ENGINE_TRANSPORT: 'capture' };
      const processes: EngineProcess[] = [spawnEngine(['serve'], env), ...Array.from({ length: 4 }, () => spawnEngine(['worker'], env))];
      try {
        await until(
          () => {
            const down = processes.find((p) => p.child.exitCode !== null);
            if (down) throw new Error(`round ${round}: a process exited with ${down.child.exitCode}:\n${down.output().slice(-3000)}`);
            return processes.every((p) => p.output().includes('"msg":"send-engine started"')) || undefined;
          },
          120_000,
          `round ${round}: all five processes to start`,
        );
        expect((await fetch(`http://127.0.0.1:${port}/v1/_health`)).status).toBe(200);
      } finally {
        for (const p of processes) p.child.kill('SIGTERM');
      }
      for (const p of processes) expect(await exitWithin(p, 30_000)).toBe(0);
    }
  }, 420_000);
});
