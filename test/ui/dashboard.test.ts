import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey, type IssuedKey } from '../../src/auth/api-keys.ts';
import { SCOPES, type Scope } from '../../src/auth/scopes.ts';
import { createTenant } from '../../src/tenants/tenants.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startTestEngine, type TestEngine } from '../helpers/engine.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { startDnsServer, type TestDnsServer } from '../domains/dns-server.ts';
import { seedList } from '../jobs/helpers.ts';
import { ARTIFACTS, ensureChromium, launchBrowser } from './browser.ts';

/**
 * The dashboard in a real browser (Debian's Chromium driven by playwright-core) against the whole
 * engine: API, orchestration, dispatcher into an SMTP sink, DNS checks against a DNS server.
 * Screenshots of each page land in test/ui/artifacts/ (gitignored).
 */
const missing = ensureChromium();
if (missing) console.error(`\n\n!!!!! test/ui/dashboard.test.ts SKIPPED: no Chromium (${missing}) !!!!!\n\n`);

const ADMIN_TOKEN = 'operator-token-for-the-dashboard-test-0123456789';
let database: TestDatabase;
let engine: TestEngine;
let sink: SmtpSink;
let dns: TestDnsServer;
let browser: BrowserContext;
let page: Page;
const a = { tenantId: '', full: undefined as unknown as IssuedKey, viewOnly: undefined as unknown as IssuedKey, messageId: '', listId: '', templateId: '', campaignId: '', apiListId: '' };
const b = { tenantId: '', key: undefined as unknown as IssuedKey, messageId: '' };

async function seedMessage(tenantId: string, recipient: string, subject: string) {
  const { rows } = await database.db.query<{ id: string }>(
    `INSERT INTO messages (id, tenant_id, recipient, status, provider_message_id, created_at, sent_at)
     VALUES (uuid_v7(), $1, $2, 'delivered', 'prov-' || md5(random()::text), now() - interval '10 minutes', now() - interval '9 minutes') RETURNING id`,
    [tenantId, recipient],
  );
  await database.db.query(
    `INSERT INTO message_events (id, tenant_id, message_id, type, occurred_at, data) VALUES
       (uuid_v7(), $1, $2, 'send', now() - interval '9 minutes', '{}'),
       (uuid_v7(), $1, $2, 'delivery', now() - interval '8 minutes', '{"smtp_response": "250 2.0.0 ok"}')`,
    [tenantId, rows[0].id],
  );
  void subject;
  return rows[0].id;
}

const shot = (name: string, p: Page = page) => p.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });

async function signIn(secret: string, p: Page = page) {
  await p.goto(`${engine.baseUrl}/`);
  await p.waitForURL(/\/ui\/login/);
  await p.getByLabel(/API key/).fill(secret);
  await p.getByRole('button', { name: 'Sign in' }).click();
  await p.waitForLoadState();
  if (new URL(p.url()).pathname.startsWith('/ui/login')) throw new Error(`sign-in failed: ${await p.locator('body').innerText()}`);
}

async function signOut(p: Page = page) {
  await p.getByRole('button', { name: 'Sign out' }).click();
  await p.waitForURL(/\/ui\/login/);
}

