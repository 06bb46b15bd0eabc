import { createRequire } from 'node:module';
import { workerData } from 'node:worker_threads';
import { MessageComposer, type MessageToCompose } from '../sending/compose.ts';
import { unsubscribeUrl, type TrackingSettings } from '../tracking/links.ts';
import { createLinkRewriter, type LinkRewriter } from '../tracking/rewrite.ts';
import { parseTemplate, type CompiledTemplate } from './template.ts';
import type { JobDefinition, ListMessage, RenderResult, RenderTask, RenderTaskResult, TemplateRenderResult, TemplateRenderTask } from './render.ts';
import { DomainError } from '../errors.ts';

// Runs in a render thread only: the compiled templates of tenant jobs live here, and a runaway
// render costs this thread (terminated from outside), never the event loop of the API.

interface PreparedJob {
  from: string;
  tracking: TrackingSettings;
  template: CompiledTemplate | { error: string };
  rewriter: LinkRewriter | null;
  /** What is the same for every recipient of the job's messages, built once in this thread. */
  composer: MessageComposer;
}

// Jobs kept compiled per thread; a worker rarely runs more at once.
const CACHE_SIZE = 200;
const jobs = new Map<string, PreparedJob>();
const tracking = (workerData as { tracking: TrackingSettings }).tracking;

// html-to-text is loaded on first use, by a stored template without a text part: list sends never
// need it, and it is about 7 MB of each render thread's memory (docs/operations.md#memory).
const require = createRequire(import.meta.url);
let htmlToText: typeof import('html-to-text').convert | undefined;

function prepare(job: JobDefinition): PreparedJob {
  let template: PreparedJob['template'];
  try {
    template = parseTemplate(job.template);
  } catch (err) {
    // Kept, so the job's other messages fail at once with the same reason instead of re-parsing.
    template = { error: (err as Error).message };
  }
  if (jobs.size >= CACHE_SIZE) jobs.delete(jobs.keys().next().value!);
  // Links on the sender's own verified tracking host (a CNAME to us) rather than PUBLIC_BASE_URL.
  const jobTracking = job.trackingHost ? { ...tracking, baseUrl: `${new URL(tracking.baseUrl).protocol}//${job.trackingHost}` } : tracking;
  const prepared = {
    from: job.from,
    tracking: jobTracking,
    template,
    rewriter: job.trackOpens || job.trackClicks ? createLinkRewriter(jobTracking, { open: job.trackOpens, click: job.trackClicks }) : null,
    // Reply-To (a campaign's reply_to) is the same for every recipient: a fixed field of the composer.
    composer: new MessageComposer(job.from, job.replyTo ? { 'Reply-To': job.replyTo } : {}),
  };
  jobs.set(job.id, prepared);
  return prepared;
}

function renderOne(job: PreparedJob & { template: CompiledTemplate }, message: ListMessage, compose: RenderTask['compose']): RenderResult {
  const unsubscribe = unsubscribeUrl(job.tracking, {
    tenantId: message.tenantId,
    listId: message.list.listId,
    subscriberId: message.list.subscriberId,
    messageId: message.id,
  });
  let out: { subject: string; html?: string; text?: string };
  try {
    out = job.template.render({
      email: message.recipient,
      subscriber_id: message.list.subscriberId,
      preferences: message.list.preferences,
      unsubscribe_url: unsubscribe,
      // Properties first: the contact's own fields win over a property of the same name.
      contact: {
        ...message.list.contact?.properties,
        email: message.recipient,
        first_name: message.list.contact?.first_name ?? null,
        last_name: message.list.contact?.last_name ?? null,
        preferences: message.list.preferences,
      },
    });
  } catch (err) {
    return { failed: (err as Error).message };
  }
  const content: MessageToCompose = {
    id: message.id,
    recipient: message.recipient,
    from: job.from,
    subject: out.subject,
    html: out.html && job.rewriter ? job.rewriter.apply(out.html, message.id) : (out.html ?? null),
    text: out.text ?? null,
    // Custom headers (a campaign's Reply-To) are the composer's fixed fields.
    headers: {},
    listUnsubscribe: { url: unsubscribe },
  };
  return compose ? { composed: job.composer.compose(content, compose.signing) } : { message: content };
}

/** One stored template with the caller's variables (not cached: previews and single sends). */
function renderTemplateTask(task: TemplateRenderTask): TemplateRenderResult {
  Atomics.store(new Int32Array(task.progress), 0, 1);
  try {
    const rendered = parseTemplate(task.template).render(task.variables, { strict: task.strict });
    // Only html given: the text part is the rendered html as text (links kept as `text [url]`).
    if (rendered.html && rendered.text === undefined) rendered.text = (htmlToText ??= (require('html-to-text') as typeof import('html-to-text')).convert)(rendered.html, { wordwrap: 78 });
    return { rendered };
  } catch (err) {
    return { failed: (err as Error)?.message ?? String(err), code: err instanceof DomainError ? err.code : 'template_error' };
  }
}

/** Renders a chunk of one job's messages, saying which one it is on (the caller times each). */
export function renderInWorker(task: RenderTask | TemplateRenderTask): RenderTaskResult | TemplateRenderResult {
  if ('template' in task) return renderTemplateTask(task);
  const jobId = task.messages[0].list.jobId;
  const job = jobs.get(jobId) ?? (task.job ? prepare(task.job) : undefined);
  // The definition travels only when this thread asks for it: most tasks carry the recipients alone.
  if (!job) return { missing: true };
  const { template } = job;
  if ('error' in template) return { results: task.messages.map(() => ({ failed: template.error })) };
  const progress = new Int32Array(task.progress);
  const ready = { ...job, template };
  return {
    results: task.messages.map((message, i) => {
      Atomics.store(progress, 0, i + 1);
      try {
        return renderOne(ready, message, task.compose);
      } catch (err) {
        // Whatever this message makes our code throw (link rewriting, a bad id) fails this message
        // with the reason; only a dying thread makes the task itself fail.
        return { failed: (err as Error)?.message ?? String(err) };
      }
    }),
  };
}

// A render thread's handler, as piscina calls it when the thread starts on the bundle (bin/build.mjs).
export default renderInWorker;
