import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { Queryable } from '../db/pool.ts';
import { trackingHostFor } from '../domains/domains.ts';
import type { Logger } from '../log.ts';
import type { ComposedMessage, MessageSigner, MessageToCompose, Signing } from '../sending/compose.ts';
import type { TrackingSettings } from '../tracking/links.ts';
import { DomainError } from '../errors.ts';
import { TEMPLATE_LIMITS, type TemplateSource, type TemplateVariables } from './template.ts';

export interface ListMessage {
  id: string;
  tenantId: string;
  recipient: string;
  list: { jobId: string; listId: string; subscriberId: string; preferences: Record<string, unknown>; contact?: ContactFields };
}

/** A contact's own fields (API lists, src/lists/contacts.ts), for {{ contact.* }}. */
export interface ContactFields {
  first_name: string | null;
  last_name: string | null;
  properties: Record<string, unknown>;
}

/** What a render thread needs of a job to compile it once. */
export interface JobDefinition {
  id: string;
  from: string;
  template: TemplateSource;
  trackOpens: boolean;
  trackClicks: boolean;
  /** The sender's verified tracking host (a CNAME to us): links use it rather than PUBLIC_BASE_URL. */
  trackingHost: string | null;
  /** A campaign's Reply-To. */
  replyTo?: string | null;
}

/**
 * A chunk of one job's messages, as posted to a render thread (src/jobs/render-worker.ts). The
 * thread writes into `progress[0]` the 1-based index of the message it is rendering, so the caller
 * can time each render without a message per render.
 */
export interface RenderTask {
  messages: ListMessage[];
  progress: SharedArrayBuffer;
  job?: JobDefinition;
  /** Compose in the thread too (and DKIM-sign with this key): the raw bytes come back. */
  compose?: { signing: Signing | null };
}
export type RenderResult = { message: MessageToCompose } | { composed: ComposedMessage } | { failed: string };

/** One stored template rendered with a caller's variables (a preview, a transactional send). */
export interface TemplateRenderTask {
  template: TemplateSource;
  variables: TemplateVariables;
  strict: boolean;
  progress: SharedArrayBuffer;
}
export type RenderedTemplate = { subject: string; html?: string; text?: string };
export type TemplateRenderResult = { rendered: RenderedTemplate } | { failed: string; code: string };
export type RenderTaskResult = { results: RenderResult[] } | { missing: true };

/**
 * This message cannot be rendered (its job's template does not parse, a render limit, the render
 * time limit): permanent for the message, nothing to retry. The message says why.
 */
export class RenderFailure extends Error {
  constructor(reason: string) {
    super(`render_failed: ${reason}`);
  }
}

export interface RenderOptions {
  /** Render threads; default: defaultRenderThreads(). */
  threads?: number;
  /** Wall time a render may run before its thread is terminated from outside. */
  timeoutMs?: number;
}

/**
 * In the bundle (bin/build.mjs) the URL of the render threads' own bundled entry, plain JavaScript;
 * run from the sources it is not defined, and threads start on render-worker.mjs (through tsx).
 */
declare const RENDER_WORKER_BUNDLE: string | undefined;

// Jobs whose definitions the main thread keeps to hand to render threads.
const CACHE_SIZE = 200;
// Beyond Liquid's own render limit (checked between template nodes), a render stuck inside one
// node is stopped by terminating its thread.
const DEFAULT_TIMEOUT_MS = TEMPLATE_LIMITS.renderMs * 2;
// Messages of one job per task: a round trip to a thread costs far more than one render of a
// typical newsletter, so renders travel in chunks (measured in the hostile-render bench).
const CHUNK = 16;

interface Running {
  progress: Int32Array;
  seen: number;
  since: number;
  abort: AbortController;
}

interface Pending {
  message: ListMessage;
  resolve: (m: MessageToCompose & ComposedMessage) => void;
  reject: (err: Error) => void;
}

/**
 * The machine's cores less one (the main thread, which claims, sends and records, needs one), at
 * least 1 and at most 4. On 2 cores one render thread: a 20,000-member list send peaked at 136-140 MB
 * instead of 148-157 MB at the same unsigned rate, DKIM-signed about 7% slower (docs/operations.md#memory).
 */
export function defaultRenderThreads(cores = os.availableParallelism()): number {
  return Math.max(1, Math.min(4, cores - 1));
}

/**
 * Turns list jobs' messages into composed messages, in worker threads (piscina): tenant templates
 * never run on the event loop that serves the API, each render has a time limit enforced from
 * outside (the thread is terminated and replaced, the message fails, the rest of its chunk is
 * rendered again), and every thread keeps the jobs it compiled. Job definitions are loaded here,
 * one query per batch, and sent to a thread only when it has not compiled that job yet.
 */
