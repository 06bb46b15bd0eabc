import type { FastifyInstance } from 'fastify';
import { verifiedDomainRequired } from '../../domains/domains.ts';
import { submitProxySend, type ProxySendRequest } from '../../sending/submit.ts';
import type { AppDeps } from '../app.ts';
import { assertActsFor } from '../plugins/auth.ts';
import { errors, SubmitSendJobRequest, SubmitSendJobResponse } from '../schemas.ts';

export async function proxySendRoutes(app: FastifyInstance, deps: AppDeps) {
  app.post<{ Body: ProxySendRequest }>(
    '/v1/send-jobs',
    {
      // Sends spend the send budget, not the API's per-minute request budget.
      config: { scope: 'send', rateBudget: 'send' },
      schema: {
        summary: 'Submit send job (sending proxy)',
        security: [{ bearerAuth: [] }],
        body: SubmitSendJobRequest,
        response: { 200: SubmitSendJobResponse, ...errors(400, 401, 403, 409, 422) },
      },
    },
    async (request) => {
      assertActsFor(request, request.body.tenant_id);
      const result = await submitProxySend(deps.db, request.principal.tenantId, request.body, {
        idempotencyTtlHours: deps.config.idempotencyTtlHours,
        requireVerifiedDomain: verifiedDomainRequired(deps.config),
      });
      request.log.info({ job_id: result.jobId, recipients: request.body.to.length, replayed: result.replayed }, 'proxy send accepted');
      return { job_id: result.jobId, status: 'queued' as const };
    },
  );
}
