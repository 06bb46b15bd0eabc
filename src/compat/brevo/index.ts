import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../../http/app.ts';
import type { TemplateRenderer } from '../../templates/templates.ts';
import { campaignRoutes } from './campaigns.ts';
import { channelRoutes } from './channels.ts';
import { contactRoutes } from './contacts.ts';
import { domainRoutes } from './domains.ts';
import { emailRoutes } from './email.ts';
import { BrevoError, brevoErrorHandler } from './errors.ts';
import { templateRoutes } from './templates.ts';
import { webhookRoutes } from './webhooks.ts';

export type BrevoDeps = AppDeps & { renderer: TemplateRenderer };

/** Brevo's paths (relative to its base URL, `…/v3`) onto the native functions; errors in Brevo's shape. */
async function brevoApi(app: FastifyInstance, opts: BrevoDeps & { prefix?: string }) {
  // The options carry this plugin's prefix: the routes below must not get it a second time.
  const { prefix: _prefix, ...deps } = opts;
  app.setErrorHandler(brevoErrorHandler);
  await app.register(emailRoutes, deps);
  await app.register(templateRoutes, deps);
  await app.register(webhookRoutes, deps);
  await app.register(domainRoutes, deps);
  await app.register(channelRoutes, deps);
  await app.register(contactRoutes, deps);
  await app.register(campaignRoutes, deps);
}

/**
 * The Brevo layer at `/v3` (Brevo's own base path: only its exact routes, so SendGrid's
 * `/v3/mail/send` and the app's 404 stay as they are) and at `/compat/brevo/v3`, which is ours
 * alone and so also answers unknown paths in Brevo's shape.
 */
export async function brevoCompat(app: FastifyInstance, deps: BrevoDeps) {
  await app.register(brevoApi, { ...deps, prefix: '/v3' });
  await app.register(
    async (scoped, opts: BrevoDeps & { prefix?: string }) => {
      // The same operations as under /v3: /openapi.json lists them once (docs/compat/brevo.md names both base URLs).
      scoped.addHook('onRoute', (route) => {
        route.schema = { ...route.schema, hide: true };
      });
      scoped.setNotFoundHandler((request, reply) =>
        brevoErrorHandler(new BrevoError(404, 'document_not_found', `route ${request.method} ${request.url.split('?')[0]} not found`, 'not_found'), request, reply),
      );
      await brevoApi(scoped, opts);
    },
    { ...deps, prefix: '/compat/brevo/v3' },
  );
}
