import { afterEach, describe, expect, it } from 'vitest';
import { composeMessage } from '../../src/sending/compose.ts';
import { smtpTransport } from '../../src/transports/smtp.ts';
import { TransportError, type Transport } from '../../src/transports/transport.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';

let sink: SmtpSink | undefined;
let transport: Transport | undefined;
afterEach(async () => {
  await transport?.close();
  await sink?.close();
  sink = transport = undefined;
});

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
