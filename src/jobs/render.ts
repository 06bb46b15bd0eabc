import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { Queryable } from '../db/pool.ts';
import type { Logger } from '../log.ts';
import type { MessageToCompose } from '../sending/compose.ts';
import type { TrackingSettings } from '../tracking/links.ts';
import { TEMPLATE_LIMITS, type TemplateSource } from './template.ts';

export interface ListMessage {
  id: string;
  tenantId: string;
  recipient: string;
  list: { jobId: string; listId: string; subscriberId: string; preferences: Record<string, unknown> };
}

/** What a render thread needs of a job to compile it once. */
export interface JobDefinition {
  id: string;
  from: string;
  template: TemplateSource;
  trackOpens: boolean;
  trackClicks: boolean;
}

/** One render, as posted to a render thread (src/jobs/render-worker.ts). */
export interface RenderTask {
  taskId: number;
  message: ListMessage;
  job?: JobDefinition;
}
export type RenderTaskResult = { message: MessageToCompose } | { failed: string } | { missing: true };

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
  /** Render threads; default: the machine's cores, at most 4. */
  threads?: number;
  /** Wall time a render may run before its thread is terminated from outside. */
  timeoutMs?: number;
}

// Jobs whose definitions the main thread keeps to hand to render threads.
const CACHE_SIZE = 200;
// Beyond Liquid's own render limit (checked between template nodes), a render stuck inside one
// node is stopped by terminating its thread.
const DEFAULT_TIMEOUT_MS = TEMPLATE_LIMITS.renderMs * 2;

/**
 * Turns a list job's message into a composed message for one recipient, in worker threads
 * (piscina): tenant templates never run on the event loop that serves the API, each render has a
 * time limit enforced from outside (the thread is terminated and replaced), and every thread keeps
 * the jobs it compiled. Job definitions are loaded here, one query per batch, and sent to a thread
 * only when it has not compiled that job yet.
 */
export class JobRenderer {
  private readonly jobs = new Map<string, JobDefinition>();
  private pool?: Piscina;
  private nextTaskId = 0;
  private readonly started = new Map<number, () => void>();
  private readonly threads: number;
  private readonly timeoutMs: number;
  /** Where a render thread's crash outside any render is reported (the dispatcher sets its own). */
  log?: Logger;

  constructor(
    private readonly db: Queryable,
    private readonly tracking: TrackingSettings,
    options: RenderOptions = {},
  ) {
    this.threads = options.threads ?? Math.max(1, Math.min(4, os.availableParallelism()));
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** Loads (in one query) the definitions of a batch's jobs not known yet. A database error throws. */
  async load(jobIds: Iterable<string>): Promise<void> {
    const missing = [...new Set(jobIds)].filter((id) => !this.jobs.has(id));
    if (!missing.length) return;
    const { rows } = await this.db.query<{ id: string; from_address: string; template: TemplateSource; track_opens: boolean; track_clicks: boolean }>(
      'SELECT id, from_address, template, track_opens, track_clicks FROM send_jobs WHERE id = ANY($1::uuid[])',
      [missing],
    );
    for (const row of rows) {
      if (this.jobs.size >= CACHE_SIZE) this.jobs.delete(this.jobs.keys().next().value!);
      this.jobs.set(row.id, { id: row.id, from: row.from_address, template: row.template, trackOpens: row.track_opens, trackClicks: row.track_clicks });
    }
  }

  /**
   * Renders one message. Throws RenderFailure when the message cannot be rendered (permanent);
   * any other error (a render thread that cannot start) is the engine's, and worth a retry.
   */
  async render(message: ListMessage): Promise<MessageToCompose> {
    const job = this.jobs.get(message.list.jobId);
    if (!job) {
      await this.load([message.list.jobId]);
      if (!this.jobs.has(message.list.jobId)) throw new RenderFailure(`send job ${message.list.jobId} not found`);
    }
    let result = await this.run({ taskId: 0, message });
    if ('missing' in result) result = await this.run({ taskId: 0, message, job: this.jobs.get(message.list.jobId) });
    if ('failed' in result) throw new RenderFailure(result.failed);
    if ('missing' in result) throw new Error('render thread did not take the job definition');
    return result.message;
  }

  private async run(task: RenderTask): Promise<RenderTaskResult> {
    const pool = (this.pool ??= this.createPool());
    const taskId = ++this.nextTaskId;
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    // The clock starts when the thread starts rendering, not while the task waits for a thread
    // (behind another tenant's slow render) or for a replaced thread to boot.
    this.started.set(taskId, () => {
      timer = setTimeout(() => abort.abort(), this.timeoutMs);
    });
    try {
      return (await pool.run({ ...task, taskId }, { signal: abort.signal })) as RenderTaskResult;
    } catch (err) {
      if (abort.signal.aborted) return { failed: `render exceeded ${this.timeoutMs} ms` };
      throw err;
    } finally {
      clearTimeout(timer);
      this.started.delete(taskId);
    }
  }

  private createPool(): Piscina {
    const pool = new Piscina({
      filename: fileURLToPath(new URL('./render-worker.mjs', import.meta.url)),
      minThreads: this.threads,
      maxThreads: this.threads,
      // Idle threads keep their compiled jobs.
      idleTimeout: Infinity,
      workerData: { tracking: this.tracking },
      // A terminated thread's heap goes with it: a render that allocates without bound is capped here too.
      resourceLimits: { maxOldGenerationSizeMb: 256 },
    });
    // Errors of a render are the render's; this is a thread that died between renders (piscina replaces it).
    pool.on('error', (err: Error) => this.log?.error({ err: err.message }, 'render thread failed'));
    pool.on('message', (m: { renderStarted?: number }) => {
      if (m?.renderStarted !== undefined) this.started.get(m.renderStarted)?.();
    });
    return pool;
  }

  /** Stops the render threads (any render still running is abandoned). */
  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.destroy();
  }
}
