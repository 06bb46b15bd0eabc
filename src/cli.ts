import { Command, InvalidArgumentError } from 'commander';
import { DEFAULT_SCOPES, parseScopes } from './auth/scopes.ts';
import { ApiKeyError, createApiKey, revokeApiKey, rotateApiKey, ROTATION_GRACE_HOURS, type IssuedKey } from './auth/api-keys.ts';
import { issueToken } from './auth/jwt.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { EmbeddedServerError } from './db/embedded.ts';
import { openDatabase } from './db/open.ts';
import { dnsChecker } from './domains/dns-check.ts';
import { createDomain, domainId, listDomains, verifyDomain, type DomainContext, type DomainView } from './domains/domains.ts';
import { DomainError } from './errors.ts';
import { resumeNewsletters } from './events/guardrail.ts';
import { UUID } from './events/types.ts';
import { createLogger, wantsPrettyLogs } from './log.ts';
import { oneLineError, startBanner } from './ui/terminal.ts';
import { startEngine, withEmbeddedDefaults, type Engine } from './runtime.ts';
import { createWebhookClient, retireOldSecret, rotateWebhookSecret } from './lists/webhook-clients.ts';
import { createTenant, tenantExists } from './tenants/tenants.ts';
import { listCaptured } from './transports/capture.ts';
import { captureDir } from './transports/index.ts';

const program = new Command('send-engine')
  .description('Self-hostable multi-tenant email sending engine')
  // A mistake is one line with what to do, not the whole help (subcommands inherit this).
  .configureOutput({ outputError: (text, write) => write(`${text.trim().split('\n')[0]} (add --help for usage)\n`) });

/** The scopes option: an unknown scope is a usage error naming the known ones. */
const scopesOption = (value: string) => {
  try {
    return parseScopes(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
};

async function config(): Promise<Config> {
  return withEmbeddedDefaults(loadConfig());
}

/**
 * Runs the engine until SIGINT, SIGTERM or SIGHUP (to the process or its group), then stops it gracefully
 * within SHUTDOWN_TIMEOUT_SECONDS. A second signal is logged and the stop goes on; a third exits at once.
 */
async function run(roles: { api: boolean; worker: boolean }) {
  const cfg = loadConfig();
  const logger = createLogger(cfg.logLevel, { pretty: wantsPrettyLogs() });
  let engine: Engine | undefined;
  let signals = 0;
  let stopping = false;
  const exitNow = (code: number) => {
    // The server then still shuts down cleanly on its own; in-flight outcomes may be lost.
    engine?.database.embedded?.stopNow();
    process.exit(code);
  };
  const shutdown = () => {
    if (!engine || !signals || stopping) return;
    stopping = true;
    engine.stop().then(
      () => process.exit(0),
      (err) => {
        logger.error({ err: (err as Error).message }, 'shutdown failed');
        exitNow(1);
      },
    );
  };
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      logger.info({ signal, timeout_seconds: cfg.shutdownTimeoutSeconds }, 'shutting down');
      setTimeout(() => {
        logger.error({ timeout_seconds: cfg.shutdownTimeoutSeconds }, 'shutdown did not finish in time (SHUTDOWN_TIMEOUT_SECONDS); exiting');
        exitNow(1);
      }, cfg.shutdownTimeoutSeconds * 1000);
      shutdown();
    } else if (signals === 2) {
      logger.warn({ signal }, 'already shutting down (finishing in-flight sends); a third signal exits at once');
    } else {
      logger.error({ signal }, 'third signal: exiting without finishing the shutdown');
      exitNow(1);
    }
  };
  // Installed before anything starts: a signal during start-up stops the engine once it is up.
  // SIGHUP too: closing the terminal should not leave the embedded server behind, untended.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);
  engine = await startEngine(cfg, roles, logger);
  if (process.stdout.isTTY) {
    const config = await withEmbeddedDefaults(cfg);
    console.log(startBanner(config, { ...roles, embeddedPort: engine.database.embedded?.port }));
  }
  shutdown();
}

