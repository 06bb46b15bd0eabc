import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, tenantWithToken } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startTestEngine, type TestEngine } from '../helpers/engine.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { until } from '../helpers/wait.ts';
import { seedList } from './helpers.ts';

let database: TestDatabase;
let sink: SmtpSink;
let engine: TestEngine;
let token: string;
let tenantId: string;

beforeAll(async () => {
  database = await createTestDatabase();
  sink = await startSmtpSink();
  engine = await startTestEngine(database.db, database.url, { smtpUrl: sink.url });
  ({ token, tenantId } = await tenantWithToken(database.db));
});
afterAll(async () => {
  await engine.close();
  await sink.close();
  await database.drop();
});

const createJob = (body: Record<string, unknown>, t = token) => call(engine.baseUrl, 'POST', '/api/send-jobs', { token: t, body });
const getJob = (id: string, t = token) => call(engine.baseUrl, 'GET', `/api/send-jobs/${id}`, { token: t });
const inSink = (domain: string) => sink.messages.filter((m) => m.envelopeTo[0].endsWith(`@${domain}`));
const isoIn = (ms: number) => new Date(Date.now() + ms).toISOString();

async function finished(id: string, timeoutMs = 20_000) {
  return until(async () => {
    const res = await getJob(id);
    return ['completed', 'failed', 'cancelled'].includes(res.json.status) ? res.json : undefined;
  }, timeoutMs, `job ${id} to finish`);
}

describe('POST /api/send-jobs: validation', () => {
  let listId: string;
  beforeAll(async () => {
    ({ listId } = await seedList(database.db, tenantId, { count: 1, domain: 'validation.test' }));
  });

  it.each([
    ['no body at all', {}, 'validation_error'],
    ['two bodies', { body_html: '<p>a</p>', body_text: 'a' }, 'validation_error'],
    ['html and a template', { body_html: '<p>a</p>', template: { html: '<p>{{ email }}</p>' } }, 'validation_error'],
    ['a template without html or text', { template: { subject: 'x' } }, 'validation_error'],
    ['a template that does not parse', { template: { html: '<p>{% if %}</p>' } }, 'template_error'],
    ['window_end before window_start', { body_text: 'a', window_start: isoIn(60_000), window_end: isoIn(30_000) }, 'validation_error'],
    ['window_end in the past', { body_text: 'a', window_end: isoIn(-60_000) }, 'validation_error'],
    ['scheduled after the window closes', { body_text: 'a', scheduled_at: isoIn(120_000), window_end: isoIn(60_000) }, 'validation_error'],
    ['spread pacing without a window_end', { body_text: 'a', pacing: 'spread' }, 'validation_error'],
    ['a list_id that is not a uuid', { body_text: 'a', list_id: 'nope' }, 'validation_error'],
    ['a subject with a control character', { body_text: 'a', subject: 'Hi\x1b[2J' }, 'invalid_header_value'],
    ['a template subject with a newline', { template: { subject: 'Hi\nBcc: x@evil.test', text: 'a' } }, 'invalid_header_value'],
  ])('%s -> 422 with its reason', async (_name, extra, error) => {
    const res = await createJob({ list_id: listId, subject: 'Hello', ...extra });
    expect(res.status).toBe(422);
    expect(res.json).toMatchObject({ error, message: expect.any(String), request_id: expect.any(String) });
  });

  // Issue 9, item 10: 1e-300 was accepted and the fan-out then failed for ever with "interval out of range".
  it.each([1e-300, 0, -1, 0.001, 1e6, 1e300])('rate_per_second %s -> 422 naming the field', async (rate) => {
    const res = await createJob({ list_id: listId, subject: 'Hello', body_text: 'a', rate_per_second: rate });
    expect(res.status).toBe(422);
    expect(res.json).toMatchObject({ error: 'validation_error', message: expect.stringContaining('rate_per_second') });
  });

  it('rate_per_second at its bounds is accepted', async () => {
    for (const rate of [0.01, 100_000]) {
      const res = await createJob({ list_id: listId, subject: 'Hello', body_text: 'a', rate_per_second: rate, scheduled_at: isoIn(3_600_000) });
      expect(res.status, res.text).toBe(200);
      expect((await getJob(res.json.send_job_id)).json.rate_per_second).toBe(rate);
    }
  });

  it("a list of another tenant (or none) -> 422, another tenant's tenant_id -> 403", async () => {
    const other = await tenantWithToken(database.db);
    const theirs = await seedList(database.db, other.tenantId, { count: 1 });
    const foreign = await createJob({ list_id: theirs.listId, subject: 'Hi', body_text: 'x' });
    expect(foreign.status).toBe(422);
    expect(foreign.json.error).toBe('unknown_list');
    expect((await createJob({ list_id: listId, subject: 'Hi', body_text: 'x', tenant_id: other.tenantId })).status).toBe(403);
  });

  it("GET and cancel of an unknown or another tenant's job -> 404", async () => {
    const res = await createJob({ list_id: listId, subject: 'Later', body_text: 'x', scheduled_at: isoIn(3_600_000) });
    expect(res.status).toBe(200);
    const other = await tenantWithToken(database.db);
    expect((await getJob(res.json.send_job_id, other.token)).status).toBe(404);
    expect((await call(engine.baseUrl, 'POST', `/api/send-jobs/${res.json.send_job_id}/cancel`, { token: other.token })).status).toBe(404);
    expect((await getJob('01890000-0000-7000-8000-000000000000')).status).toBe(404);
    // Cleaned up: cancelling a pending job works.
    expect((await call(engine.baseUrl, 'POST', `/api/send-jobs/${res.json.send_job_id}/cancel`, { token })).json).toEqual({ id: res.json.send_job_id, status: 'cancelled' });
  });
});

