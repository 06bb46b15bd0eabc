import { randomBytes } from 'node:crypto';
import { decryptSecret, encryptSecret } from '../secrets.ts';

/**
 * Endpoint signing secrets at rest, with the engine's one secrets key (SECRETS_KEY, see
 * src/secrets.ts: AES-256-GCM). The endpoint table keeps them as bytes.
 */
export class SecretBox {
  constructor(private readonly key: Buffer) {}

  seal(plain: string): Buffer {
    return Buffer.from(encryptSecret(this.key, plain, 'webhook endpoint secret'));
  }

  open(sealed: Buffer): string {
    return decryptSecret(this.key, sealed.toString(), 'webhook endpoint secret');
  }
}

/** The configuration's secrets key, or an error naming what to set. */
export function secretBoxFor(config: { secretsKey?: Buffer }): SecretBox {
  if (!config.secretsKey) throw new Error('outbound webhooks need SECRETS_KEY (or JWT_SECRET) to encrypt endpoint secrets');
  return new SecretBox(config.secretsKey);
}

/** A Standard Webhooks secret: `whsec_` + base64 of 32 random bytes. */
export const newSigningSecret = () => `whsec_${randomBytes(32).toString('base64')}`;
