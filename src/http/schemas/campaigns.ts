/** Schemas of /v1/campaigns (src/jobs/campaigns.ts). */

import { RATE_PER_SECOND } from '../../jobs/jobs.ts';
import { CAMPAIGN_STATUSES } from '../../jobs/status.ts';
import { Pagination, pageQuery } from '../read-api.ts';

const uuid = { type: 'string', format: 'uuid' } as const;
const dateTime = { type: 'string', format: 'date-time' } as const;
const nullableDateTime = { type: ['string', 'null'], format: 'date-time' } as const;
const email = { type: 'string', format: 'email', maxLength: 254 } as const;
const count = { type: 'integer', minimum: 0 } as const;

const fields = {
  name: { type: 'string', minLength: 1, maxLength: 200 },
  list_id: uuid,
  template_id: { ...uuid, description: 'a stored template (its newest version at schedule time); or subject with html and/or text' },
  subject: { type: 'string', minLength: 1, maxLength: 998 },
  html: { type: 'string', maxLength: 2_000_000 },
  text: { type: 'string', maxLength: 2_000_000 },
  from: email,
  reply_to: email,
  scheduled_at: dateTime,
  window_start: dateTime,
  window_end: dateTime,
  tracking: { type: 'object', additionalProperties: false, properties: { open: { type: 'boolean' }, click: { type: 'boolean' } } },
  rate_per_second: { type: 'number', minimum: RATE_PER_SECOND.min, maximum: RATE_PER_SECOND.max },
} as const;

export const CreateCampaignRequest = { type: 'object', required: ['name', 'list_id'], additionalProperties: false, properties: fields } as const;
export const UpdateCampaignRequest = { type: 'object', additionalProperties: false, minProperties: 1, properties: fields } as const;
export const ScheduleCampaignRequest = { type: 'object', additionalProperties: false, properties: { scheduled_at: dateTime } } as const;
export const SendTestRequest = { type: 'object', required: ['to'], additionalProperties: false, properties: { to: email } } as const;
export const SendTestResponse = { type: 'object', required: ['job_id', 'status'], properties: { job_id: uuid, status: { type: 'string', enum: ['queued'] } } } as const;

const COUNTERS = ['total', 'queued', 'sent', 'delivered', 'opened', 'clicked', 'unsubscribed', 'bounced', 'hard_bounced', 'complained', 'failed'] as const;

export const Campaign = {
  type: 'object',
  required: ['id', 'send_job_id', 'name', 'list_id', 'status', 'subject', 'from', 'scheduled_at', 'tracking', 'created_at', 'updated_at'],
  properties: {
    id: uuid,
    send_job_id: uuid,
    name: { type: ['string', 'null'] },
    list_id: uuid,
    status: { type: 'string', enum: [...CAMPAIGN_STATUSES] },
    status_reason: { type: ['string', 'null'] },
    template_id: { type: ['string', 'null'], format: 'uuid' },
    subject: { type: 'string' },
    html: { type: ['string', 'null'] },
    text: { type: ['string', 'null'] },
    from: { type: 'string' },
    reply_to: { type: ['string', 'null'] },
    scheduled_at: nullableDateTime,
    window_start: nullableDateTime,
    window_end: nullableDateTime,
    tracking: { type: 'object', required: ['open', 'click'], properties: { open: { type: 'boolean' }, click: { type: 'boolean' } } },
    rate_per_second: { type: ['number', 'null'] },
    created_at: dateTime,
    updated_at: dateTime,
    started_at: nullableDateTime,
    paused_at: nullableDateTime,
    finished_at: nullableDateTime,
    counters: {
      type: 'object',
      required: [...COUNTERS],
      description: 'messages by outcome; sent counts all handed to a transport, bounced includes hard_bounced',
      properties: Object.fromEntries(COUNTERS.map((k) => [k, count])),
    },
  },
} as const;

export const CampaignPage = { type: 'object', required: ['data', 'pagination'], properties: { data: { type: 'array', items: Campaign }, pagination: Pagination } } as const;

export const CampaignsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { limit: pageQuery.limit, cursor: pageQuery.cursor, status: { type: 'string', enum: [...CAMPAIGN_STATUSES] }, search: { type: 'string', minLength: 1, maxLength: 200 } },
} as const;

export const CampaignParams = { type: 'object', required: ['id'], properties: { id: uuid } } as const;
