#!/usr/bin/env node
// npm's `prepare` (run by `npm install` / `npm ci` in a checkout): bundles the engine's TypeScript into
// dist/ with esbuild, so `send-engine` runs plain JavaScript instead of compiling through tsx in every
// process and every render thread (docs/operations.md#memory). bin/send-engine.mjs uses the bundle only
// while it is newer than everything under src/, else it runs the sources through tsx as before.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SRC = path.join(ROOT, 'src');
// `node bin/build.mjs [outdir]`: dist/ unless told (a test builds elsewhere).
const DIST = process.argv[2] ? path.resolve(process.argv[2]) : path.join(ROOT, 'dist');

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  // A bundle is an optimisation: without esbuild the engine still runs (through tsx).
  console.warn('send-engine build: esbuild is not installed; the engine will run its sources through tsx');
  process.exit(0);
}

// Sources find their data files (migrations, dashboard assets, the checkout's root) relative to
// import.meta.url; in the bundle that would be dist/cli.mjs, so each source's import.meta.url is
// replaced by its own file's URL, computed from the bundle's location at run time.
const sourceUrls = {
  name: 'source-import-meta-url',
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, async (args) => {
      if (!args.path.startsWith(SRC + path.sep)) return undefined;
      const text = await readFile(args.path, 'utf8');
      if (!text.includes('import.meta.url')) return { contents: text, loader: 'ts' };
      const relative = path.relative(DIST, args.path).split(path.sep).join('/');
      return { contents: text.replaceAll('import.meta.url', `new URL(${JSON.stringify(relative)}, import.meta.url).href`), loader: 'ts' };
    });
  },
};

await esbuild.build({
  entryPoints: { cli: path.join(SRC, 'cli.ts'), 'render-worker': path.join(SRC, 'jobs/render-worker.ts') },
  outdir: DIST,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  // npm packages stay in node_modules, loaded by Node as usual: only our TypeScript is compiled.
  packages: 'external',
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // src/jobs/render.ts starts its threads on the bundled entry beside the bundle (plain JS), not on
  // src/jobs/render-worker.mjs (which registers tsx).
  define: { RENDER_WORKER_BUNDLE: '__renderWorkerBundle' },
  banner: { js: "const __renderWorkerBundle = new URL('./render-worker.mjs', import.meta.url).href;" },
  plugins: [sourceUrls],
  logLevel: 'warning',
});
