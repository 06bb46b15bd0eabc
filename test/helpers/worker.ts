import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { TEST_JWT_SECRET } from './app.ts';

export const CLI = path.resolve('bin/send-engine.mjs');

/** A real `send-engine worker` process on a test database, sending into an SMTP URL. */
export function startWorkerProcess(databaseUrl: string, smtpUrl: string, env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [CLI, 'worker'], {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      JWT_SECRET: TEST_JWT_SECRET,
      SEND_ENGINE_TRANSPORT: smtpUrl,
      DEFAULT_FROM_ADDRESS: 'news@acme.test',
      DISPATCH_CONCURRENCY: '4',
      DISPATCH_BATCH_SIZE: '50',
      DISPATCH_POLL_MS: '100',
      LOG_LEVEL: 'error',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

export const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', (code) => resolve(code))));
