import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startTestApp, tenantWithToken, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let database: TestDatabase;
let api: TestApp;
let sendOnly: string;

beforeAll(async () => {
  database = await createTestDatabase();
  api = await startTestApp(database.db, database.url);
  sendOnly = (await tenantWithToken(database.db, ['send'])).token;
});
afterAll(async () => {
  await api?.close();
  await database?.drop();
});

const PROBLEMS = 'https://send-engine.dev/problems/';

describe('error bodies: the contract fields and an RFC 7807 problem document in one', () => {
  it('the read API answers application/problem+json with type, title, status, detail, instance and request_id', async () => {
    const res = await call(api.baseUrl, 'GET', '/v1/messages?limit=5', { token: sendOnly });
    expect(res.status).toBe(403);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.json).toMatchObject({
      error: 'permission_denied',
      type: `${PROBLEMS}permission_denied`,
      title: 'Forbidden',
      status: 403,
      instance: '/v1/messages',
    });
    expect(res.json.detail).toContain('messages.view');
    expect(res.json.message).toBe(res.json.detail);
    expect(res.json.request_id).toBe(res.headers.get('x-request-id'));
  });

  it('maps each status to the reference taxonomy', async () => {
    const unauthenticated = await call(api.baseUrl, 'GET', '/v1/messages', { token: 'not-a-token' });
    expect(unauthenticated.status).toBe(401);
    expect(unauthenticated.json.type).toBe(`${PROBLEMS}unauthenticated`);

    const invalid = await call(api.baseUrl, 'POST', '/v1/send-jobs', { token: sendOnly, body: { message_type: 'transactional' } });
    expect(invalid.status).toBe(422);
    expect(invalid.json).toMatchObject({ type: `${PROBLEMS}validation_failed`, status: 422, instance: '/v1/send-jobs' });
    expect(invalid.json.error).toBe('validation_error');
    expect(invalid.json.request_id).toBeTruthy();
  });

  it('the contract operations keep application/json error bodies', async () => {
    const res = await call(api.baseUrl, 'POST', '/v1/send-jobs', { token: sendOnly, rawBody: '{not json' });
    expect(res.status).toBe(400);
    expect(res.json.error).toBe('bad_request');
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.json).toMatchObject({ status: res.status, instance: '/v1/send-jobs' });
    expect(res.json.error).toBeTruthy();
    expect(res.json.message).toBeTruthy();
  });
});
