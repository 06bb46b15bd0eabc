import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshBundle } from '../../bin/bundle.mjs';
import { v8Defaults } from '../../bin/v8-flags.mjs';

const run = promisify(execFile);
const ROOT = path.resolve('.');

/**
 * A checkout in miniature: the real launcher (bin/send-engine.mjs, bin/bundle.mjs) and node_modules,
 * a src/cli.ts that only tsx can run (a type annotation) and a dist/cli.mjs that says so.
 */
let root: string;
const file = (relative: string, text: string) => {
  mkdirSync(path.dirname(path.join(root, relative)), { recursive: true });
  writeFileSync(path.join(root, relative), text);
};
/** Sets a file's (or directory's) modification time, seconds from now. */
const age = (relative: string, seconds: number) => {
  const t = Date.now() / 1000 + seconds;
  utimesSync(path.join(root, relative), t, t);
};
const launch = async () => (await run(process.execPath, [path.join(root, 'bin/send-engine.mjs')], { timeout: 60_000 })).stdout.trim();

beforeAll(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'se-launcher-'));
  for (const name of ['send-engine.mjs', 'bundle.mjs', 'v8-flags.mjs']) {
    mkdirSync(path.join(root, 'bin'), { recursive: true });
    copyFileSync(path.join(ROOT, 'bin', name), path.join(root, 'bin', name));
  }
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(root, 'node_modules'));
  file('package.json', JSON.stringify({ type: 'module' }));
  file('bin/build.mjs', '');
  file('src/cli.ts', "const runtime: string = 'tsx';\nconsole.log(runtime);\n");
  file('src/jobs/render.ts', 'export {};\n');
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Everything the bundle is built from is older than it; then one test changes one thing. */
function builtNow() {
  file('dist/cli.mjs', "console.log('bundle');\n");
  file('dist/render-worker.mjs', 'export default () => {};\n');
  for (const p of ['bin/build.mjs', 'src/cli.ts', 'src/jobs/render.ts', 'src/jobs', 'src']) age(p, -60);
}

describe('bin/send-engine.mjs runs the bundle only while it is up to date with src/', () => {
  it('a bundle newer than every source runs, as plain JavaScript', async () => {
    builtNow();
    expect(freshBundle(root)).toBe(path.join(root, 'dist/cli.mjs'));
    expect(await launch()).toBe('bundle');
  });

  it('a source edited after the build: the sources run through tsx', async () => {
    builtNow();
    age('src/jobs/render.ts', 5);
    expect(freshBundle(root)).toBeNull();
    expect(await launch()).toBe('tsx');
  });

  it('a source file removed after the build (its directory changed): tsx', async () => {
    builtNow();
    file('src/jobs/gone.ts', 'export {};\n');
    age('src/jobs/gone.ts', -60);
    unlinkSync(path.join(root, 'src/jobs/gone.ts'));
    age('src/jobs', 5);
    expect(freshBundle(root)).toBeNull();
    expect(await launch()).toBe('tsx');
  });

  it('the build script changed after the build: tsx', async () => {
    builtNow();
    age('bin/build.mjs', 5);
    expect(freshBundle(root)).toBeNull();
  });

  it('no bundle, or half of one: tsx', async () => {
    builtNow();
    rmSync(path.join(root, 'dist/render-worker.mjs'));
    expect(freshBundle(root)).toBeNull();
    expect(await launch()).toBe('tsx');
    rmSync(path.join(root, 'dist'), { recursive: true });
    expect(freshBundle(root)).toBeNull();
    expect(await launch()).toBe('tsx');
  });
});

describe("the launcher's V8 settings (bin/v8-flags.mjs)", () => {
  const defaults = ['--optimize-for-size', '--heap-growing-percent=40'];

  it('apply when neither node\'s command line nor NODE_OPTIONS sets them', () => {
    expect(v8Defaults(defaults, [], '')).toEqual(defaults);
    expect(v8Defaults(defaults, ['--max-old-space-size=512'], '--enable-source-maps')).toEqual(defaults);
  });

  it('an explicit setting wins, either way and in either spelling', () => {
    expect(v8Defaults(defaults, ['--no-optimize-for-size'], '')).toEqual(['--heap-growing-percent=40']);
    expect(v8Defaults(defaults, [], '--no-optimize_for_size')).toEqual(['--heap-growing-percent=40']);
    expect(v8Defaults(defaults, [], ' --optimize-for-size  --heap_growing_percent=10')).toEqual([]);
  });

  it('the launcher runs with them set and with them overridden', async () => {
    builtNow();
    expect(await launch()).toBe('bundle');
    const overridden = await run(process.execPath, ['--no-optimize-for-size', path.join(root, 'bin/send-engine.mjs')], { timeout: 60_000 });
    expect(overridden.stdout.trim()).toBe('bundle');
  });
});

describe('bin/build.mjs', () => {
  it('bundles the CLI and the render thread into plain JavaScript that runs', async () => {
    // Inside the checkout (gitignored), so the bundle finds node_modules as dist/ does.
    mkdirSync(path.join(ROOT, '.send-engine'), { recursive: true });
    const out = mkdtempSync(path.join(ROOT, '.send-engine', 'test-bundle-'));
    try {
      await run(process.execPath, [path.join(ROOT, 'bin/build.mjs'), out], { timeout: 60_000 });
      const help = await run(process.execPath, [path.join(out, 'cli.mjs'), '--help'], { timeout: 60_000 });
      expect(help.stdout).toMatch(/Usage: send-engine/);
      // A render thread on the bundled entry: piscina calls its default export.
      const rendered = await new Promise((resolve, reject) => {
        const thread = new Worker(
          `import(${JSON.stringify(pathToFileURL(path.join(out, 'render-worker.mjs')).href)}).then((m) => require('node:worker_threads').parentPort.postMessage(
             m.default({ template: { subject: 'Hi {{ name }}', html: '<p>{{ name }}</p>' }, variables: { name: 'Ann' }, strict: true, progress: new SharedArrayBuffer(4) })))`,
          { eval: true, workerData: { tracking: { baseUrl: 'http://127.0.0.1:3000', secret: 'x'.repeat(32) } } },
        );
        thread.once('message', (m) => void thread.terminate().then(() => resolve(m)));
        thread.once('error', reject);
      });
      expect(rendered).toEqual({ rendered: { subject: 'Hi Ann', html: '<p>Ann</p>', text: 'Ann' } });
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
