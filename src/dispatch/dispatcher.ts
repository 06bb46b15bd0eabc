import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import os from 'node:os';
import pg from 'pg';
import type { ChannelTransports } from '../channels/types.ts';
import type { Config } from '../config.ts';
import type { Db } from '../db/pool.ts';
import { maskEmail, type Logger } from '../log.ts';
import { RenderFailure, type JobRenderer } from '../jobs/render.ts';
import { AttachmentCache } from '../sending/attachments.ts';
import { composeMessage, type ComposedMessage, type MessageSigner } from '../sending/compose.ts';
import { TransportError, type Transport } from '../transports/transport.ts';
import { claimMessages, releaseMessages, type ClaimedMessage } from '../outbox/claim.ts';
import { DISPATCH_CHANNEL } from '../outbox/enqueue.ts';
import { recordOutcomes, type Outcome } from '../outbox/outcomes.ts';
import { leaseTimings } from './lease.ts';

export type DispatchOptions = Config['dispatch'];

// A failed write of outcomes is tried again after this; the lanes waiting on it wait too.
const FLUSH_RETRY_MS = 1000;
// Outcome writes in flight at once (see record()). One: a second write in flight held mostly one
// outcome and then waited on the first one's counter rows (the roll-up triggers) until it
// committed, so it cost PostgreSQL CPU and gained no latency (list-send: 9.5 outcomes a write
// instead of 5.7, PostgreSQL CPU per message 490 instead of 600-670 us).
const MAX_WRITES_IN_FLIGHT = 1;
// A failed loop iteration (a bug, the database gone) is retried after this, doubling up to the cap.
const RESTART_BASE_MS = 200;
const RESTART_MAX_MS = 30_000;

/**
 * Claims queued messages in batches, sends them with bounded concurrency and records outcomes in
 * bulk. The next batch is claimed while the current one is sending. A NOTIFY from the accepting
 * transaction wakes it at once; otherwise it polls.
 *
 * Nothing a batch does can end the loop: an error of one message (its render, its transport, a
 * bug) becomes that message's outcome with the reason; an error of a whole iteration is logged, the
 * messages it held are retried, and the loop goes on after a backoff.
 */
