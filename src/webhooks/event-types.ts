/**
 * The outbound webhook vocabulary, declared once. Migration 010's webhook_event_types() mirrors
 * WEBHOOK_EVENT_TYPES (test/webhooks/endpoints.test.ts keeps them equal); the statuses mirror the
 * CHECKs of webhook_endpoints and webhook_deliveries.
 */
export const WEBHOOK_EVENT_TYPES = [
  'message.sent',
  'message.delivered',
  'message.delivery_delayed',
  'message.bounced',
  'message.complained',
  'message.opened',
  'message.clicked',
  'message.failed',
  'message.suppressed',
  'subscription.unsubscribed',
  'suppression.created',
  'suppression.deleted',
  'send_job.started',
  'send_job.completed',
  'send_job.failed',
  'send_job.cancelled',
  // SMS and WhatsApp (src/channels; migration 021 replaces webhook_event_types()).
  'sms.sent',
  'sms.delivered',
  'sms.failed',
  'sms.opt_out',
  'whatsapp.sent',
  'whatsapp.delivered',
  'whatsapp.read',
  'whatsapp.failed',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

export const ENDPOINT_STATUSES = ['enabled', 'disabled'] as const;
export type EndpointStatus = (typeof ENDPOINT_STATUSES)[number];

/** pending: owed (maybe retrying); delivering: claimed by a worker; succeeded; failed: retries exhausted or endpoint gone. */
export const DELIVERY_STATUSES = ['pending', 'delivering', 'succeeded', 'failed'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** NOTIFY channel the fan-out trigger (migration 010) signals when it queues deliveries. */
export const WEBHOOK_CHANNEL = 'send_engine_webhooks';
