import { generateKeyPair, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const generate = promisify(generateKeyPair);

export interface DkimKeyPair {
  selector: string;
  /** base64 DER SubjectPublicKeyInfo: the DNS record's p= tag. */
  publicKey: string;
  privateKeyPem: string;
}

/**
 * A fresh RSA-2048 key and a selector of ours: "se" + yyyymm + 6 random hex digits, so each
 * domain, tenant and rotation has its own DNS name and none can overwrite another's record.
 */
export async function newDkimKey(now = new Date()): Promise<DkimKeyPair> {
  const { publicKey, privateKey } = await generate('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'der' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const month = now.toISOString().slice(0, 7).replace('-', '');
  return {
    selector: `se${month}${randomBytes(3).toString('hex')}`,
    publicKey: (publicKey as Buffer).toString('base64'),
    privateKeyPem: privateKey as string,
  };
}

/** The DKIM TXT record's value for a public key (RFC 6376 section 3.6.1). */
export const dkimRecordValue = (publicKey: string) => `v=DKIM1; k=rsa; p=${publicKey}`;
