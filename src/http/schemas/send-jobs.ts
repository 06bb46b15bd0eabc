import { RATE_PER_SECOND } from '../../jobs/jobs.ts';

/** Contract schemas of the list send job API, with our additions marked. */

const dateTime = { type: 'string', format: 'date-time' } as const;
const uuid = { type: 'string', format: 'uuid' } as const;
const status = { type: 'string', enum: ['pending', 'running', 'completed', 'failed', 'cancelled'] } as const;

export const CreateSendJobRequest = {
  type: 'object',
  required: ['list_id', 'subject'],
  properties: {
    tenant_id: uuid,
    list_id: uuid,
    name: { type: 'string', maxLength: 200 },
    subject: { type: 'string', minLength: 1, maxLength: 998 },
    body_html: { type: 'string' },
    body_text: { type: 'string' },
    template: {
      type: 'object',
      additionalProperties: true,
      description: 'Inline Liquid sources: {"subject"?, "html"?, "text"?}. Variables: email, subscriber_id, preferences, unsubscribe_url.',
    },
    scheduled_at: dateTime,
    window_start: dateTime,
    window_end: dateTime,
    tracking: { type: 'object', properties: { open: { type: 'boolean' }, click: { type: 'boolean' } } },
    // Ours:
    from: { type: 'string', format: 'email', maxLength: 254, description: 'Sender; defaults to DEFAULT_FROM_ADDRESS.' },
    pacing: { type: 'string', enum: ['fast', 'spread'], description: 'fast: as fast as the rate allows; spread: evenly across the window.' },
    rate_per_second: {
      type: 'number',
      minimum: RATE_PER_SECOND.min,
      maximum: RATE_PER_SECOND.max,
      description: "Overrides the tenant's maximum send rate for this job, in messages per second.",
    },
  },
  oneOf: [{ required: ['body_html'] }, { required: ['body_text'] }, { required: ['template'] }],
} as const;

export const CreateSendJobResponse = {
  type: 'object',
  required: ['send_job_id', 'status'],
  properties: { send_job_id: uuid, status },
} as const;

const count = { type: 'integer' } as const;

export const SendJob = {
  type: 'object',
  required: ['id', 'tenant_id', 'list_id', 'campaign_id', 'status'],
  properties: {
    id: uuid,
    tenant_id: uuid,
    list_id: uuid,
    campaign_id: uuid,
    status,
    scheduled_at: dateTime,
    window_start: dateTime,
    window_end: dateTime,
    // Ours:
    name: { type: ['string', 'null'] },
    status_reason: { type: ['string', 'null'], description: 'Why the job is cancelled, failed or held (e.g. the guardrail).' },
    pacing: { type: 'string' },
    rate_per_second: { type: ['number', 'null'] },
    tracking: { type: 'object', properties: { open: { type: 'boolean' }, click: { type: 'boolean' } } },
    created_at: dateTime,
    started_at: { ...dateTime, type: ['string', 'null'] },
    finished_at: { ...dateTime, type: ['string', 'null'] },
    counts: {
      type: 'object',
      properties: Object.fromEntries(
        ['total', 'queued', 'sent', 'delivered', 'bounced', 'complained', 'suppressed', 'expired', 'failed', 'cancelled', 'opened', 'clicked'].map((k) => [k, count]),
      ),
    },
  },
} as const;

export const SendJobStatusResponse = {
  type: 'object',
  required: ['id', 'status'],
  properties: { id: uuid, status },
} as const;
