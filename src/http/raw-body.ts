import type { FastifyInstance } from 'fastify';
import { badRequest } from './errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The body's exact bytes, for routes that verify a signature over them. */
    rawBody?: Buffer;
  }
}

/**
 * Within the calling plugin's scope only: JSON bodies are kept as raw bytes (signatures are
 * computed over bytes, never over re-serialised JSON) and parsed afterwards.
 */
export function keepRawJsonBody(app: FastifyInstance) {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(['application/json', 'text/plain'], { parseAs: 'buffer' }, (request, body, done) => {
    const raw = body as Buffer;
    request.rawBody = raw;
    try {
      done(null, raw.length ? JSON.parse(raw.toString('utf8')) : undefined);
    } catch {
      done(badRequest('body is not valid JSON'), undefined);
    }
  });
}
