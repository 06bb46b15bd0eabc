import { createRequire } from 'node:module';
import type { SendJobView } from '../jobs/jobs.ts';

// Loaded by the first bar: the bundle (bin/build.mjs) hoists a static import of an external package
// to its top, so the engine's `start` would load cli-progress too (docs/operations.md#memory).
const require = createRequire(import.meta.url);

const live = (j: SendJobView) => j.status === 'pending' || j.status === 'running';
const summary = (j: SendJobView) =>
  `${j.status}: ${j.counts.sent} sent, ${j.counts.delivered} delivered, ${j.counts.bounced} bounced, ${j.counts.failed} failed, ${j.counts.suppressed} suppressed, ${j.counts.queued} queued of ${j.counts.total}`;

/** A progress bar on a terminal (the CLI's one look: job watch, contact import, migrations). */
export const terminalBar = (out: NodeJS.WriteStream, format: string) => {
  const cliProgress = require('cli-progress') as typeof import('cli-progress');
  return new cliProgress.SingleBar({ format, stream: out, hideCursor: true }, cliProgress.Presets.shades_classic);
};

/**
 * Polls a send job until it ends: a progress bar with live counters on a terminal, a line per
 * change otherwise (logs, CI). Returns the last view.
 */
export async function watchJob(read: () => Promise<SendJobView>, intervalMs: number, out: NodeJS.WriteStream = process.stdout): Promise<SendJobView> {
  let job = await read();
  const bar = out.isTTY
    ? terminalBar(out, '{bar} {percentage}% | {value}/{total} | {status} | sent {sent} · failed {failed} · queued {queued}')
    : undefined;
  const done = (j: SendJobView) => j.counts.total - j.counts.queued;
  const payload = (j: SendJobView) => ({ status: j.status, sent: j.counts.sent, failed: j.counts.failed, queued: j.counts.queued });
  bar?.start(Math.max(job.counts.total, 1), done(job), payload(job));
  let last = '';
  for (;;) {
    if (bar) {
      bar.setTotal(Math.max(job.counts.total, 1));
      bar.update(done(job), payload(job));
    } else if (summary(job) !== last) {
      last = summary(job);
      out.write(`${new Date().toISOString()} ${last}\n`);
    }
    if (!live(job)) break;
    await new Promise((r) => setTimeout(r, intervalMs));
    job = await read();
  }
  bar?.stop();
  if (bar) out.write(`${summary(job)}${job.status_reason ? ` (${job.status_reason})` : ''}\n`);
  return job;
}
