import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, tenantWithToken } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startTestEngine, type TestEngine } from '../helpers/engine.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { until } from '../helpers/wait.ts';

/** Campaigns over a real SMTP sink: drafts, schedule, pause/resume without duplicates, the window while paused. */
let database: TestDatabase;
let sink: SmtpSink;
let engine: TestEngine;
let token: string;
let other: string;
const SCOPES = ['lists.view', 'lists.manage', 'jobs.manage'] as const;

beforeAll(async () => {
  database = await createTestDatabase();
  sink = await startSmtpSink();
  engine = await startTestEngine(database.db, database.url, { smtpUrl: sink.url });
  token = (await tenantWithToken(database.db, [...SCOPES])).token;
  other = (await tenantWithToken(database.db, [...SCOPES], 'other')).token;
});
afterAll(async () => {
  await engine?.close();
  await sink?.close();
  await database?.drop();
});

const api = (method: string, path: string, body?: unknown, tok = token) => call(engine.baseUrl, method, path, { token: tok, body });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const to = (domain: string) => sink.messages.filter((m) => m.envelopeTo[0].endsWith(`@${domain}`));

/** An API list of n contacts at `domain`, imported as JSON lines. */
async function listOf(n: number, domain: string) {
  const list = (await api('POST', '/v1/lists', { name: domain })).json.id;
  const lines = Array.from({ length: n }, (_, i) => JSON.stringify({ email: `c${i}@${domain}`, first_name: `First${i}`, properties: { plan: i % 2 ? 'pro' : 'free' } })).join('\n');
  const r = await call(engine.baseUrl, 'POST', `/v1/lists/${list}/contacts/import`, { token, rawBody: lines, headers: { 'content-type': 'application/x-ndjson' } });
  expect(r.json.created).toBe(n);
  return list as string;
}

describe('campaign life', () => {
  it('draft → edit → schedule; edits after scheduling and pausing a draft are refused; another tenant sees 404', async () => {
    const list = await listOf(2, 'draft.test');
    const c = await api('POST', '/v1/campaigns', { name: 'Spring', list_id: list, subject: 'Hi', html: '<p>Hi</p>', scheduled_at: new Date(Date.now() + 3_600_000).toISOString() });
    expect(c.status).toBe(201);
    expect(c.json).toMatchObject({ status: 'draft', name: 'Spring', subject: 'Hi', list_id: list });
    const id = c.json.id;
    expect((await api('PATCH', `/v1/campaigns/${id}`, { subject: 'Hello {{ contact.first_name }}', text: 'x' })).json).toMatchObject({ subject: 'Hello {{ contact.first_name }}', html: null, text: 'x' });
    const bad = await api('PATCH', `/v1/campaigns/${id}`, { subject: '{{ x | nope }}', text: 'x' });
    expect(bad.status).toBe(422);
    expect(bad.json.error).toBe('template_error');
    const pauseDraft = await api('POST', `/v1/campaigns/${id}/pause`);
    expect(pauseDraft.status).toBe(409);
    expect(pauseDraft.json.error).toBe('campaign_not_pausable');

    const scheduled = await api('POST', `/v1/campaigns/${id}/schedule`, {});
    expect(scheduled.json.status).toBe('scheduled');
    const edit = await api('PATCH', `/v1/campaigns/${id}`, { name: 'late' });
    expect(edit.status).toBe(409);
    expect(edit.json.error).toBe('campaign_not_draft');

    for (const [method, path] of [['GET', `/v1/campaigns/${id}`], ['POST', `/v1/campaigns/${id}/pause`], ['POST', `/v1/campaigns/${id}/cancel`], ['PATCH', `/v1/campaigns/${id}`]] as const) {
      const r = await api(method, path, method === 'PATCH' ? { name: 'x' } : undefined, other);
      expect(r.status, `${method} ${path}`).toBe(404);
    }
    const listed = await api('GET', '/v1/campaigns?status=scheduled&search=spr');
    expect(listed.json.data.map((x: any) => x.id)).toEqual([id]);
    const cancelled = await api('POST', `/v1/campaigns/${id}/cancel`);
    expect(cancelled.json.status).toBe('cancelled');
    expect((await api('POST', `/v1/campaigns/${id}/cancel`)).json.error).toBe('campaign_finished');
  });

  it('POST /api/send-jobs makes the same object: its campaign is readable under /v1/campaigns', async () => {
    const list = await listOf(1, 'legacy.test');
    const job = await api('POST', '/api/send-jobs', { list_id: list, subject: 'Legacy', body_text: 'x', scheduled_at: new Date(Date.now() + 3_600_000).toISOString() });
    const got = await api('GET', `/api/send-jobs/${job.json.send_job_id}`);
    const campaign = await api('GET', `/v1/campaigns/${got.json.campaign_id}`);
    expect(campaign.json).toMatchObject({ send_job_id: job.json.send_job_id, status: 'scheduled', subject: 'Legacy' });
    await api('POST', `/v1/campaigns/${got.json.campaign_id}/pause`);
    // The contract's vocabulary has no "paused": the job is still under way there.
    expect((await api('GET', `/api/send-jobs/${job.json.send_job_id}`)).json.status).toBe('running');
  });

  it('send-test renders with the contact and goes through the outbox', async () => {
    const list = await listOf(1, 'test-send.test');
    const c = await api('POST', '/v1/campaigns', { name: 'T', list_id: list, subject: 'For {{ contact.first_name }}', text: 'Plan {{ contact.plan }}', reply_to: 'help@acme.test' });
    const r = await api('POST', `/v1/campaigns/${c.json.id}/send-test`, { to: 'c0@test-send.test' });
    expect(r.status).toBe(202);
    const [m] = await until(() => (to('test-send.test').length ? to('test-send.test') : undefined), 10_000, 'test send');
    expect(m.parsed.subject).toBe('[Test] For First0');
    expect(m.parsed.text?.trim()).toBe('Plan free');
    expect((await api('GET', `/v1/campaigns/${c.json.id}`)).json.status).toBe('draft');
  });
});

