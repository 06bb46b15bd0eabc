/** The package's public API. */
export { computeWebhookSignature, signWebhook, type SignWebhookOptions, type WebhookHeaders } from './lists/signature.ts';
export { createSendEngineClient, type SendEngineClient, type paths as SendEngineApiPaths, type components as SendEngineApiComponents } from './client/index.ts';
