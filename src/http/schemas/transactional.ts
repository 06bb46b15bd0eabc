import { ATTACHMENT_LIMITS } from '../../sending/attachments.ts';
import { MAX_SCHEDULE_DAYS } from '../../sending/submit.ts';
import { SubmitSendJobRequest, SubmitSendJobResponse } from '../schemas.ts';
import { Variables } from './templates.ts';

/** POST /v1/send-jobs: the contract's request plus the fields of complete transactional sends. */

const email = { type: 'string', format: 'email', maxLength: 254 } as const;
const MAX_COPIES = 50;

const additions = {
  cc: { type: 'array', items: email, maxItems: MAX_COPIES, description: 'Shown in every copy\'s Cc header; each address gets its own copy (message)' },
  bcc: { type: 'array', items: email, maxItems: MAX_COPIES, description: 'Each address gets its own copy; never in any header' },
  reply_to: { type: 'array', items: email, minItems: 1, maxItems: 10, description: 'Reply-To addresses' },
  attachments: {
    type: 'array',
    maxItems: ATTACHMENT_LIMITS.count,
    description: `At most ${ATTACHMENT_LIMITS.count}, ${ATTACHMENT_LIMITS.bytes} bytes each and ${ATTACHMENT_LIMITS.totalBytes} in all (decoded); the type is sniffed from the bytes; executables are refused (422 attachment_type_refused)`,
    items: {
      type: 'object',
      required: ['filename', 'content'],
      additionalProperties: false,
      properties: {
        filename: { type: 'string', minLength: 1, maxLength: 255 },
        content: { type: 'string', minLength: 1, description: 'Base64' },
        content_type: { type: 'string', maxLength: 255, description: 'Used when the bytes do not tell' },
      },
    },
  },
  template_id: { type: 'string', minLength: 1, maxLength: 100, description: 'A stored template (id or slug): subject, html and text come from its current version, rendered with `variables`; then give none of them' },
  variables: Variables,
  strict_variables: { type: 'boolean', description: 'A variable the template uses but `variables` lacks is a 422 missing_variable' },
  scheduled_at: { type: 'string', format: 'date-time', description: `Send at this time (at most ${MAX_SCHEDULE_DAYS} days ahead; a past time is now)` },
} as const;

const properties = { ...SubmitSendJobRequest.properties, ...additions };

/**
 * What /openapi.json shows: the contract's `required`, so contract clients see its schema
 * unchanged (test/http/openapi.test.ts). The API also accepts, as documented, a stored template
 * instead of subject/html/text and the Idempotency-Key header instead of `idempotency_key`.
 */
export const SendRequest = {
  ...SubmitSendJobRequest,
  description: 'With template_id, subject/html/text are left out; with an Idempotency-Key header, idempotency_key may be left out.',
  properties,
} as const;

/** What is validated: the same fields, with those two alternatives allowed (the handler checks the key). */
export const SendRequestAccepted = {
  type: 'object',
  required: ['message_type', 'from', 'to', 'tags'],
  properties,
  if: { not: { required: ['template_id'] } },
  then: { required: ['subject', 'html', 'text'] },
} as const;

export const idempotencyHeader = {
  type: 'object',
  properties: { 'idempotency-key': { type: 'string', minLength: 1, maxLength: 255, description: 'Alternative to the body\'s idempotency_key (both given: they must be equal)' } },
} as const;

export const MAX_BATCH = 100;

export const BatchRequest = {
  type: 'object',
  required: ['messages'],
  additionalProperties: false,
  properties: {
    messages: {
      type: 'array',
      minItems: 1,
      maxItems: MAX_BATCH,
      description: 'Each a POST /v1/send-jobs body, validated and accepted on its own. With an Idempotency-Key header, an item without idempotency_key uses "<header>:<index>"',
      items: { type: 'object' },
    },
  },
} as const;

export const BatchResponse = {
  type: 'object',
  required: ['data'],
  properties: {
    data: {
      type: 'array',
      items: {
        type: 'object',
        required: ['index', 'status'],
        properties: {
          index: { type: 'integer' },
          status: { type: 'string', enum: ['queued', 'failed'] },
          job_id: SubmitSendJobResponse.properties.job_id,
          error: {
            type: 'object',
            required: ['status', 'error', 'message'],
            properties: { status: { type: 'integer' }, error: { type: 'string' }, message: { type: 'string' } },
          },
        },
      },
    },
  },
} as const;

export const ScheduledMessage = {
  type: 'object',
  required: ['id', 'status', 'scheduled_at'],
  properties: { id: { type: 'string', format: 'uuid' }, status: { type: 'string' }, scheduled_at: { type: 'string', format: 'date-time' } },
} as const;

export const RescheduleRequest = {
  type: 'object',
  required: ['scheduled_at'],
  additionalProperties: false,
  properties: { scheduled_at: additions.scheduled_at },
} as const;
