#!/usr/bin/env node
// Runs the engine from its bundle (dist/, built by `npm install` / `npm ci` through bin/build.mjs:
// plain JavaScript, less memory) when that is up to date with src/, else the TypeScript sources
// directly through tsx: there is no build step to forget, and an edited source is never run stale.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import v8 from 'node:v8';
import { freshBundle } from './bundle.mjs';

// V8's memory-saving heap heuristics (a small young generation, a heap that grows and is collected
// sooner): a list send's peak RSS went from about 258 MB to 151-158 MB, at the same rate within the
// machine's noise (docs/operations.md#memory). Set before any of the engine is loaded; render
// threads start with it. NODE_OPTIONS=--no-optimize-for-size (or any explicit setting) wins.
if (![...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((flag) => /^--(no-)?optimize[-_]for[-_]size/.test(flag))) {
  v8.setFlagsFromString('--optimize-for-size');
}

const bundle = freshBundle(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..'));
if (bundle) {
  await import(pathToFileURL(bundle).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli.ts');
}
