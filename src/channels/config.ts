/**
 * SMS and WhatsApp settings (docs/configuration.md "SMS and WhatsApp"), read by loadConfig.
 */
export interface ChannelSettings {
  sms: {
    /** smpp://system_id:password@host:port, or http(s)://ACCOUNT_SID:AUTH_TOKEN@host (Twilio-shaped); unset: SMS sends answer 422. */
    provider?: { kind: 'smpp'; url: string; systemId: string; password: string } | { kind: 'http'; baseUrl: string; accountSid: string; authToken: string };
    /** ?token= of the DLR and inbound opt-out callbacks; unset: those routes answer 404. */
    webhookToken?: string;
    /** HMAC-SHA256 key of the provider status callback; unset: that route answers 404. */
    providerWebhookSecret?: string;
    otpValiditySeconds: number;
    maxSegments: number;
  };
  whatsapp: {
    graphBaseUrl: string;
    phoneNumberId?: string;
    accessToken?: string;
    verifyToken?: string;
    appSecret?: string;
  };
  /** Provider URLs may be private/loopback addresses (an on-premises SMS gateway, tests). */
  providerAllowPrivate: boolean;
}

type Env = Record<string, string | undefined>;

export class ChannelConfigError extends Error {}

const str = (env: Env, name: string) => (env[name] === undefined || env[name] === '' ? undefined : env[name]);

function positive(env: Env, name: string, fallback: number): number {
  const raw = str(env, name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new ChannelConfigError(`${name} must be an integer >= 1, got "${raw}"`);
  return n;
}

function secret(env: Env, name: string, min = 16): string | undefined {
  const value = str(env, name);
  if (value !== undefined && value.length < min) throw new ChannelConfigError(`${name} must be at least ${min} characters`);
  return value;
}

function smsProvider(env: Env): ChannelSettings['sms']['provider'] {
  const raw = str(env, 'SMS_PROVIDER_URL');
  if (!raw) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ChannelConfigError('SMS_PROVIDER_URL must be an smpp:// or http(s):// URL');
  }
  const user = decodeURIComponent(url.username);
  const pass = decodeURIComponent(url.password);
  if (url.protocol === 'smpp:' || url.protocol === 'ssmpp:') {
    if (!user) throw new ChannelConfigError('SMS_PROVIDER_URL (smpp) must carry system_id[:password]@');
    return { kind: 'smpp', url: `${url.protocol}//${url.host}`, systemId: user, password: pass };
  }
  if (url.protocol === 'http:' || url.protocol === 'https:') {
    if (!user || !pass) throw new ChannelConfigError('SMS_PROVIDER_URL (http) must carry ACCOUNT_SID:AUTH_TOKEN@');
    return { kind: 'http', baseUrl: `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`, accountSid: user, authToken: pass };
  }
  throw new ChannelConfigError('SMS_PROVIDER_URL must be an smpp://, ssmpp://, http:// or https:// URL');
}

export function channelSettings(env: Env): ChannelSettings {
  return {
    sms: {
      provider: smsProvider(env),
      webhookToken: secret(env, 'SMS_WEBHOOK_TOKEN'),
      providerWebhookSecret: secret(env, 'SMS_PROVIDER_WEBHOOK_SECRET'),
      otpValiditySeconds: positive(env, 'SMS_OTP_VALIDITY_SECONDS', 300),
      maxSegments: positive(env, 'SMS_MAX_SEGMENTS', 10),
    },
    whatsapp: {
      graphBaseUrl: str(env, 'WHATSAPP_GRAPH_BASE_URL') ?? 'https://graph.facebook.com/v21.0',
      phoneNumberId: str(env, 'WHATSAPP_PHONE_NUMBER_ID'),
      accessToken: str(env, 'WHATSAPP_ACCESS_TOKEN'),
      verifyToken: secret(env, 'WHATSAPP_VERIFY_TOKEN', 8),
      appSecret: secret(env, 'WHATSAPP_APP_SECRET'),
    },
    providerAllowPrivate: str(env, 'PROVIDER_ALLOW_PRIVATE') === 'true',
  };
}