describe('list send jobs over real SMTP', () => {
  it('sends exactly once to each active, unsuppressed member, personalised, and completes with counts', async () => {
    const { listId, members } = await seedList(database.db, tenantId, {
      members: [
        { email: 'ann@exact.test' },
        { email: 'ben@exact.test' },
        { email: 'cat@exact.test' },
        { email: 'dan@exact.test', status: 'unsubscribed' },
        { email: 'eve@exact.test', status: 'bounced' },
        { email: 'Sup@Exact.test' },
      ],
    });
    await database.db.query(`INSERT INTO suppressions (tenant_id, email, reason, source) VALUES ($1, 'sup@exact.test', 'complaint', 'test')`, [tenantId]);
    // A member of another list is not a recipient.
    await seedList(database.db, tenantId, { members: [{ email: 'other@exact.test' }] });

    const res = await createJob({ list_id: listId, name: 'November news', subject: 'News for {{ email }}', template: { html: '<p>Hi {{ email }}, id {{ subscriber_id }}</p>', text: 'Hi {{ email }}' } });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ send_job_id: expect.any(String), status: 'pending' });
    const job = await finished(res.json.send_job_id);

    expect(job.status).toBe('completed');
    expect(job.counts).toMatchObject({ total: 4, sent: 3, suppressed: 1, queued: 0, failed: 0, expired: 0 });
    const got = inSink('exact.test');
    expect(got.map((m) => m.envelopeTo[0]).sort()).toEqual(['ann@exact.test', 'ben@exact.test', 'cat@exact.test']);
    const ben = got.find((m) => m.envelopeTo[0] === 'ben@exact.test')!;
    expect(ben.parsed.subject).toBe('News for ben@exact.test');
    expect(ben.parsed.html).toContain(`id ${members[1].id}`);
    const head = ben.raw.toString().split(/\r?\n\r?\n/)[0].replace(/\r?\n[ \t]+/g, ' ');
    expect(head).toMatch(/^List-Unsubscribe-Post: List-Unsubscribe=One-Click\r?$/m);
    const unsubscribe = head.match(/^List-Unsubscribe: <(https?:\/\/[^>]+)>\r?$/gm);
    expect(unsubscribe).toHaveLength(1);
    expect(unsubscribe![0]).toContain(`${engine.config.tracking.baseUrl}/u/`);
    expect(job.campaign_id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('waits for window_start', async () => {
    const { listId } = await seedList(database.db, tenantId, { count: 3, domain: 'window-start.test' });
    const windowStart = Date.now() + 2500;
    const res = await createJob({ list_id: listId, subject: 'Later', body_text: 'x', window_start: new Date(windowStart).toISOString(), window_end: isoIn(60_000) });
    expect((await getJob(res.json.send_job_id)).json.status).toBe('pending');
    await finished(res.json.send_job_id);
    const got = inSink('window-start.test');
    expect(got).toHaveLength(3);
    for (const m of got) expect(m.receivedAt).toBeGreaterThanOrEqual(windowStart);
  });

  it('stops at window_end: what is not sent by then is expired and counted', async () => {
    const { listId } = await seedList(database.db, tenantId, { count: 40, domain: 'window-end.test' });
    const windowEnd = Date.now() + 2000;
    const res = await createJob({ list_id: listId, subject: 'Short window', body_text: 'x', window_end: new Date(windowEnd).toISOString(), rate_per_second: 10 });
    const job = await finished(res.json.send_job_id);
    const got = inSink('window-end.test');
    expect(job.status).toBe('completed');
    expect(job.counts.sent).toBe(got.length);
    expect(job.counts.expired).toBe(40 - got.length);
    expect(job.counts.expired).toBeGreaterThan(10);
    for (const m of got) expect(m.receivedAt).toBeLessThan(windowEnd + 500);
  });

  it('holds the send rate within 10%', async () => {
    const { listId } = await seedList(database.db, tenantId, { count: 60, domain: 'rate.test' });
    const res = await createJob({ list_id: listId, subject: 'Paced', body_text: 'x', rate_per_second: 20 });
    await finished(res.json.send_job_id, 30_000);
    const times = inSink('rate.test').map((m) => m.receivedAt).sort((a, b) => a - b);
    expect(times).toHaveLength(60);
    const rate = (times.length - 1) / ((times[times.length - 1] - times[0]) / 1000);
    expect(rate).toBeGreaterThan(18);
    expect(rate).toBeLessThan(22);
  });

  it('spreads sends across the window when asked', async () => {
    const { listId } = await seedList(database.db, tenantId, { count: 10, domain: 'spread.test' });
    const start = Date.now();
    const res = await createJob({ list_id: listId, subject: 'Spread', body_text: 'x', pacing: 'spread', window_end: new Date(start + 3000).toISOString() });
    await finished(res.json.send_job_id);
    const times = inSink('spread.test').map((m) => m.receivedAt - start).sort((a, b) => a - b);
    expect(times).toHaveLength(10);
    // Ten sends over three seconds: the last one goes out well after the first, none after the window.
    expect(times[9] - times[0]).toBeGreaterThan(2000);
    expect(times[9]).toBeLessThan(3500);
  });

  it('cancel stops everything not yet sent, at once; cancelling again -> 409', async () => {
    const { listId } = await seedList(database.db, tenantId, { count: 50, domain: 'cancel.test' });
    const res = await createJob({ list_id: listId, subject: 'Cancel me', body_text: 'x', rate_per_second: 10 });
    await until(() => inSink('cancel.test').length >= 5 || undefined, 10_000, 'a few sends');
    const cancel = await call(engine.baseUrl, 'POST', `/api/send-jobs/${res.json.send_job_id}/cancel`, { token });
    expect(cancel.status).toBe(200);
    expect(cancel.json).toEqual({ id: res.json.send_job_id, status: 'cancelled' });
    const atCancel = inSink('cancel.test').length;
    await new Promise((r) => setTimeout(r, 1500));
    // At most the sends already handed to the transport complete.
    expect(inSink('cancel.test').length - atCancel).toBeLessThanOrEqual(4);
    const job = (await getJob(res.json.send_job_id)).json;
    expect(job.status).toBe('cancelled');
    expect(job.counts.cancelled + job.counts.sent).toBe(50);
    expect(job.counts.sent).toBe(inSink('cancel.test').length);
    const again = await call(engine.baseUrl, 'POST', `/api/send-jobs/${res.json.send_job_id}/cancel`, { token });
    expect(again.status).toBe(409);
  });

  it('does not send to a member who unsubscribed after fan-out', async () => {
    const { listId, members } = await seedList(database.db, tenantId, { count: 20, domain: 'late-unsub.test' });
    const res = await createJob({ list_id: listId, subject: 'Paced', body_text: 'x', rate_per_second: 5 });
    await until(async () => (await database.db.query('SELECT fanout_done FROM send_jobs WHERE id = $1', [res.json.send_job_id])).rows[0].fanout_done || undefined, 10_000, 'fan-out');
    const last = [...members].sort((a, b) => (a.id < b.id ? -1 : 1)).at(-1)!;
    await database.db.query(`UPDATE list_members SET status = 'unsubscribed', status_at = now() WHERE subscriber_id = $1`, [last.id]);
    const job = await finished(res.json.send_job_id);
    expect(inSink('late-unsub.test').map((m) => m.envelopeTo[0])).not.toContain(last.email);
    expect(inSink('late-unsub.test')).toHaveLength(19);
    expect(job.counts).toMatchObject({ sent: 19, cancelled: 1 });
  });
});

describe('the guardrail on list jobs', () => {
  it('holds a paused tenant\'s job with the reason visible, and sends once resumed', async () => {
    const paused = await tenantWithToken(database.db);
    const { listId } = await seedList(database.db, paused.tenantId, { count: 3, domain: 'guardrail.test' });
    await database.db.query(`UPDATE tenants SET newsletter_paused_at = now(), newsletter_pause_reason = 'complaint rate 0.5% over 0.3%' WHERE id = $1`, [paused.tenantId]);
    const res = await createJob({ list_id: listId, subject: 'Held', body_text: 'x' }, paused.token);
    await until(async () => (await getJob(res.json.send_job_id, paused.token)).json.counts.queued === 3 || undefined, 10_000, 'fan-out');
    await new Promise((r) => setTimeout(r, 500));
    const held = (await getJob(res.json.send_job_id, paused.token)).json;
    expect(held.status).toBe('running');
    expect(held.status_reason).toContain('complaint rate');
    expect(inSink('guardrail.test')).toHaveLength(0);
    await database.db.query('UPDATE tenants SET newsletter_paused_at = NULL, newsletter_pause_reason = NULL WHERE id = $1', [paused.tenantId]);
    const job = await until(async () => {
      const j = (await getJob(res.json.send_job_id, paused.token)).json;
      return j.status === 'completed' ? j : undefined;
    }, 15_000, 'the resumed job to complete');
    expect(job.counts.sent).toBe(3);
    expect(inSink('guardrail.test')).toHaveLength(3);
  });
});

describe('a send job whose orchestration fails', () => {
  it('ends failed with the reason in status_reason, never stays running, and sends nothing', async () => {
    const { listId } = await seedList(database.db, tenantId, { count: 3, domain: 'orchestration-failure.test' });
    const res = await createJob({ list_id: listId, subject: 'Hi', body_text: 'x', scheduled_at: isoIn(2_000) });
    expect(res.status).toBe(200);
    // A rate the API now refuses (an older engine accepted it): the fan-out statement fails with
    // "out of range" (interval or timestamp), a data error that no retry cures.
    await database.db.query('UPDATE send_jobs SET rate_per_second = 1e-300 WHERE id = $1', [res.json.send_job_id]);
    const job = await finished(res.json.send_job_id);
    expect(job.status).toBe('failed');
    expect(job.status_reason).toMatch(/^send-job\.run failed: .*out of range/);
    expect(job.finished_at).not.toBeNull();
    expect(job.counts).toMatchObject({ total: 0, queued: 0, sent: 0 });
    expect(inSink('orchestration-failure.test')).toHaveLength(0);
  });
});
