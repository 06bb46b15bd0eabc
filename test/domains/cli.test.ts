import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_JWT_SECRET, tenantWithToken } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startDnsServer, type TestDnsServer } from './dns-server.ts';

const run = promisify(execFile);
const BIN = path.resolve('bin/send-engine.mjs');

let database: TestDatabase;
let dns: TestDnsServer;

beforeAll(async () => {
  database = await createTestDatabase();
  dns = await startDnsServer();
});
afterAll(async () => {
  await dns?.close();
  await database?.drop();
});

const cli = (...args: string[]) =>
  run(process.execPath, [BIN, ...args], {
    env: { ...process.env, DATABASE_URL: database.url, JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: 'silent', DNS_SERVERS: dns.address, RETURN_PATH_MX: 'mx.send-engine.test' },
  });

describe('send-engine domain', () => {
  it('add prints the records, verify checks them in DNS (exit 2 until verified), list shows the domain', async () => {
    const { tenantId } = await tenantWithToken(database.db);
    const added = JSON.parse((await cli('domain', 'add', '--tenant', tenantId, '--name', 'cli.example.test', '--json')).stdout);
    expect(added).toMatchObject({ name: 'cli.example.test', status: 'not_started' });
    expect(added.dns_records.map((r: { purpose: string }) => r.purpose)).toEqual(['dkim', 'return_path', 'spf', 'dmarc']);

    const pending = await cli('domain', 'verify', '--tenant', tenantId, '--domain', 'cli.example.test').catch((err) => err);
    expect(pending.code).toBe(2);
    expect(pending.stdout).toContain('cli.example.test  pending');

    for (const r of added.dns_records) dns.add(r.name, r.type === 'MX' ? { type: 'MX', value: r.value, priority: r.priority } : { type: r.type, value: r.value });
    const verified = JSON.parse((await cli('domain', 'verify', '--tenant', tenantId, '--domain', added.id, '--json')).stdout);
    expect(verified.status).toBe('verified');

    const listed = (await cli('domain', 'list', '--tenant', tenantId)).stdout;
    expect(listed).toContain('cli.example.test  verified');
    expect(listed).toMatch(/verified\s+TXT\s+se\d{6}[0-9a-f]{6}\._domainkey\.cli\.example\.test/);

    const bad = await cli('domain', 'add', '--tenant', tenantId, '--name', 'not a domain').catch((err) => err);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('is not a domain name you can send from');
  });
});
