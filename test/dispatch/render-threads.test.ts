import { generateKeyPairSync } from 'node:crypto';
import { authenticate } from 'mailauth';
import { simpleParser } from 'mailparser';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { newId } from '../../src/ids.ts';
import { defaultRenderThreads, JobRenderer, RenderFailure, type ListMessage } from '../../src/jobs/render.ts';
import type { TemplateSource } from '../../src/jobs/template.ts';
import type { MessageSigner, Signing } from '../../src/sending/compose.ts';
import { startTestApp, tenantWithToken, testConfig, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { seedList } from '../jobs/helpers.ts';

let database: TestDatabase;
let tenantId: string;
let renderer: JobRenderer | undefined;

beforeAll(async () => {
  database = await createTestDatabase();
  ({ tenantId } = await tenantWithToken(database.db));
});
afterEach(async () => {
  await renderer?.close();
  renderer = undefined;
});
afterAll(() => database.drop());

const BOMB = '<p>{% for i in (1..preferences.n) %}{% for j in (1..preferences.n) %}x{% endfor %}{% endfor %}</p>';

async function job(template: TemplateSource): Promise<string> {
  const campaignId = newId();
  const jobId = newId();
  const { listId } = await seedList(database.db, tenantId, {});
  await database.db.query(`INSERT INTO campaigns (id, tenant_id) VALUES ($1, $2)`, [campaignId, tenantId]);
  await database.db.query(
    `INSERT INTO send_jobs (id, tenant_id, list_id, campaign_id, name, from_address, template, scheduled_at, status)
     VALUES ($1, $2, $3, $4, 't', 'news@acme.test', $5, now(), 'running')`,
    [jobId, tenantId, listId, campaignId, JSON.stringify(template)],
  );
  return jobId;
}

const message = (jobId: string, preferences: Record<string, unknown> = {}): ListMessage => ({
  id: newId(),
  tenantId,
  recipient: 'reader@example.com',
  list: { jobId, listId: newId(), subscriberId: newId(), preferences },
});

describe('rendering in worker threads', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp(database.db, database.url);
  });
  afterAll(() => app.close());

  it('keeps the API answering while a hostile render runs', async () => {
    const config = testConfig(database.url);
    renderer = new JobRenderer(database.db, config.tracking, { threads: 1, timeoutMs: 10_000 });
    const jobId = await job({ subject: 'Hi {{ email }}', html: BOMB });
    // Warm: the thread is up and has compiled the job.
    expect((await renderer.render(message(jobId))).subject).toBe('Hi reader@example.com');

    let done = false;
    const hostile = renderer.render(message(jobId, { n: 4000 })).then(
      () => (done = true),
      (err) => {
        done = true;
        return err;
      },
    );
    // On main the render ran on this thread: no request could be answered until it was over.
    let answeredDuringRender = 0;
    while (!done) {
      const res = await fetch(`${app.baseUrl}/v1/_health`);
      expect(res.status).toBe(200);
      if (!done) answeredDuringRender++;
    }
    const err = await hostile;
    expect(answeredDuringRender).toBeGreaterThanOrEqual(3);
    // Liquid's own render limit stopped it; the message is failed with the reason.
    expect(err).toBeInstanceOf(RenderFailure);
    expect((err as Error).message).toMatch(/^render_failed: template html: .*(limit|exceed)/i);
  });

  it('terminates a render that outlives the time limit from outside, and renders on with a new thread', async () => {
    const config = testConfig(database.url);
    // Below Liquid's own 1 s limit, so only the outside limit can stop this render in time.
    renderer = new JobRenderer(database.db, config.tracking, { threads: 1, timeoutMs: 300 });
    const jobId = await job({ subject: 'Hi', html: BOMB });
    await renderer.render(message(jobId));
    const err = await renderer.render(message(jobId, { n: 4000 })).catch((e) => e);
    expect(err).toBeInstanceOf(RenderFailure);
    expect(err.message).toBe('render_failed: render exceeded 300 ms');
    const next = await renderer.render(message(jobId, { n: 2 }));
    expect(next.html).toBe('<p>xxxx</p>');

    // In a chunk, only the runaway message fails: the others are rendered again on a new thread.
    const chunk = [message(jobId, { n: 1 }), message(jobId, { n: 4000 }), message(jobId, { n: 2 }), message(jobId, { n: 3 })];
    const settled = await Promise.allSettled(renderer.renderMany(chunk).values());
    expect(settled.map((r) => (r.status === 'fulfilled' ? r.value.html : (r.reason as Error).message))).toEqual([
      '<p>x</p>',
      'render_failed: render exceeded 300 ms',
      '<p>xxxx</p>',
      '<p>xxxxxxxxx</p>',
    ]);
  });

  it('fails the messages of a job whose template does not parse, and of a job that does not exist', async () => {
    const config = testConfig(database.url);
    renderer = new JobRenderer(database.db, config.tracking, { threads: 1 });
    const broken = await job({ subject: 'x', html: '<p>{% if %}</p>' });
    const err = await renderer.render(message(broken)).catch((e) => e);
    expect(err).toBeInstanceOf(RenderFailure);
    expect(err.message).toMatch(/^render_failed: template html: /);
    const missing = await renderer.render(message(newId())).catch((e) => e);
    expect(missing).toBeInstanceOf(RenderFailure);
    expect(missing.message).toMatch(/^render_failed: send job .* not found$/);
  });

  it('renders with tracking and the unsubscribe link, as before, in every thread', async () => {
    const config = testConfig(database.url);
    renderer = new JobRenderer(database.db, config.tracking, { threads: 2 });
    const jobId = await job({ subject: 'S {{ preferences.name }}', html: '<a href="https://acme.example/x">{{ preferences.name }}</a>', text: 'T {{ unsubscribe_url }}' });
    await database.db.query('UPDATE send_jobs SET track_clicks = true WHERE id = $1', [jobId]);
    const outs = await Promise.all(Array.from({ length: 8 }, (_, i) => renderer!.render(message(jobId, { name: `n${i}` }))));
    outs.forEach((out, i) => {
      expect(out.subject).toBe(`S n${i}`);
      expect(out.from).toBe('news@acme.test');
      expect(out.html).toContain(`>n${i}</a>`);
      expect(out.html).toContain(`${config.tracking.baseUrl}/`);
      expect(out.html).not.toContain('href="https://acme.example/x"');
      expect(out.text).toBe(`T ${out.listUnsubscribe!.url}`);
    });
  });

  it('composes and DKIM-signs in the thread: the raw message parses and verifies, per recipient', async () => {
    const config = testConfig(database.url);
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const signing: Signing = { dkim: { domainName: 'acme.test', keySelector: 's1', privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string }, envelopeFrom: 'bounce@rp.acme.test' };
    const asked: string[] = [];
    const signer: MessageSigner = { signingFor: async (tenant, from) => (asked.push(`${tenant} ${from}`), signing) };
    renderer = new JobRenderer(database.db, config.tracking, { threads: 2 });
    renderer.signer = signer;
    const jobId = await job({ subject: 'Grüße {{ preferences.name }}', html: '<p>Hallo {{ preferences.name }}, <a href="https://acme.example/x">mehr</a></p>', text: 'Hallo {{ preferences.name }}' });
    await database.db.query('UPDATE send_jobs SET track_clicks = true, track_opens = true WHERE id = $1', [jobId]);
    const messages = Array.from({ length: 40 }, (_, i) => ({ ...message(jobId, { name: `Zoë ${i}` }), recipient: `r${i}@example.com` }));
    const composed = await Promise.all(renderer.composeMany(messages).values());
    expect(new Set(asked)).toEqual(new Set([`${tenantId} news@acme.test`]));
    const p = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
    for (const [i, c] of composed.entries()) {
      expect(c).toMatchObject({ id: messages[i].id, to: `r${i}@example.com`, envelopeFrom: 'bounce@rp.acme.test', messageId: `<${messages[i].id}@acme.test>` });
      const parsed = await simpleParser(c.raw);
      expect(parsed.subject).toBe(`Grüße Zoë ${i}`);
      expect(parsed.text).toBe(`Hallo Zoë ${i}`);
      expect(parsed.html).toContain(`Hallo Zoë ${i}, <a href="${config.tracking.baseUrl}/t/c/`);
      expect(parsed.html).toContain(`${config.tracking.baseUrl}/t/o/`);
      expect(parsed.headers.get('x-send-engine-message-id')).toBe(messages[i].id);
      const auth = await authenticate(c.raw, {
        resolver: async (name, rr) => (rr === 'TXT' && name === 's1._domainkey.acme.test' ? [[`v=DKIM1; k=rsa; p=${p}`]] : Promise.reject(Object.assign(new Error('none'), { code: 'ENOTFOUND' }))),
        ip: '127.0.0.1',
        helo: 'localhost',
        sender: 'bounce@rp.acme.test',
      });
      expect(auth.dkim.results[0]).toMatchObject({ signingDomain: 'acme.test', status: { result: 'pass' } });
    }
  });
});

describe('RENDER_THREADS', () => {
  it('sets the render threads of a worker; unset means the default (the cores less one, 1 to 4)', () => {
    expect(loadConfig({ RENDER_THREADS: '3' }).jobs.renderThreads).toBe(3);
    expect(loadConfig({}).jobs.renderThreads).toBeUndefined();
    expect([1, 2, 3, 4, 8, 64].map((cores) => defaultRenderThreads(cores))).toEqual([1, 1, 2, 3, 4, 4]);
    for (const bad of ['0', '-1', '1.5', 'two']) expect(() => loadConfig({ RENDER_THREADS: bad }), bad).toThrow(ConfigError);
    expect(() => loadConfig({ RENDER_THREADS: '0' })).toThrow(/RENDER_THREADS must be an integer >= 1, got "0"/);
  });
});
