import { randomBytes } from 'node:crypto';
import os from 'node:os';
import pg from 'pg';
import type { Config } from '../config.ts';
import type { Db } from '../db/pool.ts';
import { maskEmail, type Logger } from '../log.ts';
import type { JobRenderer } from '../jobs/render.ts';
import { composeMessage, type MessageSigner, type MessageToCompose } from '../sending/compose.ts';
import { DISPATCH_CHANNEL } from '../sending/submit.ts';
import { TransportError, type Transport } from '../transports/transport.ts';
import { claimMessages, releaseMessages, type ClaimedMessage } from './claim.ts';
import { recordOutcomes, retryDelayMs, type Outcome } from './results.ts';

export type DispatchOptions = Config['dispatch'];

// Outcomes are written in bulk, but never held long: the shorter this is, the smaller the window
// in which a crash can forget a confirmed send (and so send it again after the lease expires).
const FLUSH_AFTER_MS = 20;
// A send is not started this close to the end of its lease (5 s, or a quarter of a short lease).
const leaseMarginMs = (leaseSeconds: number) => Math.min(5_000, leaseSeconds * 250);

/**
 * Claims queued messages in batches, sends them with bounded concurrency and records outcomes in
 * bulk. The next batch is claimed while the current one is sending. A NOTIFY from the accepting
 * transaction wakes it at once; otherwise it polls.
 */
export class Dispatcher {
  readonly workerId = `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private stopping = false;
  private loop?: Promise<void>;
  private wake?: () => void;
  private listener?: pg.Client;
  private outcomes: Outcome[] = [];
  private flushTimer?: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Db,
    private readonly databaseUrl: string,
    private readonly transport: Transport,
    private readonly options: DispatchOptions,
    private readonly log: Logger,
    /** Renders list send jobs' messages; without it, only proxy sends are dispatched correctly. */
    private readonly renderer?: JobRenderer,
    /** DKIM key and return path by the tenant's verified From domain (src/domains/signing.ts). */
    private readonly signer?: MessageSigner,
  ) {}

  async start(): Promise<void> {
    await this.listen();
    this.loop = this.run();
  }

  /** Stops claiming, finishes the sends in flight, gives back what was claimed but not started. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.loop;
    await this.flush();
    await this.listener?.end().catch(() => {});
  }

  private async listen() {
    const client = new pg.Client({ connectionString: this.databaseUrl, application_name: 'send-engine-dispatch' });
    client.on('notification', () => this.wake?.());
    // Losing the listener only costs latency: the loop still polls.
    client.on('error', (err) => this.log.warn({ err: err.message }, 'dispatch listener lost; polling'));
    try {
      await client.connect();
      await client.query(`LISTEN ${DISPATCH_CHANNEL}`);
      this.listener = client;
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'dispatch listener unavailable; polling');
    }
  }

  private idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  private async untilNextDue(): Promise<number> {
    const { rows } = await this.db
      // Only future ones: due-but-unclaimable messages (a paused tenant's) must not make this spin.
      .query(`SELECT ceil(extract(epoch FROM min(next_attempt_at) - now()) * 1000)::int AS ms FROM messages WHERE status = 'queued' AND next_attempt_at > now()`)
      .catch(() => ({ rows: [{ ms: null }] }));
    return rows[0].ms ?? this.options.pollMs;
  }

  private claim(): Promise<ClaimedMessage[]> {
    return claimMessages(this.db, this.workerId, this.options.batchSize, this.options.leaseSeconds).catch((err) => {
      this.log.error({ err: (err as Error).message }, 'claim failed');
      return [];
    });
  }

  private async run() {
    let next = this.claim();
    while (true) {
      const batch = await next;
      if (this.stopping) {
        await releaseMessages(this.db, this.workerId, batch.map((m) => m.id)).catch(() => {});
        return;
      }
      if (!batch.length) {
        // Paced jobs schedule sends ahead: wake for the next one rather than a poll later.
        await this.idle(Math.min(this.options.pollMs, await this.untilNextDue()));
        next = this.stopping ? Promise.resolve([]) : this.claim();
        continue;
      }
      next = this.claim();
      await this.sendAll(batch);
    }
  }

  private async sendAll(batch: ClaimedMessage[]) {
    const jobIds = batch.flatMap((m) => (m.list ? [m.list.jobId] : []));
    if (jobIds.length) await this.renderer?.load(jobIds);
    let index = 0;
    const lane = async () => {
      while (index < batch.length && !this.stopping) await this.sendOne(batch[index++]);
    };
    await Promise.all(Array.from({ length: Math.min(this.options.concurrency, batch.length) }, lane));
    if (index < batch.length) await releaseMessages(this.db, this.workerId, batch.slice(index).map((m) => m.id));
  }

  private async sendOne(message: ClaimedMessage) {
    // Too close to the lease's end: leave it to be reclaimed rather than risk two senders.
    if (Date.now() > message.leaseDeadline - leaseMarginMs(this.options.leaseSeconds)) return;
    if (message.skip) {
      const status = message.skip === 'unsubscribed' ? 'cancelled' : message.skip;
      this.record({ id: message.id, kind: 'skipped', status, error: `not sent: ${message.skip} before send` });
      return;
    }
    try {
      const content = this.content(message);
      const composed = await composeMessage(content, await this.signer?.signingFor(message.tenantId, content.from));
      const { providerMessageId } = await this.transport.send(composed);
      this.record({ id: message.id, kind: 'sent', providerMessageId });
    } catch (err) {
      const permanent = !(err instanceof TransportError) || err.permanent;
      const error = (err as Error).message;
      const giveUp = permanent || message.attempts >= this.options.maxAttempts;
      this.log.warn({ message_id: message.id, to: maskEmail(message.recipient), attempt: message.attempts, permanent, error }, giveUp ? 'send failed' : 'send deferred');
      this.record(
        giveUp
          ? { id: message.id, kind: 'failed', error }
          : { id: message.id, kind: 'retry', error, delayMs: retryDelayMs(message.attempts, this.options.retryBaseMs, this.options.retryMaxMs) },
      );
    }
  }

  private content(message: ClaimedMessage): MessageToCompose {
    if (message.proxy) return { ...message.proxy, id: message.id, recipient: message.recipient };
    if (!message.list || !this.renderer) throw new Error('list message without a renderer');
    return this.renderer.render({ id: message.id, tenantId: message.tenantId, recipient: message.recipient, list: message.list });
  }

  private record(outcome: Outcome) {
    this.outcomes.push(outcome);
    if (this.outcomes.length >= this.options.batchSize) void this.flush();
    else this.flushTimer ??= setTimeout(() => void this.flush(), FLUSH_AFTER_MS);
  }

  /** Writes buffered outcomes; a failed write keeps them for the next flush. */
  flush(): Promise<void> {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.flushing = this.flushing.then(async () => {
      const outcomes = this.outcomes.splice(0);
      if (!outcomes.length) return;
      try {
        await recordOutcomes(this.db, this.workerId, outcomes);
      } catch (err) {
        this.log.error({ err: (err as Error).message, count: outcomes.length }, 'recording outcomes failed; will retry');
        this.outcomes.unshift(...outcomes);
        this.flushTimer ??= setTimeout(() => void this.flush(), 1000);
      }
    });
    return this.flushing;
  }
}
