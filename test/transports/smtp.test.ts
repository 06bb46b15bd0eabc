import net from 'node:net';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { afterEach, describe, expect, it } from 'vitest';
import { composeMessage } from '../../src/sending/compose.ts';
import { dotStuffed, smtpTransport } from '../../src/transports/smtp.ts';
import { TransportError, type Transport } from '../../src/transports/transport.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';

let sink: SmtpSink | undefined;
let transport: Transport | undefined;
const cleanups: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  await transport?.close();
  await sink?.close();
  sink = transport = undefined;
  for (const c of cleanups.splice(0)) await c();
});

/** A TCP relay in front of a server that records what the client wrote, chunk by chunk, per connection. */
async function recordingRelay(targetPort: number) {
  const connections: string[][] = [];
  const server = net.createServer((client) => {
    const chunks: string[] = [];
    connections.push(chunks);
    const upstream = net.connect(targetPort, '127.0.0.1');
    client.on('data', (c) => {
      chunks.push(c.toString());
      upstream.write(c);
    });
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('error', () => {});
    upstream.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return { port: (server.address() as net.AddressInfo).port, connections };
}

const message = (n: number, to: string) =>
  composeMessage({
    id: `01890000-0000-7000-8000-${String(n).padStart(12, '0')}`,
    recipient: to,
    from: 'news@acme.test',
    subject: 'Deadline',
    html: null,
    text: 'Hi',
    headers: {},
    listUnsubscribe: null,
  });

describe('SMTP transport deadlines', () => {
  it('stores the Message-ID it sent as the provider id', async () => {
    sink = await startSmtpSink();
    transport = smtpTransport({ url: sink.url, maxConnections: 1 });
    const m = await message(1, 'a@example.com');
    expect(await transport.send(m)).toEqual({ providerMessageId: '<01890000-0000-7000-8000-000000000001@acme.test>' });
    expect((await sink.waitFor(1))[0].parsed.messageId).toBe(m.messageId);
  });

  it('an aborted send never goes out: neither the one on a stalled connection nor one waiting for a connection', async () => {
    // One connection; its first RCPT stalls 1.5 s. The first send holds the connection, the second waits in the pool.
    sink = await startSmtpSink({ rcptDelayMs: (_a, i) => (i === 0 ? 1_500 : 0) });
    transport = smtpTransport({ url: sink.url, maxConnections: 1 });
    const stalled = transport.send(await message(2, 'stalled@example.com'), { signal: AbortSignal.timeout(300) });
    const waiting = transport.send(await message(3, 'waiting@example.com'), { signal: AbortSignal.timeout(300) });
    for (const p of [stalled, waiting]) {
      const err = await p.catch((e) => e);
      expect(err).toBeInstanceOf(TransportError);
      expect(err.permanent).toBe(false);
      expect(err.message).toMatch(/deadline/);
    }
    // The pool goes on with a new connection; nothing of the aborted sends arrives, even after the stall.
    await transport.send(await message(4, 'after@example.com'));
    await new Promise((r) => setTimeout(r, 2_000));
    expect(sink.messages.map((m) => m.envelopeTo[0])).toEqual(['after@example.com']);
  });
});

describe('SMTP client', () => {
  it('keeps one connection, pipelines MAIL/RCPT/DATA in one write, and dot-stuffs lines that start with a dot', async () => {
    sink = await startSmtpSink();
    const relay = await recordingRelay(sink.port);
    transport = smtpTransport({ url: `smtp://127.0.0.1:${relay.port}`, maxConnections: 1 });
    const text = '.starts with a dot\n..two dots\nend';
    const sent = await Promise.all([1, 2, 3].map(async (n) => transport!.send(await composeMessage({ id: `01890000-0000-7000-8000-00000000010${n}`, recipient: `r${n}@example.com`, from: 'news@acme.test', subject: 'S', html: null, text, headers: {}, listUnsubscribe: null }))));
    expect(sent).toHaveLength(3);
    const received = await sink.waitFor(3);
    expect(received.map((m) => m.parsed.text?.trim())).toEqual([text, text, text]);
    expect(relay.connections).toHaveLength(1);
    const writes = relay.connections[0];
    for (const n of [1, 2, 3]) expect(writes).toContain(`MAIL FROM:<news@acme.test>\r\nRCPT TO:<r${n}@example.com>\r\nDATA\r\n`);
    expect(dotStuffed(Buffer.from('.a\r\nb\r\n.c')).map(String).join('')).toBe('..a\r\nb\r\n..c\r\n.\r\n');
    // The end of data is the last buffer on its own (held back until acceptAfter), the missing final CRLF with it.
    expect(dotStuffed(Buffer.from('a\r\n')).map(String)).toEqual(['a\r\n', '.\r\n']);
    expect(dotStuffed(Buffer.from('a')).map(String)).toEqual(['a', '\r\n.\r\n']);
  });

  it('upgrades with STARTTLS when offered, authenticates, and fails a refused login permanently with the reply', async () => {
    const seen: Array<{ secure: boolean; user: unknown; to: string }> = [];
    const server = new SMTPServer({
      logger: false,
      authMethods: ['PLAIN', 'LOGIN'],
      onAuth(auth, _session, cb) {
        if (auth.username === 'app' && auth.password === 'p@ss:word') return cb(null, { user: 'app' });
        cb(Object.assign(new Error('Invalid credentials'), { responseCode: 535 }));
      },
      onData(stream, session, cb) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', async () => {
          await simpleParser(Buffer.concat(chunks));
          seen.push({ secure: session.secure, user: session.user, to: session.envelope.rcptTo[0].address });
          cb();
        });
      },
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const port = (server.server.address() as net.AddressInfo).port;
    transport = smtpTransport({ url: `smtp://app:${encodeURIComponent('p@ss:word')}@127.0.0.1:${port}?tls.rejectUnauthorized=false`, maxConnections: 1 });
    await transport.send(await message(20, 'tls@example.com'));
    expect(seen).toEqual([{ secure: true, user: 'app', to: 'tls@example.com' }]);
    await transport.close();
    transport = smtpTransport({ url: `smtp://app:wrong@127.0.0.1:${port}?tls.rejectUnauthorized=false`, maxConnections: 1 });
    const err = await transport.send(await message(21, 'tls@example.com')).catch((e) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect(err.permanent).toBe(true);
    expect(err.message).toMatch(/AUTH.*535/);
  });
});

describe('SMTP transport: acceptance after the previous outcome is durable (acceptAfter)', () => {
  it('sends the dialogue and the body at once but the end of DATA only when acceptAfter resolves', async () => {
    let dataStarted = false;
    sink = await startSmtpSink({ onDataStart: () => (dataStarted = true) });
    transport = smtpTransport({ url: sink.url, maxConnections: 1 });
    expect(transport.defersAcceptance).toBe(true);
    let durable!: () => void;
    const acceptAfter = new Promise<void>((resolve) => (durable = resolve));
    let settled = false;
    const sending = transport.send(await message(10, 'gate@example.com'), { acceptAfter }).finally(() => (settled = true));
    // The body is already with the server ...
    for (let i = 0; i < 100 && !dataStarted; i++) await new Promise((r) => setTimeout(r, 20));
    expect(dataStarted).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    // ... but not taken: no end of DATA, no 250.
    expect(sink.messages).toHaveLength(0);
    expect(settled).toBe(false);
    durable();
    await sending;
    expect((await sink.waitFor(1))[0].envelopeTo).toEqual(['gate@example.com']);
  });

  it('a deadline reached while waiting closes the connection: the server never takes the message, the pool goes on', async () => {
    sink = await startSmtpSink();
    transport = smtpTransport({ url: sink.url, maxConnections: 1 });
    const never = new Promise<void>(() => {});
    const err = await transport.send(await message(11, 'late@example.com'), { acceptAfter: never, signal: AbortSignal.timeout(300) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect((err as TransportError).permanent).toBe(false);
    expect((err as Error).message).toMatch(/deadline/);
    // The one connection was given back (not leaked while its wait hung): the next send goes out.
    await transport.send(await message(12, 'next@example.com'));
    const received = await sink.waitFor(1);
    await new Promise((r) => setTimeout(r, 100));
    expect(sink.messages.map((m) => m.envelopeTo[0])).toEqual(['next@example.com']);
    expect(received).toHaveLength(1);
  });
});