export class Dispatcher {
  readonly workerId = `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private stopping = false;
  private loop?: Promise<void>;
  private wake?: () => void;
  private listener?: pg.Client;
  /** Outcomes not yet written, each with the lane (or loop) waiting for it to be durable. */
  private pending: { outcome: Outcome; written: () => void }[] = [];
  /** Write loops running: counted up and down synchronously with their first and last look at `pending`. */
  private writing = 0;
  private readonly writes = new Set<Promise<void>>();
  /** Claimed by this worker and not yet given back (outcome written or released): never reclaimed by it. */
  private readonly held = new Set<string>();
  private readonly lease: ReturnType<typeof leaseTimings>;
  /** A send's attachments, loaded once for all its copies. */
  private readonly attachments: AttachmentCache;

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
    /** SMS and WhatsApp transports (src/channels): a claimed message's channel chooses its transport. */
    private readonly channels: ChannelTransports = {},
  ) {
    this.lease = leaseTimings(options.leaseSeconds);
    this.attachments = new AttachmentCache(db);
    if (renderer) {
      renderer.log ??= log;
      renderer.signer ??= signer;
    }
  }

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
    await this.renderer?.close();
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
    return claimMessages(this.db, this.workerId, this.options.batchSize, this.options.leaseSeconds, [...this.held]).then(
      (batch) => {
        for (const m of batch) this.held.add(m.id);
        return batch;
      },
      (err) => {
        this.log.error({ err: (err as Error).message }, 'claim failed');
        return [];
      },
    );
  }

  /** The supervised loop: it returns only when stopping, whatever an iteration throws. */
  private async run() {
    let next: Promise<ClaimedMessage[]> | undefined;
    let failures = 0;
    while (true) {
      const batch = await (next ?? (this.stopping ? Promise.resolve([]) : this.claim()));
      next = undefined;
      if (this.stopping) {
        await this.release(batch, 'shutdown');
        return;
      }
      try {
        if (!batch.length) {
          // Paced jobs schedule sends ahead: wake for the next one rather than a poll later.
          await this.idle(Math.min(this.options.pollMs, await this.untilNextDue()));
          continue;
        }
        next = this.claim();
        await this.sendAll(batch);
        failures = 0;
      } catch (err) {
        failures++;
        const delayMs = retryDelayMs(failures, RESTART_BASE_MS, RESTART_MAX_MS);
        const error = `dispatch_error: ${(err as Error)?.message ?? String(err)}`;
        // What the failed iteration still held goes back with the reason, to be tried again later.
        const orphans = batch.filter((m) => this.held.has(m.id) && !this.pending.some((p) => p.outcome.id === m.id));
        await Promise.all(orphans.map((m) => this.record(this.retryOrFail(m, error, false))));
        this.log.error({ err: error, stack: (err as Error)?.stack, messages: orphans.length, failures, retry_in_ms: Math.round(delayMs) }, 'dispatch iteration failed; continuing after a pause');
        await this.idle(delayMs);
      }
    }
  }

  private async sendAll(batch: ClaimedMessage[]) {
    // Rendering and composing start for the whole batch at once (in the render threads, chunked per
    // job); each lane then waits only for its own message's raw bytes.
    const listMessages = batch.flatMap((m) => (m.list ? [{ id: m.id, tenantId: m.tenantId, recipient: m.recipient, list: m.list }] : []));
    const renders = listMessages.length && this.renderer ? this.renderer.composeMany(listMessages) : new Map<string, Promise<ComposedMessage>>();
    const unstarted: ClaimedMessage[] = [];
    // One deadline signal (one timer) per lease deadline, which a claim's messages share: a timer per
    // message cost about as much CPU as the message's SMTP writes. Every lane's send listens to it.
    const deadlines = new Map<number, AbortSignal>();
    const signalFor = (deadline: number) => {
      let signal = deadlines.get(deadline);
      if (!signal) {
        deadlines.set(deadline, (signal = AbortSignal.timeout(Math.max(0, deadline - Date.now()))));
        setMaxListeners(this.options.concurrency + 10, signal);
      }
      return signal;
    };
    let index = 0;
    const lane = async () => {
      // The lane's previous outcome write: the next send may start before it is durable, but the
      // server does not take that next message before it is (SendOptions.acceptAfter).
      let durable: Promise<void> = Promise.resolve();
      try {
        while (index < batch.length && !this.stopping) {
          const message = batch[index++];
          const sent = await this.sendOne(message, durable, signalFor, renders.get(message.id));
          if (sent) durable = sent.durable;
          else unstarted.push(message);
        }
      } finally {
        await durable;
      }
    };
    // Every lane ends before anything is decided about the batch, even if one of them threw.
    const lanes = await Promise.allSettled(Array.from({ length: Math.min(this.options.concurrency, batch.length) }, lane));
    const broken = lanes.find((l) => l.status === 'rejected');
    if (broken) throw broken.reason;
    unstarted.push(...batch.slice(index));
    await this.release(unstarted, this.stopping ? 'shutdown' : 'lease ending');
  }

  /** Gives back claimed messages whose send never started (their attempt is taken back). */
  private async release(messages: ClaimedMessage[], why: string) {
    if (!messages.length) return;
    const ids = messages.map((m) => m.id);
    try {
      const released = await releaseMessages(this.db, this.workerId, ids);
      this.log.info({ count: ids.length, released, why }, 'claimed messages given back unsent');
    } catch (err) {
      this.log.error({ err: (err as Error).message, count: ids.length, why }, 'giving back claimed messages failed; they return when their lease expires');
    }
    for (const id of ids) this.held.delete(id);
  }

  /**
   * Sends one claimed message and records its outcome: `durable` resolves when the outcome is
   * written. Undefined when the send was not started. `previous` is the lane's previous outcome
   * write: no server takes this message before it is durable. `signalFor` gives the signal aborted
   * at a deadline (the batch's, shared).
   */
  private async sendOne(message: ClaimedMessage, previous: Promise<void>, signalFor: (deadline: number) => AbortSignal, rendered?: Promise<ComposedMessage>): Promise<{ durable: Promise<void> } | undefined> {
    // Too close to the lease's end: give it back rather than risk two senders.
    const deadline = message.leaseDeadline - this.lease.endMarginMs;
    if (Date.now() > message.leaseDeadline - this.lease.startMarginMs) return undefined;
    // The window may have closed since the claim (lanes wait for earlier sends' outcomes).
    const skip = message.skip ?? (message.expiresAt !== null && Date.now() >= message.expiresAt ? 'expired' : null);
    if (skip) {
      const status = skip === 'unsubscribed' ? 'cancelled' : skip === 'opted_out' ? 'suppressed' : skip;
      return { durable: this.record({ id: message.id, attempt: message.attempts, kind: 'skipped', status, error: `not sent: ${skip} before send` }) };
    }
    let outcome: Outcome;
    try {
      if (message.content) {
        const channel = this.channels[message.channel as keyof ChannelTransports];
        if (!channel) throw new TransportError(`no ${message.channel} transport configured`, false);
        await previous;
        const signal = signalFor(deadline);
        const { providerMessageId } = await channel.send({ id: message.id, tenantId: message.tenantId, recipient: message.recipient, content: message.content }, { signal });
        outcome = { id: message.id, attempt: message.attempts, kind: 'sent', providerMessageId };
      } else {
        const composed = await this.composed(message, rendered);
        // Rendering may have taken a while: the send still must end before the lease does.
        const signal = signalFor(deadline);
        if (!this.transport.defersAcceptance) await previous;
        const { providerMessageId } = await this.transport.send(composed, { signal, acceptAfter: previous });
        outcome = { id: message.id, attempt: message.attempts, kind: 'sent', providerMessageId };
      }
    } catch (err) {
      const permanent = err instanceof RenderFailure || (err instanceof TransportError && err.permanent);
      // Anything else (a bug, a render thread that could not start) is ours: retried, up to the cap.
      const reason = err instanceof RenderFailure || err instanceof TransportError ? err.message : `internal: ${(err as Error)?.message ?? String(err)}`;
      outcome = this.retryOrFail(message, reason, permanent);
    }
    // The lane's next message is not taken by a server before this outcome is durable: a crash can
    // then repeat at most one confirmed send per lane (DISPATCH_CONCURRENCY in all).
    return { durable: this.record(outcome) };
  }

  private retryOrFail(message: ClaimedMessage, error: string, permanent: boolean): Outcome {
    const giveUp = permanent || message.attempts >= this.options.maxAttempts;
    this.log.warn({ message_id: message.id, to: maskEmail(message.recipient), attempt: message.attempts, permanent, error }, giveUp ? 'send failed' : 'send deferred');
    return giveUp
      ? { id: message.id, attempt: message.attempts, kind: 'failed', error }
      : { id: message.id, attempt: message.attempts, kind: 'retry', error, delayMs: retryDelayMs(message.attempts, this.options.retryBaseMs, this.options.retryMaxMs) };
  }

  /** A proxy send is composed here; a list message was rendered and composed in a render thread. */
  private async composed(message: ClaimedMessage, rendered?: Promise<ComposedMessage>): Promise<ComposedMessage> {
    if (message.proxy) {
      const { attachmentsOf, ...proxy } = message.proxy;
      const attachments = attachmentsOf ? await this.attachments.load(attachmentsOf) : undefined;
      const signing = await this.signer?.signingFor(message.tenantId, proxy.from);
      return composeMessage({ ...proxy, id: message.id, recipient: message.recipient, ...(attachments ? { attachments } : {}) }, signing);
    }
    if (!rendered) throw new Error('list message without a renderer');
    return rendered;
  }

  /**
   * Group commit: resolves once the outcome is written. A lone outcome is written at once; those
   * arriving while a write is in flight go together in the next one (one statement). The lane's
   * next send overlaps that wait (SendOptions.acceptAfter).
   */
  private record(outcome: Outcome): Promise<void> {
    const written = new Promise<void>((resolve) => this.pending.push({ outcome, written: resolve }));
    if (this.writing < MAX_WRITES_IN_FLIGHT) {
      const write: Promise<void> = this.drain().finally(() => this.writes.delete(write));
      this.writes.add(write);
    }
    return written;
  }

  /** Resolves when every outcome recorded so far is written. */
  async flush(): Promise<void> {
    while (this.writes.size) await Promise.all(this.writes);
  }

  /** Writes pending outcomes until none are left; a failed write is retried with the same outcomes. */
  private async drain(): Promise<void> {
    this.writing++;
    try {
      while (this.pending.length) {
        const batch = this.pending.splice(0, this.options.batchSize);
        const outcomes = batch.map((p) => p.outcome);
        try {
          const late = await recordOutcomes(this.db, this.workerId, outcomes);
          for (const o of outcomes) this.held.delete(o.id);
          for (const l of late) {
            this.log.warn({ message_id: l.id, outcome: l.kind, status: l.status, held_by: l.leasedBy }, 'send outcome arrived for a message this worker no longer held; recorded in its timeline only');
          }
          for (const p of batch) p.written();
        } catch (err) {
          this.log.error({ err: (err as Error).message, count: outcomes.length }, 'recording outcomes failed; will retry');
          this.pending.unshift(...batch);
          await new Promise((resolve) => setTimeout(resolve, FLUSH_RETRY_MS));
        }
      }
    } finally {
      // No await between the loop's last look at `pending` and this: a later outcome starts a loop.
      this.writing--;
    }
  }
}

/** Exponential backoff with jitter: base * 2^(attempt-1), capped, then scaled by a random 50-100%. */
export function retryDelayMs(attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return ceiling * (0.5 + random() / 2);
}

