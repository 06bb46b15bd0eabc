import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { until } from '../helpers/wait.ts';

const CLI = path.resolve('bin/send-engine.mjs');
const run = promisify(execFile);
const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

describe('quick start on the embedded PostgreSQL server', () => {
  it('start, tenant create, send, inbox, graceful stop: with no configuration at all', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'send-engine-e2e-'));
    dirs.push(dataDir);
    const [port, pgPort] = [await freePort(), await freePort()];
    const env: NodeJS.ProcessEnv = { ...process.env, SEND_ENGINE_DATA_DIR: dataDir, PORT: String(port), EMBEDDED_PG_PORT: String(pgPort), LOG_LEVEL: 'warn' };
    // Embedded mode is what runs when nothing is configured.
    for (const name of ['DATABASE_URL', 'JWT_SECRET', 'JWT_JWKS_URL', 'SEND_ENGINE_TRANSPORT']) delete env[name];

    const engine = spawn(process.execPath, [CLI, 'start'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
    const exited = new Promise<number | null>((resolve) => engine.once('exit', resolve));
    try {
      const base = `http://127.0.0.1:${port}`;
      await until(() => fetch(`${base}/v1/_health`).then((r) => r.ok || undefined, () => undefined), 60_000, 'the engine to answer');

      const created = JSON.parse((await run(process.execPath, [CLI, 'tenant', 'create', '--name', 'Acme', '--json'], { env })).stdout.trim());
      expect(created).toEqual({ tenant_id: expect.stringMatching(/^[0-9a-f-]{36}$/), token: expect.any(String) });

      const res = await fetch(`${base}/v1/send-jobs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${created.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          message_type: 'newsletter',
          from: 'news@acme.test',
          to: ['reader@example.com'],
          subject: 'Quick start',
          html: '<p>It works</p>',
          text: 'It works',
          tags: { campaign_id: 'c', site_id: 's', list_id: 'l', segment: 'all' },
          idempotency_key: 'quick-start',
          list_unsubscribe: { url: 'https://acme.test/unsubscribe' },
        }),
      });
      expect(res.status).toBe(200);

      const inbox = await until(async () => {
        const out = (await run(process.execPath, [CLI, 'inbox', '--json'], { env })).stdout.trim();
        return out ? out.split('\n').map((l) => JSON.parse(l)) : undefined;
      }, 20_000, 'the message to be captured');
      expect(inbox).toHaveLength(1);
      expect(inbox[0]).toMatchObject({ to: 'reader@example.com', subject: 'Quick start' });
      const eml = await readFile(inbox[0].file, 'utf8');
      expect(eml).toMatch(/^List-Unsubscribe: <https:\/\/acme\.test\/unsubscribe>\r?$/m);
      expect(eml).toMatch(/^X-Send-Engine-Message-Id: [0-9a-f-]{36}\r?$/m);

      // A token issued later by the CLI works too (the generated secret persists in the data folder).
      const token = (await run(process.execPath, [CLI, 'token', 'issue', '--tenant', created.tenant_id, '--scopes', 'send', '--ttl', '10m'], { env })).stdout.trim();
      const again = await fetch(`${base}/v1/send-jobs`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' });
      expect(again.status).toBe(422);
      expect((await again.json()).error).toBe('validation_error');
    } finally {
      engine.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    // The embedded server stopped with the engine.
    const pgUp = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port: pgPort });
      socket.once('connect', () => (socket.end(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    expect(pgUp).toBe(false);
  }, 120_000);
});