export class JobRenderer {
  private readonly jobs = new Map<string, JobDefinition>();
  private pool?: Piscina;
  private readonly running = new Set<Running>();
  private closed = false;
  private watchdog?: NodeJS.Timeout;
  private readonly threads: number;
  private readonly timeoutMs: number;
  /** Where a render thread's crash outside any render is reported (the dispatcher sets its own). */
  log?: Logger;
  /** DKIM key and return path of a job's From domain, for composeMany (the dispatcher sets its own). */
  signer?: MessageSigner;

  constructor(
    private readonly db: Queryable,
    private readonly tracking: TrackingSettings,
    options: RenderOptions = {},
  ) {
    this.threads = options.threads ?? defaultRenderThreads();
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** Loads (in one query) the definitions of jobs not known yet. A database error throws. */
  async load(jobIds: Iterable<string>): Promise<void> {
    const missing = [...new Set(jobIds)].filter((id) => !this.jobs.has(id));
    if (!missing.length) return;
    const { rows } = await this.db.query<{
      id: string; from_address: string; template: TemplateSource; track_opens: boolean; track_clicks: boolean; tracking_host: string | null; reply_to: string | null;
    }>(
      `SELECT id, from_address, template, track_opens, track_clicks, reply_to, ${trackingHostFor('tenant_id', 'from_address')} AS tracking_host
         FROM send_jobs WHERE id = ANY($1::uuid[])`,
      [missing],
    );
    for (const row of rows) {
      if (this.jobs.size >= CACHE_SIZE) this.jobs.delete(this.jobs.keys().next().value!);
      this.jobs.set(row.id, { id: row.id, from: row.from_address, template: row.template, trackOpens: row.track_opens, trackClicks: row.track_clicks, trackingHost: row.tracking_host, replyTo: row.reply_to });
    }
  }

  /**
   * Starts rendering a batch's messages; each settles on its own, as its chunk comes back. A
   * promise rejects with RenderFailure when the message cannot be rendered (permanent); any other
   * error (the database, a render thread that cannot start) is the engine's, and worth a retry.
   * Every promise has a handler attached: one nobody awaits (shutdown) is no unhandled rejection.
   */
  renderMany(messages: ListMessage[]): Map<string, Promise<MessageToCompose>> {
    return this.start(messages, false);
  }

  /**
   * As renderMany, but the thread composes (and DKIM-signs) too and hands back the raw message:
   * what the dispatcher sends. The job's composer lives in the thread, so what is the same for
   * every recipient is built there once.
   */
  composeMany(messages: ListMessage[]): Map<string, Promise<ComposedMessage>> {
    return this.start(messages, true);
  }

  private start(messages: ListMessage[], compose: boolean): Map<string, Promise<MessageToCompose & ComposedMessage>> {
    const out = new Map<string, Promise<MessageToCompose & ComposedMessage>>();
    const byJob = new Map<string, Pending[]>();
    for (const message of messages) {
      const promise = new Promise<MessageToCompose & ComposedMessage>((resolve, reject) => {
        const list = byJob.get(message.list.jobId) ?? [];
        list.push({ message, resolve, reject });
        byJob.set(message.list.jobId, list);
      });
      promise.catch(() => {});
      out.set(message.id, promise);
    }
    void this.load(byJob.keys()).then(
      () => {
        for (const [jobId, pending] of byJob) {
          if (!this.jobs.has(jobId)) {
            for (const p of pending) p.reject(new RenderFailure(`send job ${jobId} not found`));
            continue;
          }
          for (let i = 0; i < pending.length; i += CHUNK) void this.runChunk(jobId, pending.slice(i, i + CHUNK), compose);
        }
      },
      (err) => {
        for (const pending of byJob.values()) for (const p of pending) p.reject(err);
      },
    );
    return out;
  }

  /** One message (see renderMany). */
  render(message: ListMessage): Promise<MessageToCompose> {
    return this.renderMany([message]).get(message.id)!;
  }

  /**
   * Renders one template with the caller's variables in a render thread, under the same time limit
   * as sends. Throws DomainError('invalid', 'missing_variable' | 'template_error', message).
   */
  async renderTemplate(template: TemplateSource, variables: TemplateVariables, options: { strict?: boolean } = {}): Promise<RenderedTemplate> {
    let result: TemplateRenderResult;
    try {
      result = (await this.dispatch((progress) => ({ template, variables, strict: options.strict ?? false, progress }) satisfies TemplateRenderTask)) as TemplateRenderResult;
    } catch (err) {
      if (err instanceof RenderStopped) throw new DomainError('invalid', 'template_error', `template: ${err.message}`);
      throw err;
    }
    if ('failed' in result) throw new DomainError('invalid', result.code, result.failed);
    return result.rendered;
  }

  private async runChunk(jobId: string, pending: Pending[], compose: boolean): Promise<void> {
    try {
      // Looked up per chunk (cached by the signer): a key rotated or a domain demoted applies within its cache time.
      const composeWith = compose ? { signing: (await this.signer?.signingFor(pending[0].message.tenantId, this.jobs.get(jobId)!.from)) ?? null } : undefined;
      let result = await this.run(pending, undefined, composeWith);
      if ('missing' in result) result = await this.run(pending, this.jobs.get(jobId), composeWith);
      if ('missing' in result) throw new Error('render thread did not take the job definition');
      result.results.forEach((r, i) => {
        if ('failed' in r) return pending[i].reject(new RenderFailure(r.failed));
        // Bytes cross the thread boundary as a plain Uint8Array: a Buffer again, without a copy.
        if ('composed' in r) return pending[i].resolve({ ...r.composed, raw: Buffer.from(r.composed.raw.buffer, r.composed.raw.byteOffset, r.composed.raw.byteLength) } as MessageToCompose & ComposedMessage);
        pending[i].resolve(r.message as MessageToCompose & ComposedMessage);
      });
    } catch (err) {
      if (!(err instanceof RenderStopped)) {
        for (const p of pending) p.reject(err as Error);
        return;
      }
      // The message that ran away (or took its thread down) fails; the others of the chunk are
      // rendered again on a fresh thread.
      pending[err.index].reject(new RenderFailure(err.message));
      const rest = pending.filter((_, i) => i !== err.index);
      if (rest.length) await this.runChunk(jobId, rest, compose);
    }
  }

  private run(pending: Pending[], job: JobDefinition | undefined, compose: RenderTask['compose']): Promise<RenderTaskResult> {
    return this.dispatch((progress) => ({ messages: pending.map((p) => p.message), progress, job, compose }) satisfies RenderTask) as Promise<RenderTaskResult>;
  }

  /** Runs one task in a render thread under the watchdog; RenderStopped names the item that ran away. */
  private async dispatch(task: (progress: SharedArrayBuffer) => RenderTask | TemplateRenderTask): Promise<unknown> {
    if (this.closed) throw new Error('renderer closed');
    const pool = (this.pool ??= this.createPool());
    const progress = new SharedArrayBuffer(4);
    // The clock of a render starts when the thread starts it, not while the chunk waits for a
    // thread (behind another tenant's slow render) or for a replaced thread to boot.
    const running: Running = { progress: new Int32Array(progress), seen: 0, since: 0, abort: new AbortController() };
    this.running.add(running);
    this.watchdog ??= setInterval(() => this.watch(), Math.max(10, Math.min(100, this.timeoutMs / 4))).unref();
    try {
      return await pool.run(task(progress), { signal: running.abort.signal });
    } catch (err) {
      if (running.abort.signal.aborted) throw new RenderStopped(running.seen - 1, `render exceeded ${this.timeoutMs} ms`);
      // Render errors come back as results: a throw while rendering is the thread dying under that
      // message (out of memory, a crash), which is the message's doing.
      const index = Atomics.load(running.progress, 0);
      if (index > 0) throw new RenderStopped(index - 1, `render thread died: ${(err as Error)?.message ?? String(err)}`);
      throw err;
    } finally {
      this.running.delete(running);
      if (!this.running.size) {
        clearInterval(this.watchdog);
        this.watchdog = undefined;
      }
    }
  }

  /** Terminates (through piscina's abort) a thread whose current render has run too long. */
  private watch() {
    const now = Date.now();
    for (const r of this.running) {
      const index = Atomics.load(r.progress, 0);
      if (index !== r.seen) {
        r.seen = index;
        r.since = now;
      } else if (index > 0 && now - r.since > this.timeoutMs) {
        r.abort.abort();
      }
    }
  }

  private createPool(): Piscina {
    const pool = new Piscina({
      filename: typeof RENDER_WORKER_BUNDLE === 'string' ? RENDER_WORKER_BUNDLE : fileURLToPath(new URL('./render-worker.mjs', import.meta.url)),
      minThreads: this.threads,
      maxThreads: this.threads,
      // Idle threads keep their compiled jobs.
      idleTimeout: Infinity,
      // Renders yield the CPU to the API's thread when both want it (Linux: per-thread nice, through
      // piscina's optional @napi-rs/nice; elsewhere ignored).
      niceIncrement: 10,
      workerData: { tracking: this.tracking },
      // A terminated thread's heap goes with it: a render that allocates without bound is capped here too.
      // A small young generation: renders make short-lived garbage, and V8's default (up to 48 MB a
      // thread) showed up as resident memory (list-send bench: peak RSS 365 -> 304 MB, 20,000 members).
      resourceLimits: { maxOldGenerationSizeMb: 256, maxYoungGenerationSizeMb: 8 },
    });
    // Errors of a render are the render's; this is a thread that died between renders (piscina replaces it).
    pool.on('error', (err: Error) => this.log?.error({ err: err.message }, 'render thread failed'));
    return pool;
  }

  /** Stops the render threads (any render still running is abandoned). */
  async close(): Promise<void> {
    this.closed = true;
    const pool = this.pool;
    this.pool = undefined;
    await pool?.destroy();
  }
}

/** A chunk's thread ended (terminated by us, or died) while rendering its message at `index`. */
class RenderStopped extends Error {
  constructor(
    readonly index: number,
    reason: string,
  ) {
    super(reason);
  }
}
