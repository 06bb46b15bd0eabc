import nodemailer from 'nodemailer';
import { Dispatcher } from '../../src/dispatch/dispatcher.ts';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { submitProxySend } from '../../src/sending/submit.ts';
import { createTenant } from '../../src/tenants/tenants.ts';
import { noDelaySocket, smtpTransport } from '../../src/transports/smtp.ts';
import type { Transport } from '../../src/transports/transport.ts';
import { benchDatabase, fmt, sleep, startSink, BENCH_JWT_SECRET } from '../lib.ts';

const MESSAGES = Number(process.env.BENCH_DISPATCH_MESSAGES ?? 20_000);

/** nodemailer's pooled SMTP client behind our Transport interface: what smtpTransport replaced. */
function nodemailerTransport(port: number, maxConnections: number): Transport {
  const transporter = nodemailer.createTransport({ host: '127.0.0.1', port, pool: true, maxConnections, maxMessages: Infinity, getSocket: noDelaySocket } as nodemailer.TransportOptions);
  return {
    name: 'nodemailer',
    send: async (m) => (await transporter.sendMail({ envelope: { from: m.envelopeFrom ?? m.from, to: [m.to] }, raw: m.raw }), { providerMessageId: m.messageId }),
    close: async () => transporter.close(),
  };
}

/**
 * The dispatcher alone (claim, compose, send, record) on pre-queued messages: once with a transport
 * that does nothing (the engine's own ceiling), once into the SMTP sink with our client and once
 * with nodemailer's pooled client (the choice of SMTP client, measured). Shows what limits a send.
 */
export default async function dispatch() {
  const sink = await startSink();
  const nullTransport: Transport = { name: 'null', send: async (m) => ({ providerMessageId: m.id }), close: async () => {} };
  for (const [name, make] of [
    ['no-op transport', () => nullTransport],
    [`SMTP into ${sink.kind}`, () => smtpTransport({ url: `smtp://127.0.0.1:${sink.port}`, maxConnections: 10 })],
    [`nodemailer pool into sink`, () => nodemailerTransport(sink.port, 10)],
  ] as const) {
    const database = await benchDatabase();
    const tenant = await createTenant(database.db, 'bench');
    for (let k = 0; k < MESSAGES / 1000; k++) {
      const to = Array.from({ length: 1000 }, (_, i) => `user${k * 1000 + i}@example.com`);
      await submitProxySend(database.db, tenant.id, { message_type: 'transactional', from: 'receipts@acme.example', to, subject: 'Receipt', html: '<p>Thanks for your order.</p>', text: 'Thanks for your order.', tags: { campaign_id: 'c', site_id: 's', list_id: 'l', segment: 'all' }, idempotency_key: `k${k}` }, { idempotencyTtlHours: 1 });
    }
    const config = loadConfig({ DATABASE_URL: database.url, JWT_SECRET: BENCH_JWT_SECRET });
    const transport = make();
    const dispatcher = new Dispatcher(database.db, database.url, transport, config.dispatch, createLogger('warn'));
    const started = performance.now();
    await dispatcher.start();
    for (;;) {
      const { rows } = await database.db.query(`SELECT count(*)::int AS n FROM messages WHERE status = 'sent'`);
      if (rows[0].n >= MESSAGES) break;
      await sleep(50);
    }
    const seconds = (performance.now() - started) / 1000;
    await dispatcher.stop();
    await transport.close();
    console.log(`${name.padEnd(28)} ${fmt(MESSAGES / seconds)} msgs/s (${fmt(MESSAGES)} messages, batch ${config.dispatch.batchSize}, concurrency ${config.dispatch.concurrency})`);
    await database.drop();
  }
  await sink.stop();
}
