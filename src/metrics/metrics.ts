import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Db } from '../db/pool.ts';
import type { Transport } from '../transports/transport.ts';
import { TransportError } from '../transports/transport.ts';
import { scrapeFigures, type ScrapeFigures } from './queries.ts';

/**
 * The engine's Prometheus metrics (docs/metrics.md). Counters and histograms move as work happens
 * in this process (HTTP requests, transport sends); gauges about shared state (queue depth, oldest
 * queued message, webhook backlog, provider feedback) are read from PostgreSQL at scrape time by a
 * few cheap statements, cached briefly so several scrapers do not multiply them.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  private readonly httpDuration: Histogram<'method' | 'route'>;
  private readonly messages: Counter<'status' | 'transport'>;
  private readonly sendLatency: Histogram<'transport'>;
  private figures?: { at: number; value: Promise<ScrapeFigures> };

  constructor(private readonly db: Db, options: { cacheMs?: number } = {}) {
    const r = this.registry;
    const cacheMs = options.cacheMs ?? 5000;
    collectDefaultMetrics({ register: r, prefix: 'send_engine_' });
    this.httpRequests = new Counter({ name: 'send_engine_http_requests_total', help: 'HTTP requests answered, by route pattern and status', labelNames: ['method', 'route', 'status'], registers: [r] });
    this.httpDuration = new Histogram({
      name: 'send_engine_http_request_duration_seconds', help: 'HTTP request duration by route pattern', labelNames: ['method', 'route'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [r],
    });
    this.messages = new Counter({ name: 'send_engine_messages_total', help: 'Messages handed to a transport, by outcome (sent, retry, failed) and transport', labelNames: ['status', 'transport'], registers: [r] });
    this.sendLatency = new Histogram({
      name: 'send_engine_send_duration_seconds', help: 'Time one transport send took (SMTP transaction, SES call)', labelNames: ['transport'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [r],
    });

    const figures = () => {
      const now = Date.now();
      if (!this.figures || now - this.figures.at > cacheMs) this.figures = { at: now, value: scrapeFigures(this.db) };
      return this.figures.value;
    };
    const gauge = (name: string, help: string, labelNames: string[], read: (f: ScrapeFigures, g: Gauge<string>) => void) =>
      new Gauge({ name, help, labelNames, registers: [r], async collect() { read(await figures(), this); } });
    gauge('send_engine_queue_depth', 'Messages waiting in the outbox (status queued), all tenants', [], (f, g) => g.set(f.queued));
    gauge('send_engine_queue_oldest_age_seconds', 'Age of the oldest queued message (0 when none)', [], (f, g) => g.set(f.oldestQueuedSeconds));
    gauge('send_engine_queue_sending', 'Messages claimed by a dispatcher and being sent', [], (f, g) => g.set(f.sending));
    gauge('send_engine_webhook_deliveries', 'Outbound webhook deliveries by status (pending, delivering, succeeded, failed)', ['status'], (f, g) => {
      for (const [status, n] of Object.entries(f.webhookDeliveries)) g.set({ status }, n);
    });
    gauge('send_engine_webhook_oldest_pending_seconds', 'How long the most overdue pending webhook delivery has been due', [], (f, g) => g.set(f.webhookOldestDueSeconds));
    gauge('send_engine_feedback_events', 'Provider (SES/SNS) and tracking events recorded, all tenants, from the daily roll-ups', ['type'], (f, g) => {
      for (const [type, n] of Object.entries(f.events)) g.set({ type }, n);
    });
    new Gauge({
      name: 'send_engine_db_pool_connections', help: 'PostgreSQL pool connections of this process by state (total, idle, waiting clients)', labelNames: ['state'], registers: [r],
      collect() {
        this.set({ state: 'total' }, db.totalCount);
        this.set({ state: 'idle' }, db.idleCount);
        this.set({ state: 'waiting' }, db.waitingCount);
      },
    });
    // The p99 of event-loop delay since the last scrape (default metrics give min/mean/max too).
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    new Gauge({
      name: 'send_engine_event_loop_lag_p99_seconds', help: 'p99 event-loop delay since the previous scrape', registers: [r],
      collect() {
        this.set(loop.percentile(99) / 1e9);
        loop.reset();
      },
    });
  }

  /** Counts every answered request by its route pattern (never the raw URL: bounded label values). */
  instrumentHttp(app: FastifyInstance) {
    app.addHook('onResponse', async (request, reply) => {
      const route = request.routeOptions.url ?? 'unmatched';
      this.httpRequests.inc({ method: request.method, route, status: String(reply.statusCode) });
      this.httpDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
    });
  }

  /**
   * The transport, counting each send's outcome and timing it. It keeps `defersAcceptance`: without
   * it the dispatcher awaits each lane's outcome write before the next send instead of overlapping
   * them (the latency of a deferring transport's send then includes that wait).
   */
  instrumentTransport(transport: Transport): Transport {
    const { messages, sendLatency } = this;
    const name = transport.name;
    return {
      name,
      defersAcceptance: transport.defersAcceptance,
      async send(message, options) {
        const end = sendLatency.startTimer({ transport: name });
        try {
          const result = await transport.send(message, options);
          messages.inc({ status: 'sent', transport: name });
          return result;
        } catch (err) {
          messages.inc({ status: err instanceof TransportError && !err.permanent ? 'retry' : 'failed', transport: name });
          throw err;
        } finally {
          end();
        }
      },
      close: () => transport.close(),
    };
  }

  metrics() {
    return this.registry.metrics();
  }

  get contentType() {
    return this.registry.contentType;
  }
}
