import { randomBytes } from 'node:crypto';
import os from 'node:os';
import pg from 'pg';
import type { Config } from '../config.ts';
import type { Db } from '../db/pool.ts';
import type { Logger } from '../log.ts';
import { WEBHOOK_CHANNEL } from './event-types.ts';
import { WebhookHttpClient, type Resolver } from './http-client.ts';
import { claimDeliveries, reclaimExpiredLeases, recordDeliveryOutcomes, retryDelay, type ClaimedDelivery, type DeliveryOutcome } from './queue.ts';
import { secretBoxFor, type SecretBox } from './secret-box.ts';
import { webhookHeaders } from './signing.ts';

const FLUSH_AFTER_MS = 20;
const RECLAIM_EVERY_MS = 1000;

interface EndpointLane {
  queue: ClaimedDelivery[];
  inFlight: number;
}

/**
 * The delivery worker: claims due deliveries in batches (round-robin over endpoints), sends them
 * with a per-endpoint and a global concurrency bound, and records outcomes in bulk. Each
 * endpoint has its own lane: a slow or failing endpoint holds at most its own few requests and
 * its own claim share, never another's. A NOTIFY from the fan-out trigger wakes it; otherwise it
 * polls.
 */
export class WebhookDeliverer {
  readonly workerId = `${os.hostname()}:${process.pid}:wh:${randomBytes(3).toString('hex')}`;
  private readonly client: WebhookHttpClient;
  private readonly box: SecretBox;
  private readonly lanes = new Map<string, EndpointLane>();
  private readonly secrets = new Map<string, string>();
  private held = 0;
  private inFlight = 0;
  private rotation = '00000000-0000-0000-0000-000000000000';
  private stopping = false;
  private loop?: Promise<void>;
  private wake?: () => void;
  /** A wake-up that came while the loop was busy: the next idle() returns at once. */
  private woken = false;
  private listener?: pg.Client;
  private outcomes: DeliveryOutcome[] = [];
  private flushTimer?: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();
  private lastReclaim = 0;
  private drained?: () => void;

  constructor(
    private readonly db: Db,
    private readonly databaseUrl: string,
    private readonly config: Pick<Config, 'webhooks' | 'secretsKey'>,
    private readonly log: Logger,
    options: { resolve?: Resolver } = {},
  ) {
    const w = config.webhooks;
    this.box = secretBoxFor(config);
    this.client = new WebhookHttpClient({ allowPrivate: w.allowPrivate, timeoutMs: w.timeoutMs, maxSocketsPerHost: w.endpointConcurrency, resolve: options.resolve });
  }

  async start(): Promise<void> {
    await this.listen();
    this.loop = this.run();
  }

  /** Stops claiming, finishes requests in flight, gives back what was claimed but not started. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.poke();
    await this.loop;
    const unstarted = [...this.lanes.values()].flatMap((l) => l.queue.splice(0));
    this.held -= unstarted.length;
    for (const d of unstarted) this.record({ id: d.id, eventId: d.eventId, kind: 'release' });
    if (this.inFlight) await new Promise<void>((resolve) => (this.drained = resolve));
    await this.flush();
    await this.listener?.end().catch(() => {});
    this.client.close();
  }

  private async listen() {
    const client = new pg.Client({ connectionString: this.databaseUrl, application_name: 'send-engine-webhooks' });
    client.on('notification', () => this.poke());
    client.on('error', (err) => this.log.warn({ err: err.message }, 'webhook listener lost; polling'));
    try {
      await client.connect();
      await client.query(`LISTEN ${WEBHOOK_CHANNEL}`);
      this.listener = client;
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'webhook listener unavailable; polling');
    }
  }

  private poke() {
    this.woken = true;
    this.wake?.();
  }

  private idle(ms: number): Promise<void> {
    if (this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        self.wake = undefined;
        self.woken = false;
        resolve();
      }
      this.wake = done;
    });
  }

  private get perEndpoint() {
    return this.config.webhooks.endpointConcurrency;
  }

  /** A lane holding this many or fewer deliveries asks for more. */
  private get refill() {
    return 2 * this.config.webhooks.endpointConcurrency;
  }

