import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { call, startTestApp, type TestApp } from '../helpers/app.ts';

let database: TestDatabase;
let api: TestApp;

beforeAll(async () => {
  database = await createTestDatabase();
  api = await startTestApp(database.db, database.url, { SEND_ENGINE_COMMIT: 'abc123' });
});
afterAll(async () => {
  await api.close();
  await database.drop();
});

describe('GET /v1/_health', () => {
  it('answers without credentials, with status, commit and time', async () => {
    const res = await call(api.baseUrl, 'GET', '/v1/_health');
    expect(res.status).toBe(200);
    expect(res.json.status).toBe('ok');
    expect(res.json.commit).toBe('abc123');
    expect(Math.abs(Date.parse(res.json.time) - Date.now())).toBeLessThan(5000);
  });

  it('puts an X-Request-Id on every response and honours a sane one from the caller', async () => {
    const own = await call(api.baseUrl, 'GET', '/v1/_health');
    expect(own.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const given = await call(api.baseUrl, 'GET', '/v1/_health', { headers: { 'x-request-id': 'trace-42' } });
    expect(given.headers.get('x-request-id')).toBe('trace-42');
    const hostile = await call(api.baseUrl, 'GET', '/v1/_health', { headers: { 'x-request-id': 'a b<script>' } });
    expect(hostile.headers.get('x-request-id')).not.toBe('a b<script>');
  });

  it('answers unknown routes with the error body', async () => {
    const res = await call(api.baseUrl, 'GET', '/v1/nope');
    expect(res.status).toBe(404);
    expect(res.json).toMatchObject({ error: 'not_found', request_id: res.headers.get('x-request-id') });
    expect(typeof res.json.message).toBe('string');
  });
});
