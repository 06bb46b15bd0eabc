import type { Db } from '../db/pool.ts';
import { defaultSender } from '../domains/domains.ts';
import { invalid } from '../errors.ts';
import { newId } from '../ids.ts';
import { submitProxySend } from '../sending/submit.ts';
import { getTemplateVersion, type TemplateRenderer } from './templates.ts';

export interface TemplateTestRequest {
  to: string;
  from?: string;
  variables?: Record<string, unknown>;
  strict?: boolean;
}

/**
 * POST /v1/templates/{id}/test: the current version sent to one address as a transactional send,
 * through the same path as POST /v1/send-jobs (outbox, suppression, verified sender, tracking of
 * template id and version). Tagged `campaign_id: "template-test"`.
 */
export async function sendTemplateTest(
  db: Db,
  renderer: TemplateRenderer,
  tenantId: string,
  idOrSlug: string,
  req: TemplateTestRequest,
  options: { idempotencyTtlHours: number; requireVerifiedDomain: boolean; defaultFrom?: string },
) {
  const template = await getTemplateVersion(db, tenantId, idOrSlug);
  const from = req.from ?? (await defaultSender(db, tenantId)) ?? options.defaultFrom;
  if (!from) throw invalid('from is required (or set the default sender with PATCH /v1/account {"default_from"}, or configure DEFAULT_FROM_ADDRESS)');
  const result = await submitProxySend(
    db,
    tenantId,
    {
      message_type: 'transactional',
      from,
      to: [req.to],
      template_id: template.template_id,
      variables: req.variables ?? {},
      strict_variables: req.strict ?? false,
      tags: { campaign_id: 'template-test', site_id: '', list_id: '', segment: '' },
      idempotency_key: `template-test:${newId()}`,
    },
    { ...options, renderer },
  );
  return { job_id: result.jobId, status: 'queued' as const, template_id: template.template_id, version: template.version };
}
