/**
 * JSON Schemas of the contract (shared/spec/send-engine.openapi.yaml), used both to validate
 * requests and to publish /openapi.json. test/http/openapi.test.ts keeps them in step with it.
 */

export const ErrorResponse = {
  $id: 'ErrorResponse',
  type: 'object',
  required: ['error', 'message', 'request_id'],
  properties: {
    error: { type: 'string' },
    message: { type: 'string' },
    request_id: { type: 'string' },
    // RFC 7807 fields beside the contract's (src/http/errors.ts).
    type: { type: 'string', format: 'uri' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    instance: { type: 'string' },
  },
} as const;

const errorRef = { $ref: 'ErrorResponse#' } as const;

/** Error responses for the given statuses, all in the one error shape. */
export function errors(...statuses: number[]) {
  return Object.fromEntries(statuses.map((s) => [s, errorRef]));
}

const RateLimited = {
  type: 'object',
  required: ['error', 'message', 'request_id'],
  properties: { ...ErrorResponse.properties, retry_after: { type: 'integer' } },
} as const;

/** Error responses of bearer-authenticated routes: the given statuses, and 429 with retry_after. */
export function failures(...statuses: number[]) {
  return { ...errors(...statuses), 429: RateLimited };
}

const email = { type: 'string', format: 'email', maxLength: 254 } as const;

export const ListUnsubscribe = {
  type: 'object',
  required: ['url'],
  properties: {
    url: { type: 'string', format: 'uri', maxLength: 2048 },
    mailto: email,
  },
} as const;

export const MessageTags = {
  type: 'object',
  required: ['campaign_id', 'site_id', 'list_id', 'segment'],
  properties: {
    campaign_id: { type: 'string' },
    site_id: { type: 'string' },
    list_id: { type: 'string' },
    segment: { type: 'string' },
  },
} as const;

export const SubmitSendJobRequest = {
  type: 'object',
  required: ['message_type', 'from', 'to', 'subject', 'html', 'text', 'tags', 'idempotency_key'],
  properties: {
    message_type: { type: 'string', enum: ['newsletter', 'transactional'] },
    from: email,
    to: { type: 'array', items: email, minItems: 1, maxItems: 1000 },
    subject: { type: 'string', minLength: 1, maxLength: 998 },
    html: { type: 'string' },
    text: { type: 'string' },
    headers: { type: 'object', additionalProperties: { type: 'string' } },
    list_unsubscribe: ListUnsubscribe,
    tags: MessageTags,
    idempotency_key: { type: 'string', minLength: 1, maxLength: 255 },
    tenant_id: { type: 'string', format: 'uuid', description: 'Optional; must be the credential\'s tenant.' },
  },
} as const;

export const SubmitSendJobResponse = {
  type: 'object',
  required: ['job_id', 'status'],
  properties: {
    job_id: { type: 'string', format: 'uuid' },
    status: { type: 'string', enum: ['queued'] },
  },
} as const;
