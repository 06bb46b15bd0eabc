import http, { type Server } from 'node:http';
import sesLocalModule from 'aws-ses-v2-local';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeMessage } from '../../src/sending/compose.ts';
import { sesTransport } from '../../src/transports/ses.ts';
import { TransportError } from '../../src/transports/transport.ts';

// The package is CommonJS with an `exports.default`.
type StartEmulator = (config?: { host?: string; port?: number }) => Promise<Server>;
const sesLocal = ((sesLocalModule as unknown as { default?: StartEmulator }).default ?? sesLocalModule) as StartEmulator;
let server: Server;
let endpoint: string;

beforeAll(async () => {
  // The emulator accepts any credentials; the SDK only needs some to sign with.
  process.env.AWS_ACCESS_KEY_ID ??= 'test';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'test';
  server = await sesLocal({ host: '127.0.0.1', port: 0 });
  endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const message = () =>
  composeMessage({
    id: '01890000-0000-7000-8000-00000000abcd',
    recipient: 'alice@example.com',
    from: 'news@acme.test',
    subject: 'Through SES',
    html: '<p>Hi</p>',
    text: 'Hi',
    headers: { 'X-Campaign': 'spring' },
    listUnsubscribe: { url: 'https://acme.test/u' },
  });

describe('SES transport (aws-ses-v2-local emulator)', () => {
  it('sends our raw MIME through SendEmail and returns the SES MessageId', async () => {
    const transport = sesTransport({ region: 'us-east-1', endpoint });
    const result = await transport.send(await message());
    await transport.close();
    expect(result.providerMessageId).toMatch(/\S+/);

    // The emulator keeps what it parsed out of our raw MIME.
    type Stored = { messageId: string; from: string; subject: string; destination: { to: string[] }; body: { text?: string; html?: string } };
    const store = (await (await fetch(`${endpoint}/store`)).json()) as { emails: Stored[] };
    const sent = store.emails.find((e) => e.messageId === result.providerMessageId);
    expect(sent, 'the emulator stored the message under the id we recorded').toBeDefined();
    expect(sent!.destination.to).toEqual(['alice@example.com']);
    expect(sent!.from).toBe('news@acme.test');
    expect(sent!.subject).toBe('Through SES');
    expect(sent!.body.text?.trim()).toBe('Hi');
    expect(sent!.body.html).toContain('<p>Hi</p>');
  });

  it('reports an unreachable endpoint as a transient failure (retried, not dropped)', async () => {
    const transport = sesTransport({ region: 'us-east-1', endpoint: 'http://127.0.0.1:9' });
    const err = await transport.send(await message()).catch((e: unknown) => e);
    await transport.close();
    expect(err).toBeInstanceOf(TransportError);
    expect((err as TransportError).permanent).toBe(false);
  });

  it.each([
    [429, 'TooManyRequestsException', false, 'Maximum sending rate exceeded.'],
    [400, 'MessageRejected', true, 'Email address is not verified.'],
  ])('classifies an SES %i %s (permanent: %s)', async (status, type, permanent, text) => {
    // SES itself cannot be made to throttle here: answer as SES does at the HTTP edge.
    const edge = http.createServer((req, res) => {
      req.resume();
      res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-errortype': type }).end(JSON.stringify({ message: text }));
    });
    await new Promise<void>((resolve) => edge.listen(0, '127.0.0.1', resolve));
    const transport = sesTransport({ region: 'us-east-1', endpoint: `http://127.0.0.1:${(edge.address() as { port: number }).port}` });
    try {
      const err = await transport.send(await message()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TransportError);
      expect((err as TransportError).permanent).toBe(permanent);
      expect((err as TransportError).message).toContain(type);
    } finally {
      await transport.close();
      edge.close();
    }
  });
});

describe('SES transport deadlines', () => {
  // An endpoint that accepts the request and never answers (a hung connection).
  let hung: Server;
  let hungEndpoint: string;
  beforeAll(async () => {
    hung = http.createServer(() => {});
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    hungEndpoint = `http://127.0.0.1:${(hung.address() as { port: number }).port}`;
  });
  afterAll(() => {
    hung.closeAllConnections();
    return new Promise<void>((resolve) => hung.close(() => resolve()));
  });

  it('aborts a request in flight when the lease deadline fires: a transient failure', async () => {
    const transport = sesTransport({ region: 'us-east-1', endpoint: hungEndpoint, timeoutMs: 60_000 });
    const err = await transport.send(await message(), { signal: AbortSignal.timeout(300) }).catch((e) => e);
    await transport.close();
    expect(err).toBeInstanceOf(TransportError);
    expect(err.permanent).toBe(false);
    expect(err.message).toMatch(/abort/i);
  });

  it('gives up on a request that gets no answer within the timeout derived from the lease', async () => {
    const transport = sesTransport({ region: 'us-east-1', endpoint: hungEndpoint, timeoutMs: 300 });
    const err = await transport.send(await message()).catch((e) => e);
    await transport.close();
    expect(err).toBeInstanceOf(TransportError);
    expect(err.permanent).toBe(false);
  });
});