/** Runs fn against the database (embedded or DATABASE_URL), then closes it. */
async function withDatabase<T>(cfg: Config, fn: (db: Awaited<ReturnType<typeof openDatabase>>['db']) => Promise<T>): Promise<T> {
  const database = await openDatabase(cfg, { poolSize: 2 });
  try {
    return await fn(database.db);
  } finally {
    await database.close();
  }
}

function requireSecret(cfg: Config): string {
  if (!cfg.jwt.secret) throw new ConfigError('issuing tokens needs JWT_SECRET (tokens for a JWKS are issued by its owner)');
  return cfg.jwt.secret;
}

const ttl = (value: string) => {
  if (!/^\d+\s*(s|m|h|d|w|y)$/.test(value)) throw new InvalidArgumentError('use a number and a unit, e.g. 1h, 30d');
  return value;
};

program.command('start').description('API and worker in one process (the default)').action(() => run({ api: true, worker: true }));
program.command('serve').description('HTTP API only').action(() => run({ api: true, worker: false }));
program.command('worker').description('dispatcher and scheduled jobs only').action(() => run({ api: false, worker: true }));
program
  .command('migrate')
  .description('apply database migrations and exit')
  .action(async () => {
    const { migrate } = await import('./db/migrate.ts');
    const { retryTransient } = await import('./db/transient.ts');
    const { terminalBar } = await import('./ui/job-watch.ts');
    // A bar on a terminal only: logs and CI get the one line below.
    const bar = process.stdout.isTTY ? terminalBar(process.stdout, 'migrations {bar} {value}/{total} {file}') : undefined;
    const database = await openDatabase(await config(), { poolSize: 2, migrate: false });
    try {
      const applied = await retryTransient('migrate', () =>
        migrate(database.db, {
          onProgress: (p) => {
            if (!bar) return;
            if (p.file === null) bar.start(Math.max(p.total, 1), 0, { file: '' });
            else bar.update(p.done, { file: p.file });
          },
        }),
      );
      bar?.stop();
      console.log(`migrations applied (${applied.length ? `${applied.length} changed: ${applied.join(', ')}` : 'none pending'})`);
    } finally {
      bar?.stop();
      await database.close();
    }
  });

const tenant = program.command('tenant').description('manage tenants');
tenant
  .command('create')
  .description('create a tenant and print a bearer token for it')
  .requiredOption('--name <name>', 'tenant name')
  .option('--ttl <ttl>', 'token lifetime', ttl, '30d')
  .option('--json', 'print one JSON line')
  .action(async (opts: { name: string; ttl: string; json?: boolean }) => {
    const cfg = await config();
    const secret = requireSecret(cfg);
    const created = await withDatabase(cfg, (db) => createTenant(db, opts.name));
    const token = await issueToken(secret, { tenantId: created.id, scopes: DEFAULT_SCOPES, ttl: opts.ttl, issuer: cfg.jwt.issuer, audience: cfg.jwt.audience });
    if (opts.json) console.log(JSON.stringify({ tenant_id: created.id, token }));
    else console.log(`tenant ${created.id} (${created.name})\ntoken: ${token}`);
  });
tenant
  .command('resume')
  .description('resume newsletter sending paused by the complaint/bounce guardrail')
  .requiredOption('--tenant <id>', 'tenant id')
  .action(async (opts: { tenant: string }) => {
    if (!UUID.test(opts.tenant)) throw new ConfigError('--tenant must be a tenant id (uuid)');
    const before = await withDatabase(await config(), (db) => resumeNewsletters(db, opts.tenant));
    if (!before) throw new ConfigError(`tenant ${opts.tenant} not found`);
    console.log(before.paused ? `tenant ${opts.tenant}: newsletter sending resumed (was paused: ${before.reason})` : `tenant ${opts.tenant}: newsletter sending was not paused`);
  });

