import type { FastifyInstance } from 'fastify';
import { verifiedDomainRequired } from '../../domains/domains.ts';
import { cancelSendJob, createSendJob, getSendJob, type CreateSendJobRequest } from '../../jobs/jobs.ts';
import type { AppDeps } from '../app.ts';
import { assertActsFor } from '../plugins/auth.ts';
import { errors } from '../schemas.ts';
import { CreateSendJobRequest as CreateSchema, CreateSendJobResponse, SendJob, SendJobStatusResponse } from '../schemas/send-jobs.ts';

const idParam = { type: 'object', required: ['id'], properties: { id: { type: 'string', format: 'uuid' } } } as const;

export async function sendJobRoutes(app: FastifyInstance, deps: AppDeps) {
  app.post<{ Body: CreateSendJobRequest }>(
    '/api/send-jobs',
    {
      config: { scope: 'jobs.manage' },
      schema: {
        summary: 'Create send job (legacy/internal)',
        security: [{ bearerAuth: [] }],
        body: CreateSchema,
        response: { 200: CreateSendJobResponse, ...errors(400, 401, 403, 409, 422) },
      },
    },
    async (request) => {
      assertActsFor(request, request.body.tenant_id);
      if (!deps.scheduler) throw new Error('send jobs need the job scheduler');
      const job = await createSendJob(deps.db, request.principal.tenantId, request.body, {
        from: deps.config.jobs.defaultFrom,
        requireVerifiedDomain: verifiedDomainRequired(deps.config),
      });
      await deps.scheduler.scheduleRun(job.id, job.startAt);
      request.log.info({ send_job_id: job.id, start_at: job.startAt }, 'send job created');
      return { send_job_id: job.id, status: 'pending' as const };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/send-jobs/:id',
    {
      config: { scope: 'jobs.manage' },
      schema: { summary: 'Get send job', security: [{ bearerAuth: [] }], params: idParam, response: { 200: SendJob, ...errors(401, 403, 404) } },
    },
    async (request) => getSendJob(deps.db, request.principal.tenantId, request.params.id),
  );

  app.post<{ Params: { id: string } }>(
    '/api/send-jobs/:id/cancel',
    {
      config: { scope: 'jobs.manage' },
      schema: { summary: 'Cancel send job', security: [{ bearerAuth: [] }], params: idParam, response: { 200: SendJobStatusResponse, ...errors(401, 403, 404, 409) } },
    },
    async (request) => {
      const { cancelledMessages } = await cancelSendJob(deps.db, request.principal.tenantId, request.params.id);
      request.log.info({ send_job_id: request.params.id, cancelled_messages: cancelledMessages }, 'send job cancelled');
      return { id: request.params.id, status: 'cancelled' as const };
    },
  );
}