  private async run() {
    const w = this.config.webhooks;
    while (!this.stopping) {
      let claimed = 0;
      let wanted = 0;
      try {
        if (Date.now() - this.lastReclaim > RECLAIM_EVERY_MS) {
          this.lastReclaim = Date.now();
          await reclaimExpiredLeases(this.db);
        }
        // Hold at most four times the global bound; an endpoint holding more than twice its bound
        // (the refill mark) is not claimed for, and gets up to twice that per claim, so a lane
        // crosses the mark on its way down (settle pokes the loop then) and the slack covers the
        // claim's round trip: a fast endpoint's lane does not run dry while it is under way.
        wanted = Math.min(w.batchSize, 4 * w.concurrency - this.held);
        if (wanted > 0) {
          const skip = [...this.lanes].filter(([, l]) => l.queue.length + l.inFlight > this.refill).map(([id]) => id);
          const batch = await claimDeliveries(this.db, this.workerId, {
            limit: wanted,
            perEndpoint: 2 * this.refill,
            leaseSeconds: w.leaseSeconds,
            skipEndpoints: skip,
            after: this.rotation,
          });
          claimed = batch.length;
          if (batch.length) this.rotation = batch[batch.length - 1].endpointId;
          for (const d of batch) this.lane(d.endpointId).queue.push(d);
          this.held += batch.length;
          this.pump();
        }
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'webhook claim failed');
      }
      // A full claim means more may be due: go again at once. Otherwise wait for a NOTIFY, a
      // freed lane (see settle) or the poll.
      if (!(claimed > 0 && claimed === wanted) && !this.stopping) await this.idle(w.pollMs);
    }
  }

  private lane(endpointId: string): EndpointLane {
    let lane = this.lanes.get(endpointId);
    if (!lane) this.lanes.set(endpointId, (lane = { queue: [], inFlight: 0 }));
    return lane;
  }

  /** Starts requests while the global and per-endpoint bounds allow, visiting endpoints in turn. */
  private pump() {
    let started = true;
    while (started && this.inFlight < this.config.webhooks.concurrency && !this.stopping) {
      started = false;
      for (const lane of this.lanes.values()) {
        if (this.inFlight >= this.config.webhooks.concurrency) break;
        if (!lane.queue.length || lane.inFlight >= this.perEndpoint) continue;
        const delivery = lane.queue.shift()!;
        lane.inFlight++;
        this.inFlight++;
        started = true;
        void this.deliver(delivery).finally(() => this.settle(lane));
      }
    }
  }

  private settle(lane: EndpointLane) {
    lane.inFlight--;
    this.inFlight--;
    this.held--;
    // Ask for more when this lane drained to its refill mark or the worker to half of what it may hold.
    if (lane.queue.length + lane.inFlight === this.refill || this.held === 2 * this.config.webhooks.concurrency) this.poke();
    if (this.stopping && this.inFlight === 0) this.drained?.();
    this.pump();
  }

  private secret(sealed: Buffer): string {
    const key = sealed.toString('base64');
    let plain = this.secrets.get(key);
    if (plain === undefined) {
      plain = this.box.open(sealed);
      if (this.secrets.size > 10_000) this.secrets.clear();
      this.secrets.set(key, plain);
    }
    return plain;
  }

  private async deliver(d: ClaimedDelivery): Promise<void> {
    // Too close to the lease's end for a full timeout: give it back rather than risk two senders.
    if (Date.now() > d.leaseDeadline - this.config.webhooks.timeoutMs - 2000) {
      this.record({ id: d.id, eventId: d.eventId, kind: 'release' });
      return;
    }
    const base = { id: d.id, eventId: d.eventId };
    let secrets: string[];
    try {
      secrets = [this.secret(d.secretEnc), ...(d.oldSecretEnc ? [this.secret(d.oldSecretEnc)] : [])];
    } catch (err) {
      this.record({ ...base, kind: 'fail', status: null, latencyMs: null, excerpt: null, error: `cannot decrypt the endpoint secret: ${(err as Error).message}` });
      return;
    }
    try {
      const res = await this.client.post(d.url, webhookHeaders(secrets, d.eventId, d.body), d.body);
      if (res.status >= 200 && res.status < 300) {
        this.record({ ...base, kind: 'ok', status: res.status, latencyMs: res.latencyMs, excerpt: res.excerpt });
        return;
      }
      const answer = { ...base, status: res.status, latencyMs: res.latencyMs, excerpt: res.excerpt, error: `HTTP ${res.status}` };
      if (res.status === 410) {
        this.log.warn({ endpoint_id: d.endpointId }, 'webhook endpoint answered 410: disabled');
        this.record({ ...answer, kind: 'gone' });
        return;
      }
      const delay = retryDelay(d.attempt);
      const honoured = (res.status === 429 || res.status === 503) && res.retryAfterMs !== undefined ? res.retryAfterMs : delay;
      this.record(delay === undefined ? { ...answer, kind: 'fail' } : { ...answer, kind: 'retry', delayMs: honoured! });
    } catch (err) {
      const error = (err as Error).message.slice(0, 500);
      const delay = retryDelay(d.attempt);
      const answer = { ...base, status: null, latencyMs: null, excerpt: null, error };
      this.record(delay === undefined ? { ...answer, kind: 'fail' } : { ...answer, kind: 'retry', delayMs: delay });
    }
  }

  private record(outcome: DeliveryOutcome) {
    this.outcomes.push(outcome);
    if (this.outcomes.length >= this.config.webhooks.batchSize) void this.flush();
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
        await recordDeliveryOutcomes(this.db, this.workerId, outcomes);
      } catch (err) {
        this.log.error({ err: (err as Error).message, count: outcomes.length }, 'recording webhook outcomes failed; will retry');
        this.outcomes.unshift(...outcomes);
        this.flushTimer ??= setTimeout(() => void this.flush(), 1000);
      }
    });
    return this.flushing;
  }
}

/** The worker role's entry point (src/runtime.ts). */
export async function startWebhookDelivery(db: Db, databaseUrl: string, config: Pick<Config, 'webhooks' | 'secretsKey'>, log: Logger): Promise<WebhookDeliverer | undefined> {
  if (!config.secretsKey) {
    log.warn('outbound webhooks not delivered: set SECRETS_KEY (endpoint secrets are encrypted with it)');
    return undefined;
  }
  const deliverer = new WebhookDeliverer(db, databaseUrl, config, log);
  await deliverer.start();
  return deliverer;
}
