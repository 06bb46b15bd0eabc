import { Command, InvalidArgumentError } from 'commander';
import { DEFAULT_SCOPES, parseScopes } from './auth/scopes.ts';
import { ApiKeyError, createApiKey, revokeApiKey, rotateApiKey, ROTATION_GRACE_HOURS, type IssuedKey } from './auth/api-keys.ts';
import { issueToken } from './auth/jwt.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { openDatabase } from './db/open.ts';
import { resumeNewsletters } from './events/guardrail.ts';
import { UUID } from './events/types.ts';
import { startEngine, withEmbeddedDefaults, type Engine } from './runtime.ts';
import { createWebhookClient, retireOldSecret, rotateWebhookSecret } from './lists/webhook-clients.ts';
import { createTenant, tenantExists } from './tenants/tenants.ts';
import { listCaptured } from './transports/capture.ts';
import { captureDir } from './transports/index.ts';

const program = new Command('send-engine').description('Self-hostable multi-tenant email sending engine').showHelpAfterError();

async function config(): Promise<Config> {
  return withEmbeddedDefaults(loadConfig());
}

async function run(roles: { api: boolean; worker: boolean }) {
  let engine: Engine | undefined;
  let signal: string | undefined;
  const shutdown = () => {
    if (!engine || !signal) return;
    engine.logger.info({ signal }, 'shutting down');
    engine.stop().then(
      () => process.exit(0),
      (err) => {
        engine!.logger.error({ err: (err as Error).message }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  // Installed before anything starts: a signal during start-up stops the engine once it is up.
  for (const name of ['SIGTERM', 'SIGINT'] as const) {
    process.once(name, () => {
      signal ??= name;
      shutdown();
    });
  }
  engine = await startEngine(loadConfig(), roles);
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
    await withDatabase(await config(), async () => {});
    console.log('migrations applied');
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
  .option('--scopes <list>', 'comma-separated scopes', (v) => parseScopes(v), DEFAULT_SCOPES)
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
  .requiredOption('--scopes <list>', 'comma-separated scopes', (v) => parseScopes(v))
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

program.parseAsync().catch((err: Error) => {
  console.error(err instanceof ConfigError || err instanceof InvalidArgumentError ? `error: ${err.message}` : err);
  process.exit(1);
});
