import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { until } from '../helpers/wait.ts';
import { alive, embeddedEnv, embeddedServer, exitWithin, freePort, runCli, spawnEngine, tempDataDirs, waitHealthy } from './processes.ts';

const dirs = await tempDataDirs();
let sink: SmtpSink | undefined;
afterAll(async () => {
  await sink?.close();
  await dirs.cleanup();
});

const RECIPIENTS = 300;

async function send(port: number, token: string, key: string) {
  const res = await fetch(`http://127.0.0.1:${port}/v1/send-jobs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      message_type: 'newsletter',
      from: 'news@acme.test',
      to: Array.from({ length: RECIPIENTS }, (_, i) => `reader${i}@example.com`),
      subject: 'Crash',
      html: '<p>Hello</p>',
      text: 'Hello',
      tags: { campaign_id: 'c', site_id: 's', list_id: 'l', segment: 'all' },
      idempotency_key: key,
      list_unsubscribe: { url: 'https://acme.test/unsubscribe' },
    }),
  });
  expect(res.status, await res.clone().text()).toBe(200);
}

describe('after a crash the embedded server comes back', () => {
  let dataDir: string;
  let env: NodeJS.ProcessEnv;
  let port: number;

  it('SIGKILL of the engine and its server mid-send (a power cut): the next start recovers and delivers everything', async () => {
    sink = await startSmtpSink({ delayMs: 5 });
    dataDir = await dirs.make();
    port = await freePort();
    env = embeddedEnv(dataDir, {
      PORT: String(port),
      EMBEDDED_PG_PORT: String(await freePort()),
      SEND_ENGINE_TRANSPORT: sink.url,
      // Mail from acme.test, a domain these tests never verify: not what they are about.
      REQUIRE_VERIFIED_DOMAIN: 'false',
      DISPATCH_CONCURRENCY: '4',
      DISPATCH_LEASE_SECONDS: '5',
      DISPATCH_POLL_MS: '100',
    });
    const created = await runCli(['tenant', 'create', '--name', 'Acme', '--json'], env);
    expect(created.code, created.output).toBe(0);
    const { token } = JSON.parse(created.output.trim().split('\n').at(-1)!);

    const engine = spawnEngine(['start'], env);
    await waitHealthy(port, engine);
    await send(port, token, 'power-cut');
    await sink.waitFor(20, 30_000);
    const server = embeddedServer(dataDir)!;
    engine.signalGroup('SIGKILL');
    process.kill(-server.pid, 'SIGKILL'); // the server runs in a group of its own
    await engine.exited;
    await until(() => !alive(server.pid), 5000, 'the killed server to be gone');
    expect(sink.messages.length).toBeLessThan(RECIPIENTS);

    // postmaster.pid is stale and the cluster needs crash recovery: the next start still works.
    const again = spawnEngine(['start'], env);
    await waitHealthy(port, again);
    await until(() => new Set(sink!.messages.flatMap((m) => m.envelopeTo)).size === RECIPIENTS || undefined, 60_000, 'every recipient to get the message');
    again.child.kill('SIGTERM');
    expect(await exitWithin(again, 30_000)).toBe(0);
    expect(embeddedServer(dataDir)).toBeUndefined();
  }, 180_000);

  it("SIGKILL of the engine alone leaves an orphan server: the next engine adopts it and stops it on shutdown", async () => {
    const engine = spawnEngine(['start'], env);
    await waitHealthy(port, engine);
    const server = embeddedServer(dataDir)!;
    engine.signalGroup('SIGKILL');
    await engine.exited;
    expect(alive(server.pid)).toBe(true);

    const again = spawnEngine(['start'], env);
    await waitHealthy(port, again);
    expect(again.output()).toContain('adopting the server');
    expect(embeddedServer(dataDir)?.pid).toBe(server.pid);
    again.child.kill('SIGTERM');
    expect(await exitWithin(again, 30_000)).toBe(0);
    await until(() => !alive(server.pid), 10_000, 'the adopted server to stop');
  }, 120_000);

  it('a damaged data folder: the error quotes PostgreSQL log lines and says what to do, never a bare undefined', async () => {
    await writeFile(path.join(dataDir, 'pg', 'PG_VERSION'), '9.9\n');
    const result = await runCli(['migrate'], env);
    expect(result.code).toBe(1);
    expect(result.output).toContain('could not start: the server exited with code 1');
    expect(result.output).toContain(`Last lines of its log (${path.join(dataDir, 'pg.log')})`);
    expect(result.output).toMatch(/FATAL: +database files are incompatible with server/);
    expect(result.output).toContain('What to do');
    expect(result.output).not.toMatch(/^undefined$/m);
    expect(result.output).not.toMatch(/^\s+at /m); // a message for an operator, not a stack trace
  }, 60_000);
});
