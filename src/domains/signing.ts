import type { Queryable } from '../db/pool.ts';
import { decryptSecret } from '../secrets.ts';
import type { MessageSigner, Signing } from '../sending/compose.ts';
import { TransportError } from '../transports/transport.ts';
import { addressDomain, domainAndParents } from './names.ts';

interface Entry {
  signing: Signing | null;
  expires: number;
}

/** How long a lookup is reused: a demoted or deleted domain stops signing within this. */
const CACHE_MS = 30_000;
const MAX_ENTRIES = 10_000;

/**
 * Picks the DKIM key and return path for a message by its From domain: the tenant's verified
 * domain that is the From domain or its nearest parent, with its active key (decrypted once and
 * cached). A From domain that is not verified gets neither (the send-time check refuses such mail
 * when REQUIRE_VERIFIED_DOMAIN holds).
 */
export class DomainSigner implements MessageSigner {
  private readonly cache = new Map<string, Entry>();

  constructor(
    private readonly db: Queryable,
    private readonly secretsKey: Buffer,
  ) {}

  async signingFor(tenantId: string, from: string): Promise<Signing | null> {
    const domain = addressDomain(from);
    if (!domain) return null;
    const cacheKey = `${tenantId} ${domain}`;
    const hit = this.cache.get(cacheKey);
    if (hit && hit.expires > Date.now()) return hit.signing;
    const signing = await this.lookup(tenantId, domain).catch((err: Error) => {
      // Retried like a connection error: a database blip or a wrong SECRETS_KEY must not fail mail for good.
      throw new TransportError(`DKIM key lookup for ${domain} failed: ${err.message}`, false);
    });
    if (this.cache.size >= MAX_ENTRIES) this.cache.clear();
    this.cache.set(cacheKey, { signing, expires: Date.now() + CACHE_MS });
    return signing;
  }

  private async lookup(tenantId: string, domain: string): Promise<Signing | null> {
    const { rows } = await this.db.query<{ name: string; return_path: string; selector: string; id: string; private_key_enc: string }>(
      `SELECT d.name, d.return_path, k.selector, k.id, k.private_key_enc
         FROM sending_domains d JOIN domain_dkim_keys k ON k.domain_id = d.id AND k.state = 'active'
        WHERE d.tenant_id = $1 AND d.name = ANY($2)
          AND (d.status = 'verified' OR (d.status = 'temporary_failure' AND d.verified_at IS NOT NULL))
        ORDER BY length(d.name) DESC LIMIT 1`,
      [tenantId, domainAndParents(domain)],
    );
    const row = rows[0];
    if (!row) return null;
    return {
      dkim: { domainName: row.name, keySelector: row.selector, privateKey: decryptSecret(this.secretsKey, row.private_key_enc, row.id) },
      envelopeFrom: `bounce@${row.return_path}`,
    };
  }
}