program
  .command('token')
  .description('manage tokens')
  .command('issue')
  .description('print a bearer token for a tenant')
  .requiredOption('--tenant <id>', 'tenant id')
  .option('--scopes <list>', 'comma-separated scopes', scopesOption, DEFAULT_SCOPES)
  .option('--ttl <ttl>', 'token lifetime', ttl, '1h')
  .action(async (opts: { tenant: string; scopes: typeof DEFAULT_SCOPES; ttl: string }) => {
    const cfg = await config();
    const secret = requireSecret(cfg);
    if (!(await withDatabase(cfg, (db) => tenantExists(db, opts.tenant).catch(() => false)))) {
      throw new ConfigError(`tenant ${opts.tenant} not found`);
    }
    console.log(await issueToken(secret, { tenantId: opts.tenant, scopes: opts.scopes, ttl: opts.ttl, issuer: cfg.jwt.issuer, audience: cfg.jwt.audience }));
  });

// Member Center webhook clients. Secrets are printed once, here, and never logged.
const webhookClient = program.command('webhook-client').description('manage Member Center webhook clients');
webhookClient
  .command('create')
  .description('register a webhook client for a tenant and print its id and secret')
  .requiredOption('--tenant <id>', 'tenant id')
  .option('--json', 'print one JSON line')
  .action(async (opts: { tenant: string; json?: boolean }) => {
    const created = await withDatabase(await config(), async (db) => {
      if (!(await tenantExists(db, opts.tenant).catch(() => false))) throw new ConfigError(`tenant ${opts.tenant} not found`);
      return createWebhookClient(db, opts.tenant);
    });
    if (opts.json) console.log(JSON.stringify({ client_id: created.clientId, secret: created.secret }));
    else console.log(`webhook client ${created.clientId} (tenant ${created.tenantId})\nsecret: ${created.secret}`);
  });
webhookClient
  .command('rotate')
  .description('add a new secret; the previous one stays valid until `webhook-client retire`')
  .requiredOption('--client <id>', 'webhook client id')
  .option('--json', 'print one JSON line')
  .action(async (opts: { client: string; json?: boolean }) => {
    const rotated = await withDatabase(await config(), (db) =>
      rotateWebhookSecret(db, opts.client).catch((err: Error) => Promise.reject(new ConfigError(err.message))),
    );
    if (opts.json) console.log(JSON.stringify({ client_id: rotated.clientId, secret: rotated.secret }));
    else console.log(`webhook client ${rotated.clientId}: new secret (the previous one stays valid until retired)\nsecret: ${rotated.secret}`);
  });
webhookClient
  .command('retire')
  .description('end a rotation: only the newest secret stays valid')
  .requiredOption('--client <id>', 'webhook client id')
  .action(async (opts: { client: string }) => {
    await withDatabase(await config(), (db) => retireOldSecret(db, opts.client).catch((err: Error) => Promise.reject(new ConfigError(err.message))));
    console.log(`webhook client ${opts.client}: older secret retired`);
  });

// API keys: the secret is printed once, here; only its SHA-256 and prefix are stored.
const key = program.command('key').description('manage API keys (se_live_... / se_test_...)');
const printKey = (k: IssuedKey, json?: boolean, note = '') =>
  console.log(json ? JSON.stringify(k) : `key ${k.key_id} (${k.environment}, scopes: ${k.scopes.join(',')})${note}\nsecret: ${k.secret}`);
const asConfigError = (err: Error) => Promise.reject(err instanceof ApiKeyError ? new ConfigError(err.message) : err);
key
  .command('create')
  .description('create an API key for a tenant and print its secret once')
  .requiredOption('--tenant <id>', 'tenant id')
  .requiredOption('--scopes <list>', 'comma-separated scopes', scopesOption)
  .option('--name <name>', 'a label for the key', 'api key')
  .option('--test', 'a test key (lower rate limit)')
  .option('--json', 'print one JSON line')
  .action(async (opts: { tenant: string; scopes: ReturnType<typeof parseScopes>; name: string; test?: boolean; json?: boolean }) => {
    if (!UUID.test(opts.tenant)) throw new ConfigError('--tenant must be a tenant id (uuid)');
    const created = await withDatabase(await config(), (db) =>
      createApiKey(db, opts.tenant.toLowerCase(), opts.scopes, { environment: opts.test ? 'test' : 'live', name: opts.name }).catch(asConfigError),
    );
    printKey(created, opts.json);
  });
