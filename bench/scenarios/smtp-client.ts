import { composeMessage } from '../../src/sending/compose.ts';
import { smtpTransport } from '../../src/transports/smtp.ts';
import type { ComposedMessage } from '../../src/sending/compose.ts';
import { fmt, startSink } from '../lib.ts';

const MESSAGES = Number(process.env.BENCH_SMTP_MESSAGES ?? 30_000);
const LANES = 20;
const HTML = `<html><body><h1>November news</h1>${'<p>Lorem ipsum dolor sit amet, <a href="https://acme.example/article">read more</a>.</p>'.repeat(10)}</body></html>`;

/**
 * The SMTP client alone (no database, no rendering): CPU per message of this process while 20 lanes
 * send composed messages into the sink as the dispatcher does, each send's end of data gated on the
 * lane's previous "outcome write" (here a timer of `gateMs`; 0: already durable).
 */
async function run(url: string, messages: ComposedMessage[], n: number, gateMs: number) {
  const transport = smtpTransport({ url, maxConnections: LANES });
  const signal = AbortSignal.timeout(600_000);
  const send = async (count: number) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: LANES }, async () => {
        let durable: Promise<void> = Promise.resolve();
        while (next < count) {
          await transport.send(messages[next++ % messages.length], { acceptAfter: durable, signal });
          durable = gateMs ? new Promise((r) => setTimeout(r, gateMs)) : Promise.resolve();
        }
        await durable;
      }),
    );
  };
  await send(2_000); // connections open, code warm
  const cpu = process.cpuUsage();
  const started = performance.now();
  await send(n);
  const used = process.cpuUsage(cpu);
  const seconds = (performance.now() - started) / 1000;
  await transport.close();
  return { us: (used.user + used.system) / n, rate: n / seconds };
}

export default async function smtpClient() {
  const sink = await startSink();
  const messages: ComposedMessage[] = [];
  for (let i = 0; i < 2_000; i++) {
    messages.push(await composeMessage({ id: `01890000-0000-7000-8000-${String(i).padStart(12, '0')}`, recipient: `member${i}@example.com`, from: 'news@acme.example', subject: `News ${i}`, html: HTML, text: 'November news', headers: {}, listUnsubscribe: null }));
  }
  console.log(`sink: ${sink.kind}; ${fmt(MESSAGES)} messages of ${fmt(messages[0].raw.length)} bytes, ${LANES} connections`);
  try {
    for (const gateMs of [0, 1]) {
      const r = await run(`smtp://127.0.0.1:${sink.port}`, messages, MESSAGES, gateMs);
      console.log(`previous outcome ${gateMs ? `durable ${gateMs} ms after each send` : 'already durable'}: ${fmt(r.us, 1)} µs CPU per message (this process), ${fmt(r.rate)} msgs/s`);
    }
  } finally {
    await sink.stop();
  }
}
