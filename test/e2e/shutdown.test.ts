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

describe('Ctrl-C in embedded mode', () => {
  it('SIGINT to the process group finishes and records the send in flight, stops the server last, and nothing goes out twice', async () => {
    let inFlight!: () => void;
    const rcpt = new Promise<void>((resolve) => (inFlight = resolve));
    // The sink takes 2.5 s to accept each message: the signal arrives while the send is in flight.
    sink = await startSmtpSink({ delayMs: 2500, onRecipient: () => void inFlight() });
    const dataDir = await dirs.make();
    const [port, pgPort] = [await freePort(), await freePort()];
    const env = embeddedEnv(dataDir, {
      PORT: String(port),
      EMBEDDED_PG_PORT: String(pgPort),
      SEND_ENGINE_TRANSPORT: sink.url,
      // Mail from acme.test, a domain these tests never verify: not what they are about.
      REQUIRE_VERIFIED_DOMAIN: 'false',
      DISPATCH_CONCURRENCY: '1',
      DISPATCH_LEASE_SECONDS: '8',
      DISPATCH_POLL_MS: '100',
    });
    const created = await runCli(['tenant', 'create', '--name', 'Acme', '--json'], env);
    expect(created.code).toBe(0);
    const { token } = JSON.parse(created.output.trim().split('\n').at(-1)!);

    const engine = spawnEngine(['start'], env);
    await waitHealthy(port, engine);
    const server = embeddedServer(dataDir)!;
    expect(server.port).toBe(pgPort);
    const res = await fetch(`http://127.0.0.1:${port}/v1/send-jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        message_type: 'newsletter',
        from: 'news@acme.test',
        to: ['reader@example.com'],
        subject: 'Ctrl-C',
        html: '<p>Once</p>',
        text: 'Once',
        tags: { campaign_id: 'c', site_id: 's', list_id: 'l', segment: 'all' },
        idempotency_key: 'ctrl-c',
        list_unsubscribe: { url: 'https://acme.test/unsubscribe' },
      }),
    });
    expect(res.status, await res.clone().text()).toBe(200);
    await rcpt;

    // As a terminal's Ctrl-C, twice (an impatient operator): the second is logged, the stop goes on.
    engine.signalGroup('SIGINT');
    await new Promise((r) => setTimeout(r, 200));
    engine.signalGroup('SIGINT');
    expect(await exitWithin(engine, 30_000)).toBe(0);
    expect(engine.output()).toContain('already shutting down');
    expect(engine.output()).not.toContain('Cannot use a pool after calling end');
    // The server outlived the group's signal and was stopped by the engine, last.
    expect(alive(server.pid)).toBe(false);
    expect(sink.messages).toHaveLength(1);
    const messageId = sink.messages[0].messageId;

    // After a restart the message reads `sent`, and it is not sent again once its lease would have passed.
    const again = spawnEngine(['start'], env);
    await waitHealthy(port, again);
    const message = await fetch(`http://127.0.0.1:${port}/v1/messages/${messageId}`, { headers: { authorization: `Bearer ${token}` } });
    expect(message.status).toBe(200);
    expect(await message.json()).toMatchObject({ status: 'sent' });
    await new Promise((r) => setTimeout(r, 10_000));
    expect(sink.messages).toHaveLength(1);

    // SIGTERM to the process alone stops it the same way.
    const againServer = embeddedServer(dataDir)!;
    again.child.kill('SIGTERM');
    expect(await exitWithin(again, 30_000)).toBe(0);
    await until(() => !alive(againServer.pid), 5000, 'the server to be gone');
  }, 180_000);
});