key
  .command('rotate')
  .description(`issue a new secret; the old one stays valid for ${ROTATION_GRACE_HOURS} h`)
  .requiredOption('--key <id>', 'key id')
  .option('--json', 'print one JSON line')
  .action(async (opts: { key: string; json?: boolean }) => {
    if (!UUID.test(opts.key)) throw new ConfigError('--key must be a key id (uuid)');
    const rotated = await withDatabase(await config(), (db) => rotateApiKey(db, opts.key).catch(asConfigError));
    printKey(rotated, opts.json, `; the previous secret expires at ${rotated.old_key_expires_at}`);
  });
key
  .command('revoke')
  .description('revoke a key at once')
  .requiredOption('--key <id>', 'key id')
  .action(async (opts: { key: string }) => {
    if (!UUID.test(opts.key)) throw new ConfigError('--key must be a key id (uuid)');
    await withDatabase(await config(), (db) => revokeApiKey(db, opts.key).catch(asConfigError));
    console.log(`key ${opts.key} revoked`);
  });

// Sending domains (docs/domains.md): the same functions as /v1/domains.
const domain = program.command('domain').description('manage sending domains (DKIM, return path, DNS verification)');
const domainContext = (cfg: Config): DomainContext => ({ settings: cfg.domains, secretsKey: cfg.secretsKey });
const asUsageError = (err: Error) => Promise.reject(err instanceof DomainError ? new ConfigError(err.message) : err);
const printDomain = (d: DomainView, json?: boolean) => {
  if (json) return console.log(JSON.stringify(d));
  console.log(`${d.name}  ${d.status}  (id ${d.id}, selector ${d.dkim_selector})${d.status_reason ? `\n  ${d.status_reason}` : ''}`);
  for (const r of d.dns_records) console.log(`  ${r.status.padEnd(17)} ${r.type.padEnd(5)} ${r.name}  ${r.priority !== undefined ? `${r.priority} ` : ''}${r.value}`);
};
domain
  .command('add')
  .description('add a sending domain and print the DNS records to publish')
  .requiredOption('--tenant <id>', 'tenant id')
  .requiredOption('--name <domain>', 'domain name, e.g. news.example.com')
  .option('--json', 'print one JSON line')
  .action(async (opts: { tenant: string; name: string; json?: boolean }) => {
    if (!UUID.test(opts.tenant)) throw new ConfigError('--tenant must be a tenant id (uuid)');
    const cfg = await config();
    printDomain(await withDatabase(cfg, (db) => createDomain(db, domainContext(cfg), opts.tenant, opts.name).catch(asUsageError)), opts.json);
  });
domain
  .command('verify')
  .description('look the domain\'s records up in DNS now (DNS_SERVERS) and print the outcome')
  .requiredOption('--tenant <id>', 'tenant id')
  .requiredOption('--domain <id or name>', 'the domain')
  .option('--json', 'print one JSON line')
  .action(async (opts: { tenant: string; domain: string; json?: boolean }) => {
    if (!UUID.test(opts.tenant)) throw new ConfigError('--tenant must be a tenant id (uuid)');
    const cfg = await config();
    const checked = await withDatabase(cfg, async (db) => {
      const id = await domainId(db, opts.tenant, opts.domain).catch(asUsageError);
      return verifyDomain(db, domainContext(cfg), dnsChecker(cfg.domains.dnsServers), opts.tenant, id);
    });
    printDomain(checked, opts.json);
    if (checked.status !== 'verified') process.exitCode = 2;
  });
