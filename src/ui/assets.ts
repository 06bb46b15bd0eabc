import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/**
 * Everything the dashboard loads, served by the engine itself (no CDN: it works offline): htmx and
 * uPlot from their npm packages, and our stylesheet and script. Read once, at start.
 */
function load(file: string, type: string): Asset {
  const body = readFileSync(file);
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"` };
}

let cache: Record<string, Asset> | undefined;

export function dashboardAssets(): Record<string, Asset> {
  cache ??= {
    'htmx.min.js': load(require.resolve('htmx.org/dist/htmx.min.js'), 'text/javascript; charset=utf-8'),
    'uPlot.iife.min.js': load(require.resolve('uplot/dist/uPlot.iife.min.js'), 'text/javascript; charset=utf-8'),
    'uPlot.min.css': load(require.resolve('uplot/dist/uPlot.min.css'), 'text/css; charset=utf-8'),
    'app.css': load(new URL('./assets/app.css', import.meta.url).pathname, 'text/css; charset=utf-8'),
    'app.js': load(new URL('./assets/app.js', import.meta.url).pathname, 'text/javascript; charset=utf-8'),
  };
  return cache;
}
