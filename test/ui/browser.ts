import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/**
 * Debian's Chromium: found at /usr/bin/chromium, installed when absent and we are root. Returns
 * the reason it cannot be had (the caller skips, loudly), or undefined when it is there.
 */
export function ensureChromium(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  if (process.getuid?.() === 0) {
    try {
      execFileSync('apt-get', ['update'], { stdio: 'ignore', timeout: 300_000 });
      execFileSync('apt-get', ['install', '-y', 'chromium'], { stdio: 'ignore', timeout: 600_000 });
    } catch (err) {
      return `apt-get install chromium failed: ${(err as Error).message}`;
    }
    if (existsSync(CHROMIUM)) return undefined;
  }
  return `${CHROMIUM} is missing and this is not root: apt-get install -y chromium`;
}

/** A fresh headless Chromium profile (its own user-data-dir), no network chatter of its own. */
export async function launchBrowser(viewport = { width: 1280, height: 800 }): Promise<BrowserContext> {
  const userDataDir = mkdtempSync(path.join(tmpdir(), 'se-chromium-'));
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export const ARTIFACTS = path.join(import.meta.dirname, 'artifacts');