domain
  .command('list')
  .description('list a tenant\'s sending domains, newest first')
  .requiredOption('--tenant <id>', 'tenant id')
  .option('--json', 'one JSON object per line')
  .action(async (opts: { tenant: string; json?: boolean }) => {
    if (!UUID.test(opts.tenant)) throw new ConfigError('--tenant must be a tenant id (uuid)');
    const cfg = await config();
    await withDatabase(cfg, async (db) => {
      let cursor: string | undefined;
      do {
        const page = await listDomains(db, domainContext(cfg), opts.tenant, { limit: 200, cursor });
        for (const d of page.data) printDomain(d, opts.json);
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
    });
  });

// Outbound webhook endpoints (docs/webhooks.md "Outbound webhooks"). The secret is printed once, here.
const webhook = program.command('webhook').description('manage outbound webhook endpoints');
const endpointId = (v: string) => {
  if (!UUID.test(v)) throw new InvalidArgumentError('must be an id (uuid)');
  return v.toLowerCase();
};
webhook
  .command('create')
  .description('register an endpoint for a tenant and print it with its signing secret')
  .requiredOption('--tenant <id>', 'tenant id', endpointId)
  .requiredOption('--url <url>', 'https URL the events are POSTed to')
  .option('--events <list>', 'comma-separated event types (default: all)')
  .option('--description <text>', 'a label')
  .option('--json', 'print one JSON line')
  .action(async (opts: { tenant: string; url: string; events?: string; description?: string; json?: boolean }) => {
    const { WEBHOOK_EVENT_TYPES } = await import('./webhooks/event-types.ts');
    const { createEndpoint } = await import('./webhooks/endpoints.ts');
    const { secretBoxFor } = await import('./webhooks/secret-box.ts');
    const types = opts.events?.split(',').map((t) => t.trim()).filter(Boolean);
    const unknown = types?.filter((t) => !(WEBHOOK_EVENT_TYPES as readonly string[]).includes(t)) ?? [];
    if (unknown.length) throw new ConfigError(`unknown event type(s): ${unknown.join(', ')}; known: ${WEBHOOK_EVENT_TYPES.join(', ')}`);
    const cfg = await config();
    const created = await withDatabase(cfg, async (db) => {
      if (!(await tenantExists(db, opts.tenant).catch(() => false))) throw new ConfigError(`tenant ${opts.tenant} not found`);
      return createEndpoint(db, secretBoxFor(cfg), opts.tenant, { url: opts.url, event_types: types as never, description: opts.description }, cfg.webhooks.allowPrivate)
        .catch((err: Error) => Promise.reject(new ConfigError(err.message)));
    });
    if (opts.json) console.log(JSON.stringify(created));
    else console.log(`webhook endpoint ${created.id} -> ${created.url} (${created.event_types?.join(',') ?? 'all events'})\nsecret: ${created.secret}`);
  });
webhook
  .command('list')
  .description("a tenant's endpoints, newest first")
  .requiredOption('--tenant <id>', 'tenant id', endpointId)
  .option('--json', 'one JSON object per line')
  .action(async (opts: { tenant: string; json?: boolean }) => {
    const { listEndpoints } = await import('./webhooks/endpoints.ts');
    const endpoints = await withDatabase(await config(), async (db) => {
      const all = [];
      let cursor: string | undefined;
      do {
        const page = await listEndpoints(db, opts.tenant, { limit: 200, cursor });
        all.push(...page.data);
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      return all;
    });
    for (const e of endpoints) {
      console.log(opts.json ? JSON.stringify(e) : `${e.id}  ${e.status}  ${e.url}  ${e.event_types?.join(',') ?? 'all events'}${e.disabled_reason ? `  (${e.disabled_reason})` : ''}`);
    }
    if (!endpoints.length && !opts.json) console.log('no webhook endpoints');
  });
webhook
  .command('disable')
  .description('stop delivering to an endpoint (what is owed resumes when it is enabled again through the API)')
  .requiredOption('--tenant <id>', 'tenant id', endpointId)
  .requiredOption('--endpoint <id>', 'endpoint id', endpointId)
  .action(async (opts: { tenant: string; endpoint: string }) => {
    const { updateEndpoint } = await import('./webhooks/endpoints.ts');
    const cfg = await config();
    await withDatabase(cfg, (db) =>
      updateEndpoint(db, opts.tenant, opts.endpoint, { status: 'disabled' }, cfg.webhooks.allowPrivate).catch((err: Error) => Promise.reject(new ConfigError(err.message))),
    );
    console.log(`webhook endpoint ${opts.endpoint} disabled`);
  });

program
  .command('inbox')
  .description('list messages captured by the capture transport, newest first')
  .option('--limit <n>', 'how many', (v) => Number.parseInt(v, 10), 20)
  .option('--json', 'one JSON object per line')
  .action(async (opts: { limit: number; json?: boolean }) => {
    const messages = await listCaptured(captureDir(loadConfig()), opts.limit);
    for (const m of messages) {
      console.log(opts.json ? JSON.stringify(m) : `${m.time.toISOString()}  ${m.to}  ${m.subject}  ${m.file}`);
    }
    if (!messages.length && !opts.json) console.log('no captured messages');
  });

// Operator checks (docs/operations.md "Troubleshooting"): what is wrong and how to fix it.
program
  .command('doctor')
  .description('check the database, the clock, the transport (connect, EHLO) and the DNS of every sending domain')
  .option('--json', 'one JSON object per check')
  .action(async (opts: { json?: boolean }) => {
    const { checkDatabase, checkDomains, checkTransport } = await import('./ui/doctor.ts');
    const { green, red, yellow, dim } = await import('./ui/terminal.ts');
    const cfg = await config();
    const checks = [];
    const print = (c: { name: string; ok: boolean; detail: string; fix?: string; warn?: boolean }) =>
      console.log(opts.json ? JSON.stringify(c) : `${c.ok ? (c.warn ? yellow('!') : green('✓')) : red('✗')} ${c.name.padEnd(10)} ${c.detail}${!c.ok || c.warn ? (c.fix ? `\n  ${dim('fix:')} ${c.fix}` : '') : ''}`);
    const transport = checkTransport(cfg);
    let database: Awaited<ReturnType<typeof openDatabase>> | undefined;
    try {
      database = await openDatabase(cfg, { poolSize: 2 });
    } catch (err) {
      checks.push({ name: 'database', ok: false, detail: oneLineError(err as Error).replace(/^error: /, ''), fix: cfg.databaseUrl ? 'check DATABASE_URL (host, port, user, password, database) and that the server runs' : `the embedded server under ${cfg.dataDir} did not start: see the message above` });
    }
    try {
      if (database) for (const c of await checkDatabase(database.db)) checks.push(c);
      checks.push(await transport);
      if (database) for (const c of await checkDomains(database.db, cfg)) checks.push(c);
    } finally {
      await database?.close();
    }
    for (const c of checks) print(c);
    const failed = checks.filter((c) => !c.ok);
    if (!opts.json) console.log(failed.length ? red(`${failed.length} problem(s) found`) : green('all checks passed'));
    if (failed.length) process.exitCode = 1;
  });

// Live counters of one send job until it ends.
program
  .command('job')
  .description('send jobs from the terminal')
  .command('watch')
  .description('follow a send job: live counters and a progress bar until it completes, fails or is cancelled')
  .argument('<id>', 'send job id', endpointId)
  .option('--interval <ms>', 'how often to look', (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 100) throw new InvalidArgumentError('use a whole number of milliseconds, at least 100');
    return n;
  }, 1000)
  .action(async (id: string, opts: { interval: number }) => {
    const { getSendJob, sendJobTenant } = await import('./jobs/jobs.ts');
    const { watchJob } = await import('./ui/job-watch.ts');
    const job = await withDatabase(await config(), async (db) => {
      const tenantId = await sendJobTenant(db, id);
      if (!tenantId) throw new ConfigError(`send job ${id} not found (ids are printed by POST /api/send-jobs and shown in the dashboard)`);
      return watchJob(() => getSendJob(db, tenantId, id), opts.interval);
    });
    if (job.status !== 'completed') process.exitCode = 1;
  });

// Contacts of an API list (docs/api.md "Lists and contacts"): the streamed import of POST /v1/lists/{id}/contacts/import.
program
  .command('contacts')
  .description('contacts of lists the API owns')
  .command('import')
  .description('import contacts from a CSV (header row) or JSON lines file into a list, streamed, with a progress bar on a terminal')
  .requiredOption('--tenant <id>', 'tenant id', endpointId)
  .requiredOption('--list <id>', 'list id', endpointId)
  .option('--format <format>', 'csv or jsonl (default: from the file name; .jsonl and .ndjson are JSON lines)')
  .argument('<file>', 'the file to import')
  .action(async (file: string, opts: { tenant: string; list: string; format?: string }) => {
    const { createReadStream } = await import('node:fs');
    const { stat } = await import('node:fs/promises');
    const { Transform } = await import('node:stream');
    const { startImport, runImport } = await import('./lists/import.ts');
    const { confirmationQueuer } = await import('./lists/double-opt-in.ts');
    const { terminalBar } = await import('./ui/job-watch.ts');
    const format = opts.format ?? (/\.(jsonl|ndjson)$/i.test(file) ? 'jsonl' : 'csv');
    if (format !== 'csv' && format !== 'jsonl') throw new ConfigError(`--format must be csv or jsonl, not ${format}`);
    let size: number;
    try {
      const st = await stat(file);
      if (!st.isFile()) throw new Error('not a file');
      size = st.size;
    } catch (err) {
      throw new ConfigError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
    }
    const cfg = await config();
    const result = await withDatabase(cfg, async (db) => {
      if (!(await tenantExists(db, opts.tenant).catch(() => false))) throw new ConfigError(`tenant ${opts.tenant} not found`);
      const importId = await startImport(db, opts.tenant, opts.list, format);
      // Progress is the share of the file read: rows are streamed, their number is known at the end.
      const bar = process.stdout.isTTY ? terminalBar(process.stdout, 'import {bar} {percentage}% | {value}/{total} bytes') : undefined;
      bar?.start(Math.max(size, 1), 0);
      let read = 0;
      const counted = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          read += chunk.length;
          bar?.update(read);
          done(null, chunk);
        },
      });
      const source = createReadStream(file);
      source.on('error', (err) => counted.destroy(err));
      try {
        return await runImport(db, opts.tenant, importId, opts.list, format, source.pipe(counted), confirmationQueuer(cfg.tracking, cfg.jobs.defaultFrom));
      } finally {
        bar?.stop();
      }
    });
    console.log(`import ${result.id} ${result.status}: ${result.rows_received} rows read, ${result.created} created, ${result.updated} updated, ${result.rows_invalid} invalid${result.kept_unsubscribed ? `, ${result.kept_unsubscribed} kept unsubscribed` : ''}${result.error ? ` (${result.error})` : ''}`);
    if (result.status !== 'completed') process.exitCode = 1;
  });

program.parseAsync().catch((err: Error) => {
  // One line, never a stack (SEND_ENGINE_DEBUG=1 shows it); known causes say what to do.
  const forOperator = err instanceof ConfigError || err instanceof InvalidArgumentError || err instanceof EmbeddedServerError || err instanceof DomainError || err instanceof ApiKeyError;
  console.error(forOperator ? `error: ${err.message}` : oneLineError(err));
  if (process.env.SEND_ENGINE_DEBUG === '1') console.error(err);
  process.exit(1);
});
