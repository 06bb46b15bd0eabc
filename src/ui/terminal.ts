import type { Config } from '../config.ts';
import { captureDir } from '../transports/index.ts';

/** ANSI colours, only on a terminal (and never with NO_COLOR). */
const colour = (code: number) => (s: string) => (process.stdout.isTTY && !process.env.NO_COLOR ? `\x1b[${code}m${s}\x1b[0m` : s);
export const bold = colour(1);
export const dim = colour(2);
export const green = colour(32);
export const red = colour(31);
export const yellow = colour(33);
export const cyan = colour(36);

/** What `start`/`serve`/`worker` print once up, on a terminal: where to go and what to run next. */
export function startBanner(config: Config, o: { api: boolean; worker: boolean; embeddedPort?: number; transport?: string }): string {
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`;
  const database = o.embeddedPort ? `embedded PostgreSQL on port ${o.embeddedPort}, data in ${config.dataDir}` : 'external PostgreSQL (DATABASE_URL)';
  const transport = config.transport === 'capture'
    ? `capture: messages are written as .eml files to ${captureDir(config)} (see them: npx send-engine inbox)`
    : config.transport.startsWith('smtp') ? `SMTP relay ${config.transport.replace(/\/\/.*@/, '//***@')}` : `Amazon SES (${config.ses.region})`;
  const roles = [o.api && 'API', o.worker && 'worker'].filter(Boolean).join(' + ');
  const rows: Array<[string, string]> = [
    ...(o.api ? [['Dashboard', `${url}/  (sign in with an API key${config.adminToken ? ' or ADMIN_TOKEN' : ''})`] as [string, string], ['API', `${url}/openapi.json`] as [string, string]] : []),
    ['Database', database],
    ['Transport', o.worker ? transport : 'none (API only: run `send-engine worker` to send)'],
    ...(config.metrics.port || config.metrics.token ? [['Metrics', config.metrics.port ? `http://${config.metrics.host}:${config.metrics.port}/metrics` : `${url}/metrics (Bearer METRICS_TOKEN)`] as [string, string]] : []),
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return [
    '',
    `  ${bold(green('Send Engine'))} is running (${roles})`,
    ...rows.map(([k, v]) => `  ${dim(k.padEnd(width))}  ${v}`),
    '',
    `  ${bold('Next:')} create a tenant and a key for the dashboard:`,
    `    ${cyan('npx send-engine tenant create --name Acme --json')}`,
    `    ${cyan('npx send-engine key create --tenant <tenant_id> --scopes reports.view,messages.view,jobs.manage,keys.manage')}`,
    `  Health: ${url}/v1/_health · stop with Ctrl-C`,
    '',
  ].join('\n');
}

/**
 * A CLI failure as one line: what is wrong and, where we know it, what to do. Causes we recognise
 * (the database unreachable, a port taken) get their fix; the stack only with SEND_ENGINE_DEBUG=1.
 */
export function oneLineError(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  const message = err.message.split('\n')[0];
  if (code === 'ECONNREFUSED' && /5432|543\d\d|postgres/i.test(message + String((err as { port?: number }).port ?? ''))) {
    return `error: cannot reach PostgreSQL (${message}); check DATABASE_URL, or unset it to use the embedded server`;
  }
  if (code === 'ECONNREFUSED') return `error: ${message}: is the server running? (send-engine doctor checks the database and the transport)`;
  if (code === 'EADDRINUSE') return `error: ${message}: another process listens there; set PORT (or stop it)`;
  if (code === '28P01' || code === '3D000') return `error: PostgreSQL refused: ${message}; check DATABASE_URL`;
  return `error: ${message}`;
}
