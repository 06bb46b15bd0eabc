import type { Queryable } from '../db/pool.ts';
import { trackingHostFor } from '../domains/domains.ts';
import type { MessageToCompose } from '../sending/compose.ts';
import type { TrackingSettings } from '../tracking/links.ts';
import { unsubscribeUrl } from '../tracking/links.ts';
import { createLinkRewriter, type LinkRewriter } from '../tracking/rewrite.ts';
import { compileTemplate, type CompiledTemplate, type TemplateSource } from './template.ts';

interface PreparedJob {
  from: string;
  template: CompiledTemplate;
  tracking: TrackingSettings;
  rewriter: LinkRewriter | null;
}

export interface ListMessage {
  id: string;
  tenantId: string;
  recipient: string;
  list: { jobId: string; listId: string; subscriberId: string; preferences: Record<string, unknown> };
}

// Jobs whose template and link rewriter are kept compiled; a worker rarely runs more at once.
const CACHE_SIZE = 200;

/**
 * Turns a list job's message into a composed message for one recipient. Each job's template and
 * link rewriter are compiled once per worker and kept; rendering per recipient is then only
 * variable substitution and one pass over the HTML.
 */
export class JobRenderer {
  private readonly jobs = new Map<string, PreparedJob>();

  constructor(
    private readonly db: Queryable,
    private readonly tracking: TrackingSettings,
  ) {}

  /** Loads (in one query) the jobs of a batch not compiled yet. */
  async load(jobIds: Iterable<string>): Promise<void> {
    const missing = [...new Set(jobIds)].filter((id) => !this.jobs.has(id));
    if (!missing.length) return;
    const { rows } = await this.db.query<{
      id: string; from_address: string; template: TemplateSource; track_opens: boolean; track_clicks: boolean; tracking_host: string | null;
    }>(
      `SELECT id, from_address, template, track_opens, track_clicks, ${trackingHostFor('tenant_id', 'from_address')} AS tracking_host
         FROM send_jobs WHERE id = ANY($1::uuid[])`,
      [missing],
    );
    for (const row of rows) {
      if (this.jobs.size >= CACHE_SIZE) this.jobs.delete(this.jobs.keys().next().value!);
      // Links on the sender's own verified tracking host (a CNAME to us) rather than PUBLIC_BASE_URL.
      const tracking = row.tracking_host ? { ...this.tracking, baseUrl: `${new URL(this.tracking.baseUrl).protocol}//${row.tracking_host}` } : this.tracking;
      this.jobs.set(row.id, {
        from: row.from_address,
        template: compileTemplate(row.template),
        tracking,
        rewriter: row.track_opens || row.track_clicks ? createLinkRewriter(tracking, { open: row.track_opens, click: row.track_clicks }) : null,
      });
    }
  }

  render(message: ListMessage): MessageToCompose {
    const job = this.jobs.get(message.list.jobId);
    if (!job) throw new Error(`send job ${message.list.jobId} not loaded`);
    const unsubscribe = unsubscribeUrl(job.tracking, {
      tenantId: message.tenantId,
      listId: message.list.listId,
      subscriberId: message.list.subscriberId,
      messageId: message.id,
    });
    const out = job.template.render({
      email: message.recipient,
      subscriber_id: message.list.subscriberId,
      preferences: message.list.preferences,
      unsubscribe_url: unsubscribe,
    });
    return {
      id: message.id,
      recipient: message.recipient,
      from: job.from,
      subject: out.subject,
      html: out.html && job.rewriter ? job.rewriter.apply(out.html, message.id) : (out.html ?? null),
      text: out.text ?? null,
      headers: {},
      listUnsubscribe: { url: unsubscribe },
    };
  }
}
