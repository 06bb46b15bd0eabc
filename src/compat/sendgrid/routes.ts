import type { FastifyInstance } from 'fastify';
import { verifiedDomainRequired } from '../../domains/domains.ts';
import type { AppDeps } from '../../http/app.ts';
import { newId } from '../../ids.ts';
import { submitProxySendsTogether } from '../../sending/submit.ts';
import type { TemplateRenderer } from '../../templates/templates.ts';
import { sendGridErrorHandler, sendGridNotFound } from './errors.ts';
import { MailSendBody } from './schemas.ts';
import { toSendInputs, type MailSend } from './translate.ts';

// Attachments ride base64 in the body, as on POST /v1/send-jobs.
const SEND_BODY_LIMIT = 16 * 1024 * 1024;

/**
 * SendGrid's v3 mail send (`@sendgrid/mail` with `client.setDefaultRequest('baseUrl', ...)`), over
 * the native submit. Registered with the prefixes `/v3/mail` and `/compat/sendgrid/v3/mail`: only
 * SendGrid's own paths, never a `/v3` wildcard (Brevo's API lives under /v3 too).
 * docs/compat/sendgrid.md says what maps to what and what is refused.
 */
export async function sendGridRoutes(app: FastifyInstance, deps: AppDeps & { renderer: TemplateRenderer }) {
  const submitOptions = { idempotencyTtlHours: deps.config.idempotencyTtlHours, requireVerifiedDomain: verifiedDomainRequired(deps.config), renderer: deps.renderer };

  app.setErrorHandler(sendGridErrorHandler);
  app.setNotFoundHandler(sendGridNotFound);

  app.post<{ Body: MailSend }>(
    '/send',
    {
      config: { scope: 'send' },
      bodyLimit: SEND_BODY_LIMIT,
      schema: {
        tags: ['SendGrid compatibility'],
        summary: 'SendGrid: send mail (one send per personalization, all or none); 202 with X-Message-Id',
        security: [{ bearerAuth: [] }],
        body: MailSendBody,
        response: { 202: { type: 'null', description: 'Accepted; X-Message-Id is the first personalization\'s send (job) id' } },
      },
    },
    async (request, reply) => {
      const inputs = toSendInputs(request.body, `sendgrid:${newId()}`);
      // All or none: a personalization refused refuses the request, and nothing of it is queued.
      const jobIds = (await submitProxySendsTogether(deps.db, request.principal.tenantId, inputs, submitOptions)).map((r) => r.jobId);
      request.log.info({ job_ids: jobIds }, 'sendgrid mail accepted');
      return reply.code(202).header('X-Message-Id', jobIds[0]).send();
    },
  );
}
