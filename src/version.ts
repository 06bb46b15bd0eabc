import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from './config.ts';

let cached: string | undefined;

/** SEND_ENGINE_COMMIT when set (images), else the checkout's HEAD, else "unknown". */
export function resolveCommit(config: Pick<Config, 'commit'>): string {
  if (config.commit) return config.commit;
  if (cached) return cached;
  try {
    const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
    cached = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    cached = 'unknown';
  }
  return cached;
}
