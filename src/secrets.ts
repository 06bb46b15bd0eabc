import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface LocalSecrets {
  jwtSecret: string;
  pgPassword: string;
  /** Encrypts secrets at rest (SECRETS_KEY); absent in files written before it existed. */
  secretsKey?: string;
}

/**
 * Secrets for embedded mode, generated on first use and kept in `<dataDir>/secrets.json`
 * (mode 0600) so tokens and the database survive restarts. Production sets JWT_SECRET instead.
 */
export async function loadLocalSecrets(dataDir: string): Promise<LocalSecrets> {
  const file = path.join(dataDir, 'secrets.json');
  try {
    return JSON.parse(await readFile(file, 'utf8')) as LocalSecrets;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(dataDir, { recursive: true });
  const secrets: LocalSecrets = {
    jwtSecret: randomBytes(32).toString('base64url'),
    pgPassword: randomBytes(18).toString('base64url'),
    secretsKey: randomBytes(32).toString('base64'),
  };
  // 'wx' so two processes starting at once cannot overwrite each other's secrets.
  try {
    await writeFile(file, JSON.stringify(secrets, null, 2), { mode: 0o600, flag: 'wx' });
    return secrets;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return JSON.parse(await readFile(file, 'utf8')) as LocalSecrets;
  }
}

// ---- Secrets at rest (DKIM private keys, and any other secret a module stores) ----

/** SECRETS_KEY's fallback: a key derived from JWT_SECRET, so a configured engine always has one. */
export function deriveSecretsKey(jwtSecret: string): Buffer {
  return Buffer.from(hkdfSync('sha256', jwtSecret, 'send-engine', 'secrets-at-rest', 32));
}

const VERSION = 'v1';

/**
 * AES-256-GCM with a fresh 96-bit nonce: "v1.<nonce>.<tag>.<ciphertext>" (base64url parts).
 * `context` (e.g. a row id) is bound as associated data, so a ciphertext copied to another row
 * does not decrypt.
 */
export function encryptSecret(key: Buffer, plaintext: string, context = ''): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(context));
  const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return [VERSION, iv, cipher.getAuthTag(), data].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
}

/** The inverse of encryptSecret; throws when the key, the context or the ciphertext is wrong. */
export function decryptSecret(key: Buffer, sealed: string, context = ''): string {
  const [version, iv, tag, data] = sealed.split('.');
  if (version !== VERSION || !iv || !tag || data === undefined) throw new Error('not an encrypted secret');
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
  decipher.setAAD(Buffer.from(context));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString('utf8');
}

/** Constant-time equality of a configured secret and a presented one (hashed first: equal lengths, no length leak). */
export function secretMatches(expected: string | undefined, given: string | undefined): boolean {
  if (!expected || typeof given !== 'string') return false;
  const digest = (v: string) => createHash('sha256').update(v).digest();
  return timingSafeEqual(digest(expected), digest(given));
}