describe.skipIf(missing !== undefined)('the dashboard in Chromium', () => {
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    database = await createTestDatabase();
    sink = await startSmtpSink();
    dns = await startDnsServer();
    engine = await startTestEngine(database.db, database.url, {
      smtpUrl: sink.url,
      env: { ADMIN_TOKEN, DNS_SERVERS: dns.address, REQUIRE_VERIFIED_DOMAIN: 'false', RATE_LIMIT_LIVE_PER_MINUTE: '100000' },
    });
    a.tenantId = (await createTenant(database.db, 'Acme')).id;
    b.tenantId = (await createTenant(database.db, 'Globex')).id;
    a.full = await createApiKey(database.db, a.tenantId, Object.keys(SCOPES) as Scope[], { environment: 'live', name: 'admin' });
    a.viewOnly = await createApiKey(database.db, a.tenantId, ['messages.view'], { environment: 'live', name: 'support' });
    b.key = await createApiKey(database.db, b.tenantId, Object.keys(SCOPES) as Scope[], { environment: 'live', name: 'globex admin' });
    a.messageId = await seedMessage(a.tenantId, 'reader@acme.test', 'Welcome');
    b.messageId = await seedMessage(b.tenantId, 'only-globex@globex.test', 'Globex news');
    // Thirty days of roll-ups, as the event trigger would have left them: the charts have a shape.
    await database.db.query(
      `INSERT INTO tenant_event_counters (tenant_id, day, sent, delivered, hard_bounced, soft_bounced, complained)
       SELECT $1, (now() AT TIME ZONE 'UTC')::date - d, 900 + (d * 37) % 400, 860 + (d * 37) % 380, d % 4, d % 3, (d % 5 = 0)::int
         FROM generate_series(1, 29) d
       ON CONFLICT (tenant_id, day) DO NOTHING`,
      [a.tenantId],
    );
    a.listId = (await seedList(database.db, a.tenantId, { count: 40, domain: 'readers.test' })).listId;
    browser = await launchBrowser();
    page = await browser.newPage();
    page.on('dialog', (d) => void d.accept());
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await engine?.close();
    await sink?.close();
    await dns?.close();
    await database?.drop();
  });

  it('signs in with an API key and shows the overview with charts from the roll-ups', async () => {
    await signIn(a.full.secret);
    await expect(page.getByRole('heading', { name: 'Overview' }).isVisible()).resolves.toBe(true);
    await page.locator('[data-chart="chart-volume"] canvas').waitFor();
    const thirty = await page.locator('[data-period="30"] .stat').first().innerText();
    expect(thirty).toMatch(/Sent\s+[\d,]{5,}/);
    await expect(page.getByText('Guardrail and quota').isVisible()).resolves.toBe(true);
    await shot('overview');
  });

  it('creates a domain, shows its DNS records, and verifies it once they are published', async () => {
    await page.getByRole('link', { name: 'Domains' }).click();
    await page.getByLabel('Add a sending domain').fill('news.acme.test');
    await page.getByRole('button', { name: 'Add domain' }).click();
    await page.getByRole('heading', { name: 'news.acme.test' }).waitFor();
    const rows = page.locator('tr[data-record]');
    expect(await rows.count()).toBeGreaterThanOrEqual(3);
    await expect(page.locator('tr[data-record="dkim"]').innerText()).resolves.toMatch(/TXT\s+\S+\._domainkey\.news\.acme\.test/);
    // Publish exactly what the page asks for, then press Verify.
    const { rows: records } = await database.db.query<{ id: string }>(`SELECT id FROM sending_domains WHERE name = 'news.acme.test'`);
    const view = await (await fetch(`${engine.baseUrl}/v1/domains/${records[0].id}`, { headers: { authorization: `Bearer ${a.full.secret}` } })).json();
    for (const r of view.dns_records) dns.add(r.name, r.type === 'MX' ? { type: 'MX', value: r.value, priority: r.priority } : { type: r.type, value: r.value });
    await shot('domain-records');
    await page.getByRole('button', { name: 'Verify now' }).click();
    await page.getByText('news.acme.test is verified.').waitFor();
    await expect(page.locator('tr[data-record="dkim"] .badge').innerText()).resolves.toBe('verified');
  });

  it('finds a message by recipient and opens its timeline', async () => {
    await page.getByRole('link', { name: 'Messages' }).click();
    await page.getByLabel('Recipient').fill('reader@acme.test');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL(/recipient=reader/);
    const links = page.locator('tbody a');
    expect(await links.count()).toBe(1);
    await links.first().click();
    await page.getByRole('heading', { name: 'Timeline' }).waitFor();
    const timeline = await page.locator('.timeline').innerText();
    expect(timeline).toMatch(/Send[\s\S]*Delivery/);
    expect(timeline).toContain('250 2.0.0 ok');
    await shot('message-timeline');
  });

  it('adds a suppression and removes it with a reason, both in the audit trail', async () => {
    await page.getByRole('link', { name: 'Suppressions' }).click();
    await page.getByLabel('Address', { exact: true }).fill('blocked@acme.test');
    await page.getByLabel('Comment').fill('asked by phone');
    await page.getByRole('button', { name: 'Suppress' }).click();
    await page.getByText('blocked@acme.test is suppressed.').waitFor();
    expect((await database.db.query(`SELECT reason FROM suppressions WHERE tenant_id = $1 AND email = 'blocked@acme.test'`, [a.tenantId])).rows).toEqual([{ reason: 'manual' }]);
    await shot('suppressions');
    await page.getByLabel('Why').fill('added by mistake');
    await page.getByRole('button', { name: 'Remove' }).click();
    await page.getByText('The suppression of blocked@acme.test is removed.').waitFor();
    expect((await database.db.query(`SELECT 1 FROM suppressions WHERE tenant_id = $1`, [a.tenantId])).rowCount).toBe(0);
    const audit = await database.db.query(`SELECT action, comment FROM suppression_audit WHERE tenant_id = $1 ORDER BY created_at`, [a.tenantId]);
    expect(audit.rows).toEqual([{ action: 'added', comment: 'asked by phone' }, { action: 'removed', comment: 'added by mistake' }]);
  });

  it('creates an API key and shows its secret once', async () => {
    await page.getByRole('link', { name: 'API keys' }).click();
    await page.getByLabel('Name').fill('reporting');
    await page.getByLabel('reports.view').check();
    await page.getByRole('button', { name: 'Create key' }).click();
    const secret = (await page.locator('#key-secret').innerText()).trim();
    expect(secret).toMatch(/^se_live_[A-Za-z0-9_-]{43}$/);
    await shot('key-created');
    // The secret works against the API, with exactly the scope chosen...
    const scopes = await (await fetch(`${engine.baseUrl}/v1/_scopes`, { headers: { authorization: `Bearer ${secret}` } })).json();
    expect(scopes.scopes).toEqual(['reports.view']);
    // ...and is never shown again.
    await page.goto(`${engine.baseUrl}/ui/keys`);
    expect(await page.content()).not.toContain(secret);
    await expect(page.locator('tbody').innerText()).resolves.toContain('reporting');
    await shot('keys');
  });

  it("watches a send job's progress bar reach completed", async () => {
    const res = await fetch(`${engine.baseUrl}/api/send-jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${a.full.secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ list_id: a.listId, name: 'November newsletter', subject: 'Hello', body_text: 'Hello {{ email }}', from: 'news@news.acme.test', rate_per_second: 8 }),
    });
    expect(res.status).toBe(200);
    const { send_job_id: jobId } = await res.json();
    await page.getByRole('link', { name: 'Send jobs' }).click();
    const progress = page.locator(`.job-progress[data-job="${jobId}"]`);
    await progress.waitFor();
    // Polled by htmx: the same element is replaced until the job is done; no page reload here.
    await page.locator(`.job-progress[data-job="${jobId}"][data-status="running"]`).waitFor({ timeout: 20_000 });
    await shot('send-jobs-running');
    await page.locator(`.job-progress[data-job="${jobId}"][data-status="completed"]`).waitFor({ timeout: 30_000 });
    await expect(progress.locator('progress').getAttribute('value')).resolves.toBe('40');
    expect(sink.messages.length).toBe(40);
    await shot('send-jobs');
    await page.getByRole('link', { name: 'November newsletter' }).click();
    await page.locator('[data-chart="chart-job"] canvas').waitFor();
    await shot('send-job-detail');
  });

  it('shows lists with their counts, and webhook endpoints with a secret shown once', async () => {
    await page.getByRole('link', { name: 'Lists' }).click();
    await page.locator(`a[href="/ui/lists/${a.listId}"]`).first().click();
    await expect(page.locator('.stat').first().innerText()).resolves.toMatch(/total\s+40/);
    await page.getByRole('link', { name: 'Webhooks' }).click();
    await page.getByLabel('URL (https)').fill('https://hooks.acme.example/send-engine');
    await page.getByLabel('message.bounced').check();
    await page.getByRole('button', { name: 'Add endpoint' }).click();
    await expect(page.locator('#endpoint-secret').innerText()).resolves.toMatch(/^whsec_/);
    await page.getByRole('link', { name: 'All endpoints' }).click();
    await shot('webhooks');
  });

  it('creates a template, saves a new version, and previews it rendered by the engine in a sandboxed frame', async () => {
    await page.getByRole('link', { name: 'Templates' }).click();
    await page.getByLabel('Name').fill('Welcome');
    await page.getByLabel('Subject (Liquid)').fill('Hello {{ first_name }}');
    await page.getByLabel('HTML body (Liquid)').fill('<h1>Welcome, {{ first_name }}!</h1>');
    await page.getByRole('button', { name: 'Create template' }).click();
    await page.waitForLoadState();
    // The page's text, so that a refusal (and its error code) shows in the failure.
    expect(await page.locator('body').innerText()).toContain('Template Welcome created (version 1).');
    a.templateId = new URL(page.url()).pathname.split('/').pop()!;
    // A script in the template must not run in the preview: the frame is sandboxed and the page's CSP stays.
    await page.getByLabel('HTML body (Liquid)').fill('<h1>Welcome aboard, {{ first_name }}!</h1><p>Plan: {{ plan | default: "free" }}</p><script>document.body.dataset.ran = "yes"</script>');
    await page.getByRole('button', { name: 'Save new version' }).click();
    await page.getByText('Saved as version 2.').waitFor();
    expect(await page.locator('tbody tr').count()).toBe(2);
    await page.getByLabel('Variables (JSON object)').fill('{"first_name": "Ada", "plan": "pro"}');
    const [response] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/preview')), page.getByRole('button', { name: 'Render preview' }).click()]);
    expect(response.headers()['content-security-policy']).toContain("script-src 'self'");
    await expect(page.locator('#preview-subject').innerText()).resolves.toBe('Hello Ada');
    const frame = page.frameLocator('iframe.preview-frame');
    await expect(frame.locator('h1').innerText()).resolves.toBe('Welcome aboard, Ada!');
    await expect(frame.locator('p').innerText()).resolves.toBe('Plan: pro');
    await expect(frame.locator('body').getAttribute('data-ran')).resolves.toBeNull();
    await expect(page.locator('iframe.preview-frame').getAttribute('sandbox')).resolves.toBe('');
    await shot('template-preview');
    // A variables field that is not a JSON object is refused, naming what it wants.
    await page.getByLabel('Variables (JSON object)').fill('[1, 2]');
    const refused = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/preview')), page.getByRole('button', { name: 'Render preview' }).click()]);
    expect(refused[0].status()).toBe(422);
    await expect(page.locator('main').innerText()).resolves.toContain('variables must be a JSON object');
    await page.goto(`${engine.baseUrl}/ui/templates`);
  });

  it('creates a campaign to a list from the stored template and watches its progress bar reach completed', async () => {
    const before = sink.messages.length;
    await page.getByRole('link', { name: 'Campaigns' }).click();
    await page.getByLabel('Name').fill('Winter campaign');
    await page.getByLabel('List', { exact: true }).selectOption(a.listId);
    await page.getByLabel('Stored template', { exact: true }).selectOption({ label: 'Welcome (v2)' });
    await page.getByLabel('From').fill('news@news.acme.test');
    await page.getByRole('button', { name: 'Create draft' }).click();
    await page.getByText('Draft saved').waitFor();
    a.campaignId = new URL(page.url()).pathname.split('/').pop()!;
    // A draft offers send now, schedule and cancel; never pause or resume.
    expect(await page.getByRole('button', { name: 'Pause' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Resume' }).count()).toBe(0);
    await expect(page.getByRole('button', { name: 'Cancel campaign' }).isVisible()).resolves.toBe(true);
    await shot('campaign-draft');
    await page.getByRole('button', { name: 'Send now' }).click();
    await page.getByText('Sending now.').waitFor();
    await page.getByRole('link', { name: 'Campaigns' }).click();
    const bar = page.locator(`.job-progress[data-campaign="${a.campaignId}"]`);
    await bar.waitFor();
    // Polled by htmx on the list, no reload: the same element is replaced until the campaign ends.
    await page.locator(`.job-progress[data-campaign="${a.campaignId}"][data-status="completed"]`).waitFor({ timeout: 60_000 });
    await expect(bar.locator('progress').getAttribute('value')).resolves.toBe('40');
    await shot('campaigns');
    const arrived = await sink.waitFor(before + 40, 30_000);
    const ours = arrived.slice(before);
    expect(ours.filter((m) => /^Hello/.test(m.parsed.subject ?? '')).length).toBe(40);
    expect(String(ours[0].parsed.html)).toContain('Welcome aboard');
    // The messages page finds the campaign's messages by their tag, and only those.
    await page.getByRole('link', { name: 'Messages' }).click();
    await page.getByLabel('Tag (name:value)').fill(`campaign_id:${a.campaignId}`);
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL(/tag=campaign_id/);
    expect(await page.locator('tbody tr').count()).toBe(40);
    await page.getByRole('link', { name: 'Campaigns' }).click();
    await page.getByRole('link', { name: 'Winter campaign' }).click();
    await expect(page.locator('[data-counter="sent"] .value').innerText()).resolves.toBe('40');
    await expect(page.locator('[data-counter="total"] .value').innerText()).resolves.toBe('40');
    // Completed: no action is offered any more.
    for (const name of ['Send now', 'Pause', 'Resume', 'Cancel campaign']) expect(await page.getByRole('button', { name }).count(), name).toBe(0);
    await shot('campaign-detail');
  });

  it("offers only the actions a campaign's status allows: schedule, pause, resume, cancel", async () => {
    const res = await fetch(`${engine.baseUrl}/v1/campaigns`, {
      method: 'POST', headers: { authorization: `Bearer ${a.full.secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Spring campaign', list_id: a.listId, subject: 'Spring', html: '<p>Spring</p>', from: 'news@news.acme.test' }),
    });
    expect(res.status).toBe(201);
    const { id } = await res.json();
    await page.goto(`${engine.baseUrl}/ui/campaigns/${id}`);
    const buttons = async () => (await page.locator('main .actions button').allInnerTexts()).map((t) => t.trim());
    expect(await buttons()).toEqual(['Send now', 'Schedule', 'Cancel campaign']);
    const at = new Date(Date.now() + 2 * 86_400_000).toISOString().slice(0, 16);
    await page.getByLabel('Send at (UTC)').fill(at);
    await page.getByRole('button', { name: 'Schedule', exact: true }).click();
    await page.getByText(`Scheduled for ${at}:00Z.`).waitFor();
    expect(await buttons()).toEqual(['Send now', 'Schedule', 'Pause', 'Cancel campaign']);
    await page.getByRole('button', { name: 'Pause' }).click();
    await page.getByText('Paused: nothing more is sent until you resume.').waitFor();
    expect(await buttons()).toEqual(['Resume', 'Cancel campaign']);
    await page.getByRole('button', { name: 'Resume' }).click();
    await page.getByText('Resumed.').waitFor();
    expect(await buttons()).toEqual(['Send now', 'Schedule', 'Pause', 'Cancel campaign']);
    await page.getByRole('button', { name: 'Cancel campaign' }).click();
    await page.getByText('Campaign cancelled').waitFor();
    expect(await buttons()).toEqual([]);
    await expect(page.locator('.job-progress').getAttribute('data-status')).resolves.toBe('cancelled');
    const api = await (await fetch(`${engine.baseUrl}/v1/campaigns/${id}`, { headers: { authorization: `Bearer ${a.full.secret}` } })).json();
    expect(api).toMatchObject({ status: 'cancelled', scheduled_at: `${at}:00.000Z` });
  });

  it("adds a contact, imports a CSV file with progress to done, sets double opt-in; a Member Center list is read-only", async () => {
    const created = await fetch(`${engine.baseUrl}/v1/lists`, {
      method: 'POST', headers: { authorization: `Bearer ${a.full.secret}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Newsletter readers' }),
    });
    expect(created.status).toBe(201);
    a.apiListId = (await created.json()).id;
    await page.getByRole('link', { name: 'Lists' }).click();
    await page.getByRole('link', { name: `Contacts of list ${a.apiListId}` }).click();
    await page.getByRole('heading', { name: 'Contacts of Newsletter readers' }).waitFor();
    await page.getByLabel('Email', { exact: true }).last().fill('grace@readers.test');
    await page.getByLabel('First name').fill('Grace');
    await page.getByRole('button', { name: 'Add contact' }).click();
    await page.getByText('grace@readers.test added (active).').waitFor();
    // 12,000 rows (three batches) and one that is not an address.
    const file = path.join(ARTIFACTS, 'contacts.csv');
    writeFileSync(file, ['email,first_name,city', ...Array.from({ length: 12_000 }, (_, i) => `reader${i}@import.test,R${i},Oslo`), 'not-an-address,X,Y', 'grace@readers.test,Grace,Rome'].join('\n'));
    await page.getByLabel('CSV file').setInputFiles(file);
    await page.getByRole('button', { name: 'Import' }).click();
    const done = page.locator('#import-status .import-progress[data-status="completed"]');
    await done.waitFor({ timeout: 60_000 });
    await expect(done.locator('.import-counts').innerText()).resolves.toBe('12002 rows read: 12000 created, 1 updated, 1 invalid');
    await expect(done.locator('progress').getAttribute('value')).resolves.toBe('12002');
    await shot('contacts-import');
    const { rows } = await database.db.query<{ n: number; city: string }>(
      `SELECT count(*)::int AS n, min(properties->>'city') AS city FROM subscribers WHERE tenant_id = $1 AND list_id = $2`, [a.tenantId, a.apiListId]);
    expect(rows[0]).toEqual({ n: 12_001, city: 'Oslo' });
    // Search by email, filter by status.
    await page.goto(`${engine.baseUrl}/ui/lists/${a.apiListId}/contacts?email=reader42@import.test`);
    expect(await page.locator('tbody tr').count()).toBe(1);
    await expect(page.locator('tbody').innerText()).resolves.toContain('R42');
    await page.goto(`${engine.baseUrl}/ui/lists/${a.apiListId}/contacts?status=unsubscribed`);
    await expect(page.locator('main').innerText()).resolves.toContain('No contacts match.');
    await page.goto(`${engine.baseUrl}/ui/lists/${a.apiListId}/contacts`);
    await expect(page.getByRole('link', { name: 'More contacts →' }).isVisible()).resolves.toBe(true);
    // Double opt-in: refused without {{ confirm_url }}, then saved.
    await page.getByLabel('New contacts confirm by email before they receive mail').check();
    await page.getByLabel('Subject', { exact: true }).fill('Please confirm');
    await page.getByLabel('HTML (must contain {{ confirm_url }})').fill('<a href="{{ confirm_url }}">Confirm</a>');
    await page.getByRole('button', { name: 'Save double opt-in' }).click();
    await page.getByText('Double opt-in on.').waitFor();
    const list = await database.db.query(`SELECT double_opt_in FROM lists WHERE id = $1`, [a.apiListId]);
    expect(list.rows[0].double_opt_in).toEqual({ enabled: true, subject: 'Please confirm', html: '<a href="{{ confirm_url }}">Confirm</a>' });
    // The Member Center's list: no forms, the reason shown.
    await page.goto(`${engine.baseUrl}/ui/lists/${a.listId}/contacts`);
    await expect(page.locator('main').innerText()).resolves.toContain("written by the Member Center's signed webhooks");
    expect(await page.locator('main form[method=post]').count()).toBe(0);
  });

  it('every page: each control has a label, the first Tab reaches the skip link, which moves focus to the content', async () => {
    const pages = ['/', '/ui/jobs', '/ui/messages', `/ui/messages/${a.messageId}`, '/ui/templates', `/ui/templates/${a.templateId}`, '/ui/campaigns', `/ui/campaigns/${a.campaignId}`, '/ui/lists', `/ui/lists/${a.listId}`, `/ui/lists/${a.apiListId}/contacts`, `/ui/lists/${a.listId}/contacts`, '/ui/domains', '/ui/suppressions', '/ui/webhooks', '/ui/keys'];
    for (const path of pages) {
      await page.goto(`${engine.baseUrl}${path}`);
      const unlabeled = await page.evaluate(() =>
        [...document.querySelectorAll<HTMLInputElement>('input:not([type=hidden]), select, textarea, button')]
          .filter((el) => !(el.labels?.length || el.getAttribute('aria-label') || (el.tagName === 'BUTTON' && el.textContent?.trim())))
          .map((el) => el.outerHTML.slice(0, 120)),
      );
      expect(unlabeled, path).toEqual([]);
      await page.keyboard.press('Tab');
      expect(await page.evaluate(() => document.activeElement?.textContent), path).toBe('Skip to content');
      await page.keyboard.press('Enter');
      expect(await page.evaluate(() => document.activeElement?.id), path).toBe('main');
    }
  });

  it('signs out: the dashboard asks for a key again', async () => {
    await signOut();
    await page.goto(`${engine.baseUrl}/ui/messages`);
    await page.waitForURL(/\/ui\/login\?next=%2Fui%2Fmessages/);
    await shot('login');
  });

  it("a tenant's key sees only its own tenant's data", async () => {
    await signIn(b.key.secret);
    await page.goto(`${engine.baseUrl}/ui/messages`);
    const text = await page.locator('main').innerText();
    expect(text).toContain('only-globex@globex.test');
    expect(text).not.toContain('reader@acme.test');
    const other = await page.goto(`${engine.baseUrl}/ui/messages/${a.messageId}`);
    expect(other?.status()).toBe(404);
    expect(await page.locator('main').innerText()).not.toContain('reader@acme.test');
    expect((await page.goto(`${engine.baseUrl}/ui/lists/${a.listId}`))?.status()).toBe(404);
    // Another tenant's campaign, template and list ids are not found, never shown.
    for (const path of [`/ui/campaigns/${a.campaignId}`, `/ui/campaigns/${a.campaignId}/progress`, `/ui/templates/${a.templateId}`, `/ui/lists/${a.apiListId}/contacts`, `/ui/lists/${a.apiListId}/import-progress`]) {
      expect((await page.goto(`${engine.baseUrl}${path}`))?.status(), path).toBe(404);
      expect(await page.locator('body').innerText(), path).not.toMatch(/Winter campaign|Welcome aboard|Newsletter readers/);
    }
    await expect(page.locator('body').innerText()).resolves.toContain(`list ${a.apiListId} not found`);
    await page.goto(`${engine.baseUrl}/ui/campaigns/${a.campaignId}`);
    await expect(page.locator('body').innerText()).resolves.toContain(`campaign ${a.campaignId} not found`);
    await page.goto(`${engine.baseUrl}/ui/messages`);
    await signOut();
  });

  it('a key without a scope has no link to the page and a 403 page when it goes there', async () => {
    await signIn(a.viewOnly.secret);
    // No reports.view: it lands on the first page it may open.
    expect(new URL(page.url()).pathname).toBe('/ui/messages');
    const nav = await page.getByRole('navigation').innerText();
    expect(nav).toContain('Messages');
    expect(nav).not.toContain('API keys');
    const keys = await page.goto(`${engine.baseUrl}/ui/keys`);
    expect(keys?.status()).toBe(403);
    expect(await page.locator('main').innerText()).toContain('this page needs the scope keys.manage');
    expect(nav).not.toContain('Templates');
    expect((await page.goto(`${engine.baseUrl}/ui/templates`))?.status()).toBe(403);
    expect(await page.locator('main').innerText()).toContain('this page needs the scope templates.view');
    expect((await page.goto(`${engine.baseUrl}/ui/templates/${a.templateId}`))?.status()).toBe(403);
    // The overview needs reports.view too; the masked address, not the full one, on the messages page.
    expect((await page.goto(`${engine.baseUrl}/`))?.status()).toBe(403);
    // The seeded message is the tenant's only transactional one (the campaign and the send job sent newsletters).
    await page.goto(`${engine.baseUrl}/ui/messages?channel=transactional`);
    expect(await page.locator('main').innerText()).toContain('r***@acme.test');
    await shot('forbidden-scope-messages');
    await page.goto(`${engine.baseUrl}/ui/messages`);
    await signOut();
  });

  it('the operator sees every tenant and switches between them', async () => {
    await signIn(ADMIN_TOKEN);
    await page.getByLabel('Tenant').selectOption({ label: 'Globex' });
    await page.getByRole('button', { name: 'Switch' }).click();
    await page.goto(`${engine.baseUrl}/ui/messages`);
    expect(await page.locator('main').innerText()).toContain('only-globex@globex.test');
    await page.getByLabel('Tenant').selectOption({ label: 'Acme' });
    await page.getByRole('button', { name: 'Switch' }).click();
    await page.goto(`${engine.baseUrl}/ui/messages?channel=transactional`);
    expect(await page.locator('main').innerText()).toContain('reader@acme.test');
    await signOut();
  });

  it('is usable on a phone', async () => {
    const phone = await launchBrowser({ width: 390, height: 844 });
    try {
      const p = await phone.newPage();
      await signIn(a.full.secret, p);
      await p.locator('[data-chart="chart-volume"] canvas').waitFor();
      // Nothing wider than the screen: no sideways scrolling of the page itself.
      expect(await p.evaluate(() => document.documentElement.scrollWidth), await p.evaluate(() => [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > 390).slice(0, 5).map((e) => `${e.tagName}.${e.className}`).join(' '))).toBeLessThanOrEqual(390);
      await shot('overview-phone', p);
      // The new pages too: forms, tables and the preview frame fit the screen.
      for (const path of [`/ui/templates/${a.templateId}`, '/ui/campaigns', `/ui/campaigns/${a.campaignId}`, `/ui/lists/${a.apiListId}/contacts`]) {
        await p.goto(`${engine.baseUrl}${path}`);
        expect(await p.evaluate(() => document.documentElement.scrollWidth), path).toBeLessThanOrEqual(390);
      }
      await shot('contacts-phone', p);
    } finally {
      await phone.close();
    }
  });
});
