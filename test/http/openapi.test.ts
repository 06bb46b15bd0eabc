import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { call, startTestApp, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

/** The contract operations this engine implements; each must be served as the contract says. */
const IMPLEMENTED = [
  'post /v1/send-jobs',
  'post /api/send-jobs',
  'get /api/send-jobs/{id}',
  'post /api/send-jobs/{id}/cancel',
  'post /webhooks/subscriptions',
  'post /webhooks/lists/full-sync',
  'post /webhooks/ses',
];

// The contract lives in the platform's shared folder beside this repository; spec/ holds a copy so a
// clone tested anywhere (CI) checks the same contract. A test below keeps the copy identical.
const SHARED_CONTRACT = path.resolve('../shared/spec/send-engine.openapi.yaml');
const VENDORED_CONTRACT = path.resolve('spec/send-engine.openapi.yaml');
const CONTRACT_PATH = process.env.SEND_ENGINE_CONTRACT ?? (existsSync(SHARED_CONTRACT) ? SHARED_CONTRACT : VENDORED_CONTRACT);
type Schema = Record<string, any>;

let database: TestDatabase;
let api: TestApp;
let contract: Schema;
let served: Schema;

beforeAll(async () => {
  if (!existsSync(CONTRACT_PATH)) throw new Error(`contract not found at ${CONTRACT_PATH} (set SEND_ENGINE_CONTRACT)`);
  contract = parse(readFileSync(CONTRACT_PATH, 'utf8'));
  database = await createTestDatabase();
  api = await startTestApp(database.db, database.url);
  served = (await call(api.baseUrl, 'GET', '/openapi.json')).json;
});
afterAll(async () => {
  await api?.close();
  await database?.drop();
});

function resolve(doc: Schema, schema: Schema | undefined): Schema | undefined {
  if (!schema?.$ref) return schema;
  const ref = schema.$ref as string;
  if (ref.startsWith('#/')) return resolve(doc, ref.slice(2).split('/').reduce((node: Schema, key) => node?.[key], doc));
  // @fastify/swagger names shared schemas by $id, e.g. "ErrorResponse#" -> def-0 style components.
  const name = ref.replace(/#$/, '');
  const components = doc.components?.schemas ?? {};
  return resolve(doc, Object.values(components).find((c: any) => c.$id === name || c.title === name) as Schema);
}

/** Differences where our schema accepts or promises something the contract's does not. */
function differences(contractSchema: Schema | undefined, ours: Schema | undefined, where: string): string[] {
  const c = resolve(contract, contractSchema);
  const o = resolve(served, ours);
  if (!c) return [];
  if (!o) return [`${where}: missing`];
  const out: string[] = [];
  for (const key of ['type', 'format', 'enum', 'minItems', 'minLength', 'minimum']) {
    if (c[key] !== undefined && JSON.stringify(c[key]) !== JSON.stringify(o[key])) out.push(`${where}.${key}: contract ${JSON.stringify(c[key])}, served ${JSON.stringify(o[key])}`);
  }
  const cRequired = [...(c.required ?? [])].sort();
  const oRequired = [...(o.required ?? [])].sort();
  if (JSON.stringify(cRequired) !== JSON.stringify(oRequired)) out.push(`${where}.required: contract ${cRequired}, served ${oRequired}`);
  for (const [name, prop] of Object.entries((c.properties ?? {}) as Record<string, Schema>)) {
    out.push(...differences(prop, o.properties?.[name], `${where}.${name}`));
  }
  if (c.items) out.push(...differences(c.items, o.items, `${where}[]`));
  return out;
}

describe('/openapi.json against the contract', () => {
  it.runIf(!process.env.SEND_ENGINE_CONTRACT)('checks spec/, an exact copy of the shared contract where that is beside the repo', () => {
    const vendored = readFileSync(VENDORED_CONTRACT, 'utf8');
    if (existsSync(SHARED_CONTRACT)) expect(vendored).toBe(readFileSync(SHARED_CONTRACT, 'utf8'));
    expect(parse(vendored)).toEqual(contract);
  });

  it('every operation of the contract is implemented', () => {
    const all = Object.entries(contract.paths).flatMap(([route, ops]) => Object.keys(ops as Schema).map((m) => `${m} ${route}`));
    expect(all.sort()).toEqual([...IMPLEMENTED].sort());
  });

  it('serves OpenAPI 3.1 with every implemented contract operation', () => {
    expect(served.openapi).toMatch(/^3\.1/);
    for (const op of IMPLEMENTED) {
      const [method, route] = op.split(' ');
      expect(served.paths?.[route]?.[method], op).toBeDefined();
    }
  });

  it.each(IMPLEMENTED)('%s: request schema and response codes match the contract', (op) => {
    const [method, route] = op.split(' ');
    const c = contract.paths[route][method];
    const o = served.paths[route][method];
    const cBody = c.requestBody?.content?.['application/json']?.schema;
    const oBody = o.requestBody?.content?.['application/json']?.schema;
    expect(differences(cBody, oBody, 'body')).toEqual([]);
    const missingCodes = Object.keys(c.responses).filter((code) => !(code in o.responses));
    expect(missingCodes).toEqual([]);
    const cOk = c.responses['200']?.content?.['application/json']?.schema;
    expect(differences(cOk, o.responses['200']?.content?.['application/json']?.schema, 'response 200')).toEqual([]);
  });
});
