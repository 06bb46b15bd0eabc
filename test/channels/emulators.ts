import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Recorded {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface Emulator {
  url: string;
  requests: Recorded[];
  /** Answers the next requests with these (status, JSON body) instead of the default. */
  next: Array<{ status: number; body: unknown }>;
  close(): Promise<void>;
}

/** An HTTP server on 127.0.0.1 recording every request and answering with `answer` (or a queued override). */
async function startEmulator(answer: (req: Recorded, n: number) => { status: number; body: unknown }): Promise<Emulator> {
  const requests: Recorded[] = [];
  const next: Emulator['next'] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const recorded = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      requests.push(recorded);
      const { status, body } = next.shift() ?? answer(recorded, requests.length);
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    next,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Twilio's Messages API shape: 201 {sid, status: "queued"}. */
export const startTwilioEmulator = () => startEmulator((_req, n) => ({ status: 201, body: { sid: `SM${String(n).padStart(32, '0')}`, status: 'queued' } }));

/** The WhatsApp Cloud API's /{phone-number-id}/messages: 200 {messages: [{id: "wamid…"}]}. */
export const startGraphEmulator = () =>
  startEmulator((_req, n) => ({ status: 200, body: { messaging_product: 'whatsapp', contacts: [{ wa_id: 'x' }], messages: [{ id: `wamid.TEST${n}` }] } }));

export function hmacHex(secret: string, body: string) {
  return createHmac('sha256', secret).update(body).digest('hex');
}
