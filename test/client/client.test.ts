import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSendEngineClient } from '../../src/index.ts';
import { generateClientTypes, SCHEMA_FILE } from '../../src/client/generate.ts';
import { tenantWithToken } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startTestEngine, type TestEngine } from '../helpers/engine.ts';

/** The package's typed client (src/client/), against a running engine; its generated types stay current. */
let database: TestDatabase;
let engine: TestEngine;
let token: string;
let other: string;

beforeAll(async () => {
  database = await createTestDatabase();
  engine = await startTestEngine(database.db, database.url);
  token = (await tenantWithToken(database.db, ['lists.view', 'lists.manage', 'jobs.manage'])).token;
  other = (await tenantWithToken(database.db, ['lists.view', 'lists.manage', 'jobs.manage'], 'other')).token;
});
afterAll(async () => {
  await engine?.close();
  await database?.drop();
});

describe('typed client', () => {
  it('src/client/schema.ts is what /openapi.json generates (run npm run generate:client when this fails)', async () => {
    expect(await readFile(SCHEMA_FILE, 'utf8')).toBe(await generateClientTypes());
  });

  it('creates a list, adds a contact, creates a campaign and reads it back', async () => {
    const se = createSendEngineClient({ baseUrl: engine.baseUrl, token });
    const list = await se.POST('/v1/lists', { body: { name: 'Client readers' } });
    expect(list.response.status).toBe(201);
    const listId = list.data!.id;
    const contact = await se.POST('/v1/lists/{id}/contacts', { params: { path: { id: listId } }, body: { email: 'reader@client.test', first_name: 'Rea' } });
    expect(contact.data).toMatchObject({ email: 'reader@client.test', status: 'active' });
    const campaign = await se.POST('/v1/campaigns', { body: { name: 'From the client', list_id: listId, subject: 'Hi {{ contact.first_name }}', text: 'Hello' } });
    expect(campaign.response.status).toBe(201);
    const read = await se.GET('/v1/campaigns/{id}', { params: { path: { id: campaign.data!.id } } });
    expect(read.data).toMatchObject({ id: campaign.data!.id, status: 'draft', list_id: listId, counters: { total: 0 } });
    const contacts = await se.GET('/v1/lists/{id}/contacts', { params: { path: { id: listId }, query: { email: 'reader@client.test' } } });
    expect(contacts.data!.data.map((c) => c.first_name)).toEqual(['Rea']);

    // Errors come back typed too: another tenant's campaign is a 404 with our error body.
    const stranger = createSendEngineClient({ baseUrl: engine.baseUrl, token: other });
    const hidden = await stranger.GET('/v1/campaigns/{id}', { params: { path: { id: campaign.data!.id } } });
    expect(hidden.response.status).toBe(404);
    expect(hidden.error).toMatchObject({ error: 'not_found' });
  });
});
