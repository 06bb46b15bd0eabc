#!/usr/bin/env node
// Runs the engine from its bundle (dist/, built by `npm install` / `npm ci` through bin/build.mjs:
// plain JavaScript, less memory) when that is up to date with src/, else the TypeScript sources
// directly through tsx: there is no build step to forget, and an edited source is never run stale.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import v8 from 'node:v8';
import { freshBundle } from './bundle.mjs';
import { v8Defaults } from './v8-flags.mjs';

// V8's memory-saving heap heuristics (`--optimize-for-size`: a small young generation, shrunk again
// by every full collection, and an old generation collected before it grows): a list send's peak
// RSS 153-158 MB instead of 260-281 MB, for about 100 us more engine CPU per message (451-535
// instead of 347-411 us), nearly all of it garbage collection. No targeted setting gave that memory
// (docs/operations.md#memory): 2-4 MB semi-spaces (`--max-semi-space-size`, which only node's
// command line can set) still peaked at 238-255 MB, and a run-time `--semi-space-growth-factor=1`
// is reset by V8 when a render thread starts. Set before any of the engine is loaded; render
// threads start with it. The flag set either way on node's command line or in NODE_OPTIONS wins.
for (const flag of v8Defaults(['--optimize-for-size'])) v8.setFlagsFromString(flag);

const bundle = freshBundle(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..'));
if (bundle) {
  await import(pathToFileURL(bundle).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli.ts');
}
