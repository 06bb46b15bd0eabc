import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { AppDeps } from '../http/app.ts';
import { clientError, HttpError } from '../http/errors.ts';
import type { TemplateRenderer } from '../templates/templates.ts';
import { postmarkRoutes } from './postmark/routes.ts';
import { resendRoutes } from './resend/routes.ts';

export type CompatDeps = AppDeps & { renderer: TemplateRenderer };

/**
 * Resend and Postmark both keep their paths at the root and meet there (`/webhooks`, `/domains`,
 * `/templates`). A router constraint picks the layer by the credential's header before any route
 * runs: `X-Postmark-Server-Token` is Postmark's, anything else (`Authorization: Bearer`) Resend's.
 * Unconstrained routes (the native API) still match whatever the header, and a path neither layer
 * has falls through to them, so no root path shadows `/v1/…`, `/api/…` or `/webhooks/ses`.
 */
type Layer = 'resend' | 'postmark';
const LAYER = 'compatLayer';
const layerByCredential: Parameters<FastifyInstance['addConstraintStrategy']>[0] = {
  name: LAYER,
  storage() {
    const handlers = new Map<Layer, unknown>();
    return { get: (layer: Layer) => (handlers.get(layer) ?? null) as never, set: (layer: Layer, store: unknown) => void handlers.set(layer, store) };
  },
  deriveConstraint: (req: { headers: Record<string, unknown> }): Layer => (req.headers['x-postmark-server-token'] !== undefined ? 'postmark' : 'resend'),
  mustMatchWhenDerived: false,
};

const LAYERS: Array<[Layer, FastifyPluginAsync<CompatDeps>]> = [['resend', resendRoutes], ['postmark', postmarkRoutes]];

/** Each layer twice: under `/compat/<provider>` (any SDK accepts a base URL with a path), and at the root by credential header. */
export async function resendAndPostmarkRoutes(app: FastifyInstance, deps: CompatDeps) {
  app.addConstraintStrategy(layerByCredential);
  for (const [layer, routes] of LAYERS) {
    await app.register(routes, { ...deps, prefix: `/compat/${layer}` });
    await app.register(async (root) => {
      root.addHook('onRoute', (route) => {
        route.constraints = { ...route.constraints, [LAYER]: layer };
        // /openapi.json documents each layer once, under its prefix.
        route.schema = { ...route.schema, hide: true };
      });
      await root.register(routes, deps);
    });
  }
}

/** Something the provider has and we cannot do: its "not supported" error, naming the field. */
export const notSupported = (field: string, why = 'not supported by Send Engine') => new HttpError(422, 'not_supported', `${field}: ${why}`);

/** `Name <address>` is not something our sends carry: refused rather than the name dropped. */
export function bareAddress(field: string, value: string): string {
  if (/<[^>]*>/.test(value)) throw notSupported(field, 'display names ("Name <address>") are not supported by Send Engine; give the bare address');
  return value.trim();
}

/** The request's path below the layer's prefix ("/compat/resend/emails/x" and "/emails/x" are both "/emails/x"). */
export const layerPath = (request: FastifyRequest) => request.url.split('?')[0].replace(/^\/compat\/(resend|postmark)(?=\/|$)/, '') || '/';

/** A thrown error as the HttpError a layer shapes into its provider's body: ours, or a logged 500. */
export function compatError(err: Error, request: FastifyRequest): HttpError {
  const known = clientError(err);
  if (known) return known;
  request.log.error({ err }, 'unhandled error');
  return new HttpError(500, 'internal_error', 'internal error');
}
