// Whether dist/ (bin/build.mjs) may run: it exists and nothing it was built from changed since.
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * dist/cli.mjs under `root` when both bundle files exist and are at least as new as every file and
 * directory under src/ (a directory's time moves when a file is added, removed or renamed) and as
 * bin/build.mjs; else null, and the sources run through tsx: an edited checkout never runs stale
 * code. A few hundred stat calls, about a millisecond.
 */
export function freshBundle(root) {
  const dist = path.join(root, 'dist');
  let built;
  try {
    built = Math.min(statSync(path.join(dist, 'cli.mjs')).mtimeMs, statSync(path.join(dist, 'render-worker.mjs')).mtimeMs);
  } catch {
    return null;
  }
  try {
    if (statSync(path.join(root, 'bin/build.mjs')).mtimeMs > built) return null;
    return newerThan(path.join(root, 'src'), built) ? null : path.join(dist, 'cli.mjs');
  } catch {
    return null;
  }
}

function newerThan(dir, time) {
  if (statSync(dir).mtimeMs > time) return true;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory() ? newerThan(full, time) : statSync(full).mtimeMs > time) return true;
  }
  return false;
}
