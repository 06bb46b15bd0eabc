/** The package's public API. */
export { computeWebhookSignature, signWebhook, type SignWebhookOptions, type WebhookHeaders } from './lists/signature.ts';
