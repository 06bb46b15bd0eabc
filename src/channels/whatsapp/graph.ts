import type { Queryable } from '../../db/pool.ts';
import { TransportError } from '../../transports/transport.ts';
import type { WebhookHttpClient } from '../../webhooks/http-client.ts';
import type { ChannelSend, ChannelTransport } from '../types.ts';
import { resolveLine, type PlatformLine } from './line.ts';

/**
 * WhatsApp Cloud API sends: POST {WHATSAPP_GRAPH_BASE_URL}/{phone-number-id}/messages with the
 * line's bearer token (the tenant's own, else the platform's), through the SSRF-guarded client.
 * Answer 200 {messages: [{id: "wamid…"}]}. Rate limits (429, Graph codes 4, 80007, 130429, 131048,
 * 131056) and 5xx are retried; any other 4xx (bad template, outside the session window, a revoked
 * token) is the message's end.
 */
const RETRIED_CODES = new Set([4, 80007, 130429, 131048, 131056]);
const LINE_CACHE_MS = 30_000;

export class GraphApiTransport implements ChannelTransport {
  readonly name = 'whatsapp-cloud';
  private readonly lines = new Map<string, { until: number; line: Awaited<ReturnType<typeof resolveLine>> }>();

  constructor(
    private readonly db: Queryable,
    private readonly options: { baseUrl: string; secretsKey?: Buffer; platform: PlatformLine },
    private readonly client: WebhookHttpClient,
  ) {}

  private async line(tenantId: string) {
    const cached = this.lines.get(tenantId);
    if (cached && cached.until > Date.now()) return cached.line;
    const line = await resolveLine(this.db, this.options.secretsKey, tenantId, this.options.platform);
    this.lines.set(tenantId, { until: Date.now() + LINE_CACHE_MS, line });
    return line;
  }

  async send(message: ChannelSend): Promise<{ providerMessageId: string }> {
    const line = await this.line(message.tenantId);
    if (!line) throw new TransportError('whatsapp: no line configured for this account', true);
    const { template, body } = message.content;
    const phoneNumberId = message.content.phoneNumberId ?? line.phoneNumberId;
    const payload = template
      ? { messaging_product: 'whatsapp', recipient_type: 'individual', to: message.recipient.replace(/^\+/, ''), type: 'template',
          template: { name: template.name, language: { code: template.language }, ...(template.components ? { components: template.components } : {}) } }
      : { messaging_product: 'whatsapp', recipient_type: 'individual', to: message.recipient.replace(/^\+/, ''), type: 'text', text: { body } };
    let answer;
    try {
      answer = await this.client.post(
        `${this.options.baseUrl.replace(/\/+$/, '')}/${encodeURIComponent(phoneNumberId)}/messages`,
        { authorization: `Bearer ${line.accessToken}`, 'content-type': 'application/json' },
        JSON.stringify(payload),
      );
    } catch (err) {
      throw new TransportError(`whatsapp: ${(err as Error).message}`, false);
    }
    let json: { messages?: Array<{ id?: unknown }>; error?: { code?: number; message?: string } } = {};
    try {
      json = JSON.parse(answer.excerpt);
    } catch {
      // Judged by the status alone.
    }
    const id = json.messages?.[0]?.id;
    if (answer.status >= 200 && answer.status < 300 && typeof id === 'string') return { providerMessageId: id };
    const code = json.error?.code;
    const retried = answer.status === 429 || answer.status >= 500 || answer.status < 200 || (code !== undefined && RETRIED_CODES.has(code));
    throw new TransportError(`whatsapp: ${answer.status}${code ? ` code ${code}` : ''}${json.error?.message ? `: ${json.error.message.slice(0, 200)}` : ''}`, !retried);
  }

  async close() {
    this.client.close();
  }
}
