import { access, constants, mkdir } from 'node:fs/promises';
import nodemailer from 'nodemailer';
import type { Config } from '../config.ts';
import type { Db } from '../db/pool.ts';
import { dnsChecker } from '../domains/dns-check.ts';
import { listDomains, verifyDomain } from '../domains/domains.ts';
import { listTenants } from '../tenants/tenants.ts';
import { captureDir } from '../transports/index.ts';

export interface Check {
  name: string;
  ok: boolean;
  /** What was found. */
  detail: string;
  /** How to fix it, when not ok. */
  fix?: string;
  /** A warning: worth a look, not a failure. */
  warn?: boolean;
}

const SKEW_WARN_MS = 2000;
const TRANSPORT_TIMEOUT_MS = 10_000;

/**
 * The database answers; its clock agrees with ours (signatures, windows and leases depend on it);
 * autovacuum runs (a warning when not).
 */
export async function checkDatabase(db: Db): Promise<Check[]> {
  const started = Date.now();
  const { rows } = await db.query<{ now: Date; version: string; autovacuum: string }>(
    `SELECT now() AS now, current_setting('server_version') AS version, current_setting('autovacuum') AS autovacuum`,
  );
  const local = (started + Date.now()) / 2;
  const skew = rows[0].now.getTime() - local;
  return [
    { name: 'database', ok: true, detail: `PostgreSQL ${rows[0].version} answers in ${Date.now() - started} ms` },
    Math.abs(skew) > SKEW_WARN_MS
      ? { name: 'clock', ok: false, detail: `this machine's clock is ${(skew / 1000).toFixed(1)} s ${skew > 0 ? 'behind' : 'ahead of'} the database's`, fix: 'run NTP (timedatectl set-ntp true, or chrony) on both machines: webhook signatures allow 300 s, leases and windows assume one time' }
      : { name: 'clock', ok: true, detail: `within ${Math.ceil(Math.abs(skew))} ms of the database's` },
    // Every send leaves old row versions of its message behind (claim, outcome); the claim reads
    // the outbox's due index past them until a vacuum reclaims them.
    rows[0].autovacuum === 'on'
      ? { name: 'vacuum', ok: true, detail: 'autovacuum is on' }
      : {
          name: 'vacuum', ok: true, warn: true,
          detail: 'autovacuum is off: the old row versions of sent messages pile up and each claim of the outbox reads past them, so a large send slows as it goes',
          fix: 'set autovacuum = on in postgresql.conf, or run VACUUM messages regularly (docs/operations.md#postgresql)',
        },
  ];
}

/** The transport: SMTP connects and answers EHLO (and AUTH when the URL has credentials); capture can write. */
export async function checkTransport(config: Config): Promise<Check> {
  const shown = config.transport.replace(/\/\/.*@/, '//***@');
  if (config.transport === 'capture') {
    const dir = captureDir(config);
    try {
      await mkdir(dir, { recursive: true });
      await access(dir, constants.W_OK);
      return { name: 'transport', ok: true, detail: `capture: messages are written to ${dir} (nothing leaves this machine)` };
    } catch (err) {
      return { name: 'transport', ok: false, detail: `capture folder ${dir} is not writable: ${(err as Error).message}`, fix: 'fix the permissions or set SEND_ENGINE_DATA_DIR' };
    }
  }
  if (config.transport === 'ses') {
    return { name: 'transport', ok: true, warn: true, detail: `Amazon SES in ${config.ses.region}${config.ses.endpoint ? ` at ${config.ses.endpoint}` : ''}: not contacted (doctor sends nothing to AWS)`, fix: 'check the AWS credentials with `aws sesv2 get-account`' };
  }
  const transporter = nodemailer.createTransport(config.transport, {});
  Object.assign((transporter as unknown as { options: Record<string, unknown> }).options, { connectionTimeout: TRANSPORT_TIMEOUT_MS, greetingTimeout: TRANSPORT_TIMEOUT_MS, socketTimeout: TRANSPORT_TIMEOUT_MS });
  try {
    await transporter.verify();
    return { name: 'transport', ok: true, detail: `${shown}: connected, EHLO answered${/\/\/[^@]+@/.test(config.transport) ? ', AUTH accepted' : ''}` };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { responseCode?: number };
    const fix = e.code === 'ECONNREFUSED' || /ECONNREFUSED/.test(e.message) ? 'nothing listens there: start the relay, or correct the host and port in SEND_ENGINE_TRANSPORT'
      : e.code === 'EAUTH' ? 'the relay refused the user name or password in SEND_ENGINE_TRANSPORT'
      : e.code === 'ETIMEDOUT' || e.code === 'ETIMEOUT' ? 'no answer in time: a firewall, or the wrong port (587 submission, 465 smtps://)'
      : e.code === 'ESOCKET' && /certificate|TLS|SSL/i.test(e.message) ? 'a TLS problem: use smtps:// for port 465, smtp:// for 587 (STARTTLS)'
      : 'check SEND_ENGINE_TRANSPORT';
    return { name: 'transport', ok: false, detail: `${shown}: ${e.message}`, fix };
  } finally {
    transporter.close();
  }
}

/** Each tenant's sending domains looked up in DNS now (the same check as `domain verify`), bounded. */
export async function checkDomains(db: Db, config: Config, max = 200): Promise<Check[]> {
  const ctx = { settings: config.domains, secretsKey: config.secretsKey };
  const checker = dnsChecker(config.domains.dnsServers);
  const checks: Check[] = [];
  for (const tenant of (await listTenants(db, { limit: 500 })).data) {
    const page = await listDomains(db, ctx, tenant.id, { limit: max });
    for (const d of page.data) {
      if (checks.length >= max) return checks;
      const v = await verifyDomain(db, ctx, checker, tenant.id, d.id);
      const bad = v.dns_records.filter((r) => r.required && r.status !== 'verified');
      checks.push(
        bad.length
          ? { name: `domain ${v.name}`, ok: false, detail: `${v.status} (tenant ${tenant.name}): ${bad.map((r) => `${r.type} ${r.name} ${r.status}${r.detail ? ` (${r.detail})` : ''}`).join('; ')}`, fix: `publish: ${bad.map((r) => `${r.type} ${r.name} "${r.priority !== undefined ? `${r.priority} ` : ''}${r.value.length > 60 ? `${r.value.slice(0, 60)}…` : r.value}"`).join(', ')} (all of them: send-engine domain list --tenant ${tenant.id})` }
          : { name: `domain ${v.name}`, ok: true, detail: `verified (tenant ${tenant.name})` },
      );
    }
  }
  if (!checks.length) checks.push({ name: 'domains', ok: true, warn: config.transport !== 'capture', detail: 'no sending domains yet', fix: config.transport !== 'capture' ? 'real mail goes out only from verified domains: send-engine domain add --tenant ID --name news.example.com' : undefined });
  return checks;
}
