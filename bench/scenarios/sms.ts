import smpp, { type Pdu } from 'smpp';
import { receiptRecorder } from '../../src/channels/index.ts';
import { SmppTransport } from '../../src/channels/sms/smpp.ts';
import { loadConfig } from '../../src/config.ts';
import { Dispatcher } from '../../src/dispatch/dispatcher.ts';
import { createLogger } from '../../src/log.ts';
import { createTenant } from '../../src/tenants/tenants.ts';
import type { Transport } from '../../src/transports/transport.ts';
import { benchDatabase, BENCH_JWT_SECRET, fmt, sleep } from '../lib.ts';

const MESSAGES = Number(process.env.BENCH_SMS_MESSAGES ?? 20_000);
const WINDOW = 64;

/** An SMSC on 127.0.0.1 (the smpp package's server): binds, answers submit_sm, sends a DELIVRD receipt for each. */
async function startSmsc() {
  let submitted = 0;
  let seq = 0;
  const server = smpp.createServer({}, (session) => {
    session.on('error', () => {});
    session.on('bind_transceiver', (pdu: Pdu) => session.send(pdu.response()));
    session.on('enquire_link', (pdu: Pdu) => session.send(pdu.response()));
    session.on('unbind', (pdu: Pdu) => {
      session.send(pdu.response());
      session.close();
    });
    session.on('submit_sm', (pdu: Pdu) => {
      submitted++;
      const id = `m${++seq}`;
      session.send(pdu.response({ message_id: id }));
      if (pdu.registered_delivery & 1 && process.env.BENCH_SMS_RECEIPTS !== '0') {
        session.deliver_sm({ source_addr: pdu.destination_addr, destination_addr: pdu.source_addr, esm_class: 4, short_message: `id:${id} sub:001 dlvrd:001 stat:DELIVRD err:000 text:` });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: server.address().port, submitted: () => submitted, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** The baseline: the smpp package's own client, one session, submit_sm pipelined WINDOW deep. */
async function rawClient(port: number): Promise<number> {
  const session = smpp.connect({ url: `smpp://127.0.0.1:${port}` });
  await new Promise<void>((resolve) => session.on('connect', () => session.bind_transceiver({ system_id: 'bench', password: 'x' }, () => resolve())));
  session.on('deliver_sm', (pdu: Pdu) => session.send(pdu.response()));
  const started = performance.now();
  let sent = 0;
  let done = 0;
  await new Promise<void>((resolve) => {
    const pump = () => {
      while (sent < MESSAGES && sent - done < WINDOW) {
        const n = sent++;
        session.submit_sm({ source_addr: 'ACME', destination_addr: `3361${String(n).padStart(7, '0')}`, registered_delivery: 1, short_message: 'Your code is 123456' }, () => {
          if (++done === MESSAGES) resolve();
          else pump();
        });
      }
    };
    pump();
  });
  const rate = MESSAGES / ((performance.now() - started) / 1000);
  await new Promise<void>((r) => session.unbind({}, () => session.close(r)));
  return rate;
}

/**
 * `npm run bench -- sms`: SMS submits per second from the outbox into an SMPP server (claim, opt-out
 * check, submit_sm over one bound session, record; receipts applied as they come back), against the
 * same run's raw smpp client loop into the same server.
 */
export default async function sms() {
  const smsc = await startSmsc();
  const baseline = await rawClient(smsc.port);
  console.log(`raw smpp client (window ${WINDOW})   ${fmt(baseline)} submit_sm/s (${fmt(MESSAGES)} messages)`);

  const database = await benchDatabase();
  const tenant = await createTenant(database.db, 'bench');
  await database.db.query(
    `WITH m AS (
       INSERT INTO messages (id, tenant_id, channel, recipient, status, priority)
       SELECT uuid_v7(), $1, 'sms', '+3361' || lpad(i::text, 7, '0'), 'queued', 0 FROM generate_series(1, $2) i
       RETURNING id)
     INSERT INTO channel_messages (message_id, tenant_id, channel, body, sender_id, flow, segments, encoding)
     SELECT id, $1, 'sms', 'Your code is 123456', 'ACME', 'STANDARD', 1, 'GSM-7' FROM m`,
    [tenant.id, MESSAGES],
  );
  const config = loadConfig({ DATABASE_URL: database.url, JWT_SECRET: BENCH_JWT_SECRET, DISPATCH_CONCURRENCY: process.env.DISPATCH_CONCURRENCY ?? '64', DISPATCH_BATCH_SIZE: process.env.DISPATCH_BATCH_SIZE ?? '100' });
  const logger = createLogger('warn');
  const transport = new SmppTransport({ url: `smpp://127.0.0.1:${smsc.port}`, systemId: 'bench', password: 'x', log: logger, onReceipts: receiptRecorder(database.db, logger) });
  while (!transport.isBound) await sleep(10);
  const noEmail: Transport = { name: 'none', send: async () => { throw new Error('no email'); }, close: async () => {} };
  const dispatcher = new Dispatcher(database.db, database.url, noEmail, config.dispatch, logger, undefined, undefined, { sms: transport });
  const before = smsc.submitted();
  const started = performance.now();
  await dispatcher.start();
  for (;;) {
    const { rows } = await database.db.query(`SELECT count(*) FILTER (WHERE status IN ('sent', 'delivered'))::int AS n FROM messages`);
    if (rows[0].n >= MESSAGES) break;
    await sleep(50);
  }
  const seconds = (performance.now() - started) / 1000;
  const engine = MESSAGES / seconds;
  for (let i = 0; i < 100; i++) {
    const { rows } = await database.db.query(`SELECT count(*) FILTER (WHERE status = 'delivered')::int AS n FROM messages`);
    if (rows[0].n >= MESSAGES) break;
    await sleep(100);
  }
  const { rows } = await database.db.query(`SELECT status, count(*)::int AS n FROM messages GROUP BY status ORDER BY status`);
  await dispatcher.stop();
  await transport.close();
  console.log(`engine outbox -> SMPP              ${fmt(engine)} submits/s (${fmt(smsc.submitted() - before)} submit_sm for ${fmt(MESSAGES)} messages, batch ${config.dispatch.batchSize}, concurrency ${config.dispatch.concurrency}); ratio to raw client ${fmt(engine / baseline, 2)}`);
  console.log(`goal >= 2,000 submits/s: ${engine >= 2000 ? 'met' : 'NOT met'}; statuses after receipts: ${rows.map((r) => `${r.status} ${fmt(r.n)}`).join(', ')}`);
  await database.drop();
  await smsc.close();
}
