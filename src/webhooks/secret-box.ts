import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/**
 * Endpoint signing secrets at rest: AES-256-GCM under a key derived (HKDF-SHA256) from
 * WEBHOOK_SECRET_KEY, or from JWT_SECRET when that is unset (embedded mode: the generated one in
 * the data folder). Stored as version byte | 12-byte IV | 16-byte tag | ciphertext.
 */
export class SecretBox {
  private readonly key: Buffer;

  constructor(material: string) {
    this.key = Buffer.from(hkdfSync('sha256', material, 'send-engine', 'webhook endpoint secrets v1', 32));
  }

  seal(plain: string): Buffer {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return Buffer.concat([Buffer.from([1]), iv, cipher.getAuthTag(), body]);
  }

  open(sealed: Buffer): string {
    if (sealed[0] !== 1) throw new Error('unknown secret encoding');
    const decipher = createDecipheriv('aes-256-gcm', this.key, sealed.subarray(1, 13));
    decipher.setAuthTag(sealed.subarray(13, 29));
    return Buffer.concat([decipher.update(sealed.subarray(29)), decipher.final()]).toString('utf8');
  }
}

/** The key material of the configuration, or an error naming what to set. */
export function secretBoxFor(config: { webhooks: { secretKey?: string }; jwt: { secret?: string } }): SecretBox {
  const material = config.webhooks.secretKey ?? config.jwt.secret;
  if (!material) throw new Error('outbound webhooks need WEBHOOK_SECRET_KEY (or JWT_SECRET) to encrypt endpoint secrets');
  return new SecretBox(material);
}

/** A Standard Webhooks secret: `whsec_` + base64 of 32 random bytes. */
export const newSigningSecret = () => `whsec_${randomBytes(32).toString('base64')}`;
