import { execFile } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { wantsPrettyLogs } from '../../src/log.ts';
import { terminalBar } from '../../src/ui/job-watch.ts';
import { oneLineError, startBanner } from '../../src/ui/terminal.ts';

describe('the start banner', () => {
  it('names the dashboard URL, the data folder, the transport and the next command', () => {
    const config = loadConfig({ PORT: '3100', SEND_ENGINE_DATA_DIR: '/srv/se-data', JWT_SECRET: 'x'.repeat(40) });
    const text = startBanner(config, { api: true, worker: true, embeddedPort: 54329 });
    expect(text).toContain('Dashboard  http://127.0.0.1:3100/');
    expect(text).toContain('embedded PostgreSQL on port 54329, data in /srv/se-data');
    expect(text).toMatch(/capture: messages are written as \.eml files to \/srv\/se-data\/\w+ \(see them: npx send-engine inbox\)/);
    expect(text).toContain('npx send-engine tenant create --name Acme --json');
  });

  it('hides SMTP credentials and says when this process does not send', () => {
    const config = loadConfig({ SEND_ENGINE_TRANSPORT: 'smtp://user:pw@relay.example:587', JWT_SECRET: 'x'.repeat(40) });
    expect(startBanner(config, { api: true, worker: true })).toContain('SMTP relay smtp://***@relay.example:587');
    expect(startBanner(config, { api: true, worker: false })).toContain('none (API only: run `send-engine worker` to send)');
    expect(startBanner(config, { api: true, worker: true })).not.toContain('pw@');
  });
});

describe('log format and one-line errors', () => {
  it('LOG_FORMAT chooses JSON or pretty; auto follows the terminal', () => {
    expect(wantsPrettyLogs('json')).toBe(false);
    expect(wantsPrettyLogs('pretty')).toBe(true);
    expect(wantsPrettyLogs('auto')).toBe(process.stdout.isTTY === true);
  });

  it('pretty logs (pino-pretty, loaded on first use) are readable lines, redacted like JSON ones', async () => {
    const script = "import { createLogger } from './src/log.ts'; createLogger('info', { pretty: true }).info({ req: { headers: { authorization: 'Bearer s3cret' } } }, 'hello there');";
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env: { ...process.env, NO_COLOR: '1' }, timeout: 30_000 });
    expect(stdout).toMatch(/^\[\d\d:\d\d:\d\d\] INFO: hello there$/m);
    expect(stdout).toContain('[redacted]');
    expect(stdout).not.toContain('s3cret');
  });

  it("the CLI's progress bar (cli-progress, loaded on first use) draws on the stream it is given", () => {
    const out = Object.assign(new PassThrough(), { isTTY: true, columns: 80 }) as unknown as NodeJS.WriteStream;
    let text = '';
    (out as unknown as PassThrough).on('data', (chunk: Buffer) => (text += chunk.toString()));
    const bar = terminalBar(out, '{value}/{total} {status}');
    bar.start(10, 0, { status: 'starting' });
    bar.update(7, { status: 'sending' });
    bar.stop();
    expect(text).toContain('7/10 sending');
  });

  it('says what to do about causes it knows', () => {
    expect(oneLineError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }))).toBe(
      'error: cannot reach PostgreSQL (connect ECONNREFUSED 127.0.0.1:5432); check DATABASE_URL, or unset it to use the embedded server',
    );
    expect(oneLineError(Object.assign(new Error('listen EADDRINUSE: address already in use 127.0.0.1:3000'), { code: 'EADDRINUSE' }))).toMatch(/set PORT/);
    expect(oneLineError(new Error('first line\n    at somewhere'))).toBe('error: first line');
  });
});
