import { promises as dns } from 'node:dns';
import { domainAndParents } from './names.ts';
import type { ExpectedRecord, RecordCheck } from './records.ts';

/** Answers meaning "no such record": the owner has not published it (yet). */
const ABSENT: ReadonlySet<string> = new Set([dns.NODATA, dns.NOTFOUND]);

export interface DnsChecker {
  check(record: ExpectedRecord, absentStatus: 'pending' | 'failed'): Promise<RecordCheck>;
}

/** A resolver on DNS_SERVERS (or the system's), short timeouts: checks run in requests and jobs. */
export function dnsChecker(servers: string[]): DnsChecker {
  const resolver = new dns.Resolver({ timeout: 2_000, tries: 2 });
  if (servers.length) resolver.setServers(servers);
  const clean = (host: string) => host.toLowerCase().replace(/\.$/, '');

  /** TXT strings of a name, each record's chunks joined (a DKIM key spans several 255-byte strings). */
  const txt = async (name: string) => (await resolver.resolveTxt(name)).map((chunks) => chunks.join(''));

  async function lookup(record: ExpectedRecord): Promise<RecordCheck> {
    switch (record.purpose) {
      case 'dkim': {
        const found = await txt(record.name);
        const ours = record.value.replace(/^.*p=/, '');
        const keys = found.map((v) => /(?:^|;)\s*p=([^;]*)/.exec(v)?.[1]?.replace(/\s+/g, '')).filter((p) => p !== undefined);
        if (keys.includes(ours)) return { status: 'verified', detail: 'the published key is ours' };
        if (!keys.length) return { status: 'failed', detail: 'a TXT record is there but holds no DKIM key (p=)' };
        return { status: 'failed', detail: 'the published p= is not the key we generated; copy the value again' };
      }
      case 'return_path': {
        const mx = await resolver.resolveMx(record.name);
        if (mx.some((m) => clean(m.exchange) === clean(record.value))) return { status: 'verified', detail: `MX ${record.value}` };
        return { status: 'failed', detail: `MX points to ${mx.map((m) => m.exchange).join(', ') || 'nothing'}, expected ${record.value}` };
      }
      case 'spf': {
        const spf = (await txt(record.name)).filter((v) => /^v=spf1(\s|$)/i.test(v.trim()));
        if (!spf.length) return { status: 'failed', detail: 'TXT records are there but none starts with v=spf1' };
        if (spf.length > 1) return { status: 'failed', detail: 'several SPF records: receivers treat that as an error (RFC 7208 4.5); keep one' };
        const terms = spf[0].toLowerCase().split(/\s+/);
        const missing = record.value.split(/\s+/).slice(1, -1).filter((m) => !terms.includes(m.toLowerCase()));
        if (missing.length) return { status: 'failed', detail: `the SPF record lacks ${missing.join(' ')}` };
        return { status: 'verified', detail: 'SPF authorizes us' };
      }
      case 'dmarc': {
        // Receivers fall back to the organizational domain's policy: a parent's record counts.
        const domain = record.name.replace(/^_dmarc\./, '');
        for (const candidate of domainAndParents(domain)) {
          const found = await txt(`_dmarc.${candidate}`).catch((err: NodeJS.ErrnoException) => {
            if (ABSENT.has(err.code ?? '')) return [];
            throw err;
          });
          if (found.some((v) => /^v=DMARC1\s*(;|$)/i.test(v.trim()))) return { status: 'verified', detail: `DMARC policy at _dmarc.${candidate}` };
        }
        throw Object.assign(new Error('no DMARC record'), { code: dns.NOTFOUND });
      }
      case 'tracking': {
        const targets = await resolver.resolveCname(record.name);
        if (targets.some((t) => clean(t) === clean(record.value))) return { status: 'verified', detail: `CNAME ${record.value}` };
        return { status: 'failed', detail: `CNAME points to ${targets.join(', ')}, expected ${record.value}` };
      }
    }
  }

  return {
    async check(record, absentStatus) {
      try {
        return await lookup(record);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'error';
        if (ABSENT.has(code)) return { status: absentStatus, detail: `not found in DNS (${code})` };
        // SERVFAIL, timeouts, refused: the answer may differ in a minute.
        return { status: 'temporary_failure', detail: `DNS lookup failed (${code}); will retry` };
      }
    },
  };
}
