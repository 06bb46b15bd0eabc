/**
 * A typed client for the Send Engine API: paths, bodies and answers typed from /openapi.json
 * (src/client/schema.ts, generated), calls made by openapi-fetch.
 *
 *   const se = createSendEngineClient({ baseUrl: 'http://127.0.0.1:3000', token: process.env.SE_TOKEN! });
 *   const { data, error } = await se.POST('/v1/lists', { body: { name: 'Readers' } });
 */
import createClient, { type Client } from 'openapi-fetch';
import type { paths } from './schema.ts';

export type { components, paths } from './schema.ts';
export type SendEngineClient = Client<paths>;

export function createSendEngineClient(options: { baseUrl: string; token: string; fetch?: typeof fetch }): SendEngineClient {
  return createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/$/, ''),
    headers: { authorization: `Bearer ${options.token}` },
    ...(options.fetch && { fetch: options.fetch }),
  });
}
