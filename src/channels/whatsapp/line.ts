import type { Queryable } from '../../db/pool.ts';
import { DomainError, invalid } from '../../errors.ts';
import { decryptSecret, encryptSecret } from '../../secrets.ts';

/** The platform's default line (WHATSAPP_PHONE_NUMBER_ID / WHATSAPP_ACCESS_TOKEN). */
export interface PlatformLine {
  phoneNumberId?: string;
  accessToken?: string;
}

export interface LineView {
  whatsappPhoneNumberId: string | null;
  hasAccessToken: boolean;
  usesPlatformDefault: boolean;
  platformLineConfigured: boolean;
}

const PHONE_NUMBER_ID = /^\d{1,32}$/;
const context = (tenantId: string) => `whatsapp-line:${tenantId}`;

export async function getLine(db: Queryable, tenantId: string, platform: PlatformLine): Promise<LineView> {
  const { rows } = await db.query<{ phone_number_id: string | null; access_token_enc: string | null }>(
    'SELECT phone_number_id, access_token_enc FROM whatsapp_lines WHERE tenant_id = $1',
    [tenantId],
  );
  const row = rows[0];
  return {
    whatsappPhoneNumberId: row?.phone_number_id ?? null,
    hasAccessToken: Boolean(row?.access_token_enc),
    usesPlatformDefault: !row?.phone_number_id,
    platformLineConfigured: Boolean(platform.phoneNumberId && platform.accessToken),
  };
}

export interface LinePatch {
  whatsappPhoneNumberId?: string | null;
  whatsappAccessToken?: string | null;
}

/** Sets or clears (null) the tenant's line; the token is sealed with SECRETS_KEY, bound to the tenant. */
export async function patchLine(db: Queryable, key: Buffer | undefined, tenantId: string, patch: LinePatch, platform: PlatformLine): Promise<LineView> {
  if (patch.whatsappPhoneNumberId === undefined && patch.whatsappAccessToken === undefined) {
    throw invalid('give whatsappPhoneNumberId and/or whatsappAccessToken');
  }
  if (patch.whatsappPhoneNumberId && !PHONE_NUMBER_ID.test(patch.whatsappPhoneNumberId)) {
    throw invalid('whatsappPhoneNumberId must be the digits of a Meta phone number id', 'invalid_phone_number_id');
  }
  if (patch.whatsappAccessToken && !key) throw new DomainError('invalid', 'secrets_unavailable', 'SECRETS_KEY is not configured');
  const sealed = patch.whatsappAccessToken ? encryptSecret(key!, patch.whatsappAccessToken, context(tenantId)) : patch.whatsappAccessToken;
  try {
    await db.query(
      `INSERT INTO whatsapp_lines (tenant_id, phone_number_id, access_token_enc) VALUES ($1, $3, $5)
       ON CONFLICT (tenant_id) DO UPDATE
         SET phone_number_id = CASE WHEN $2 THEN EXCLUDED.phone_number_id ELSE whatsapp_lines.phone_number_id END,
             access_token_enc = CASE WHEN $4 THEN EXCLUDED.access_token_enc ELSE whatsapp_lines.access_token_enc END,
             updated_at = now()`,
      [tenantId, patch.whatsappPhoneNumberId !== undefined, patch.whatsappPhoneNumberId ?? null, patch.whatsappAccessToken !== undefined, sealed ?? null],
    );
  } catch (err) {
    if ((err as { code?: string }).code === '23505') {
      throw new DomainError('conflict', 'WHATSAPP_PHONE_NUMBER_ID_IN_USE', 'this phone number id is bound to another account');
    }
    throw err;
  }
  return getLine(db, tenantId, platform);
}

/** The line a tenant's messages leave from, with its token: its own, else the platform's. */
export async function resolveLine(db: Queryable, key: Buffer | undefined, tenantId: string, platform: PlatformLine): Promise<{ phoneNumberId: string; accessToken: string } | undefined> {
  const { rows } = await db.query<{ phone_number_id: string | null; access_token_enc: string | null }>(
    'SELECT phone_number_id, access_token_enc FROM whatsapp_lines WHERE tenant_id = $1',
    [tenantId],
  );
  const own = rows[0];
  const phoneNumberId = own?.phone_number_id ?? platform.phoneNumberId;
  const accessToken = own?.access_token_enc && key ? decryptSecret(key, own.access_token_enc, context(tenantId)) : platform.accessToken;
  return phoneNumberId && accessToken ? { phoneNumberId, accessToken } : undefined;
}
