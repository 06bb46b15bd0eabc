import http from 'node:http';
import type { Db } from '../../src/db/pool.ts';
import { createLogger } from '../../src/log.ts';
import { WebhookDeliverer } from '../../src/webhooks/worker.ts';
import { testConfig } from '../helpers/app.ts';

export interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
  json: { id: string; type: string; created_at: string; tenant_id: string; data: Record<string, any> };
  at: number;
}

export interface Receiver {
  url: string;
  received: Received[];
  /** Waits until `pred` holds over what was received. */
  waitFor(pred: (r: Received[]) => boolean, what: string, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

export type Answer = { status: number; headers?: Record<string, string>; body?: string };

/** A real HTTP receiver on 127.0.0.1; `answer` decides each response (200 "ok" by default). */
export async function startReceiver(answer: (r: Received, n: number) => Answer = () => ({ status: 200, body: 'ok' })): Promise<Receiver> {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const r: Received = { headers: req.headers, body, json: JSON.parse(body), at: Date.now() };
      received.push(r);
      const a = answer(r, received.length);
      res.writeHead(a.status, a.headers ?? {});
      res.end(a.body ?? '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    async waitFor(pred, what, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (!pred(received)) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; got ${received.map((r) => r.json.type).join(', ')}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return received;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The delivery worker against a test database, private addresses allowed (receivers are on 127.0.0.1). */
export async function startDeliverer(db: Db, databaseUrl: string, env: Record<string, string> = {}) {
  const config = testConfig(databaseUrl, { WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_POLL_MS: '100', ...env });
  const deliverer = new WebhookDeliverer(db, databaseUrl, config, createLogger('silent'));
  await deliverer.start();
  return deliverer;
}