describe('pause and resume', () => {
  it('pause holds the rest, resume sends exactly the remainder: total = members, no duplicate', async () => {
    const N = 30;
    const list = await listOf(N, 'pause.test');
    const c = await api('POST', '/v1/campaigns', {
      name: 'Paced', list_id: list, subject: 'Hello {{ contact.first_name }}', html: '<p>{{ contact.first_name }} on {{ contact.plan }}</p>', reply_to: 'reply@acme.test', rate_per_second: 5,
    });
    const id = c.json.id;
    await api('POST', `/v1/campaigns/${id}/schedule`, {});
    // Paced at 5/s (6 s in all); the first render thread's start may let a short backlog out at once.
    await until(() => to('pause.test').length >= 6 || undefined, 20_000, 'first messages');
    const paused = await api('POST', `/v1/campaigns/${id}/pause`);
    expect(paused.json.status).toBe('paused');
    await sleep(1_000); // what was in flight at the pause lands
    const atPause = to('pause.test').length;
    await sleep(2_000);
    expect(to('pause.test').length).toBe(atPause);
    expect(atPause).toBeLessThan(N);
    const held = await api('GET', `/v1/campaigns/${id}`);
    expect(held.json.counters.queued).toBe(N - atPause);

    expect((await api('POST', `/v1/campaigns/${id}/resume`)).json.status).toBe('running');
    await sink.waitFor(0);
    await until(() => to('pause.test').length >= N || undefined, 30_000, 'the rest');
    await sleep(500);
    const all = to('pause.test');
    expect(all).toHaveLength(N);
    expect(new Set(all.map((m) => m.messageId)).size).toBe(N);
    expect(new Set(all.map((m) => m.envelopeTo[0])).size).toBe(N);
    const one = all.find((m) => m.envelopeTo[0] === 'c3@pause.test')!;
    expect(one.parsed.subject).toBe('Hello First3');
    expect(one.parsed.html).toContain('First3 on pro');
    expect(one.parsed.replyTo?.text).toBe('reply@acme.test');
    const done = await until(async () => {
      const r = await api('GET', `/v1/campaigns/${id}`);
      return r.json.status === 'completed' ? r.json : undefined;
    }, 15_000, 'completed');
    expect(done.counters).toMatchObject({ total: N, queued: 0, sent: N });
  });

  it('a paused campaign whose window closes expires what it still held', async () => {
    const N = 20;
    const list = await listOf(N, 'window.test');
    const c = await api('POST', '/v1/campaigns', { name: 'Windowed', list_id: list, subject: 'Hi', text: 'x', rate_per_second: 5, window_end: new Date(Date.now() + 6_000).toISOString() });
    await api('POST', `/v1/campaigns/${c.json.id}/schedule`, {});
    await until(() => to('window.test').length >= 2 || undefined, 10_000, 'first messages');
    await api('POST', `/v1/campaigns/${c.json.id}/pause`);
    await sleep(500);
    const atPause = to('window.test').length;
    const done = await until(async () => {
      const r = await api('GET', `/v1/campaigns/${c.json.id}`);
      return r.json.status === 'completed' ? r.json : undefined;
    }, 20_000, 'completed after the window');
    expect(done.counters.queued).toBe(0);
    const { rows } = await database.db.query(`SELECT count(*)::int AS n FROM messages WHERE send_job_id = $1 AND status = 'expired'`, [done.send_job_id]);
    expect(rows[0].n).toBe(N - atPause);
    expect(to('window.test')).toHaveLength(atPause);
  });
});
