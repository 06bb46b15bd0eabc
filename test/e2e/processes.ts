import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { until } from '../helpers/wait.ts';

/** Real `send-engine` processes for the end-to-end tests: each in its own process group. */
export const CLI = path.resolve('bin/send-engine.mjs');

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The embedded server's pid and port, as its postmaster.pid names them (undefined once stopped). */
export function embeddedServer(dataDir: string): { pid: number; port: number } | undefined {
  try {
    const lines = readFileSync(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n');
    const pid = Number(lines[0]);
    return alive(pid) ? { pid, port: Number(lines[3]) } : undefined;
  } catch {
    return undefined;
  }
}

const spawned = new Set<EngineProcess>();

/**
 * Temporary data folders. cleanup() kills whatever a failed test left running (engines this file
 * spawned, then each folder's server) and removes the folders.
 */
export async function tempDataDirs() {
  const dirs: string[] = [];
  return {
    async make(): Promise<string> {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'send-engine-e2e-'));
      dirs.push(dir);
      return dir;
    },
    async cleanup() {
      for (const engine of spawned) {
        if (engine.child.exitCode === null && engine.child.signalCode === null) {
          engine.signalGroup('SIGKILL');
          await engine.exited;
        }
      }
      for (const dir of dirs) {
        const server = embeddedServer(dir);
        if (server) {
          try {
            process.kill(-server.pid, 'SIGKILL');
          } catch {
            /* gone */
          }
          for (let i = 0; i < 50 && alive(server.pid); i++) await new Promise((r) => setTimeout(r, 100));
        }
        await rm(dir, { recursive: true, force: true, maxRetries: 5 });
      }
    },
  };
}

/** Embedded mode: nothing configured but the folder and ports. */
export function embeddedEnv(dataDir: string, env: Record<string, string>): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...process.env, SEND_ENGINE_DATA_DIR: dataDir, LOG_LEVEL: 'info', ...env };
  for (const name of ['DATABASE_URL', 'JWT_SECRET', 'JWT_JWKS_URL']) delete out[name];
  if (!env.SEND_ENGINE_TRANSPORT) delete out.SEND_ENGINE_TRANSPORT;
  return out;
}

export interface EngineProcess {
  child: ChildProcess;
  pid: number;
  exited: Promise<number | null>;
  /** Everything it wrote so far (stdout and stderr). */
  output(): string;
  /** Signals its whole process group, as a terminal's Ctrl-C or a power cut would. */
  signalGroup(signal: NodeJS.Signals): void;
}

export function spawnEngine(args: string[], env: NodeJS.ProcessEnv): EngineProcess {
  const child = spawn(process.execPath, [CLI, ...args], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const engine: EngineProcess = {
    child,
    pid: child.pid!,
    exited,
    output: () => out,
    signalGroup(signal) {
      try {
        process.kill(-child.pid!, signal);
      } catch {
        /* already gone */
      }
    },
  };
  spawned.add(engine);
  return engine;
}

/** Runs a CLI command to its end. */
export async function runCli(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 90_000): Promise<{ code: number | null; output: string }> {
  const engine = spawnEngine(args, env);
  const timer = setTimeout(() => engine.signalGroup('SIGKILL'), timeoutMs);
  const code = await engine.exited;
  clearTimeout(timer);
  return { code, output: engine.output() };
}

export async function waitHealthy(port: number, engine: EngineProcess, timeoutMs = 90_000): Promise<void> {
  await until(
    async () => {
      if (engine.child.exitCode !== null) throw new Error(`the engine exited with ${engine.child.exitCode}:\n${engine.output()}`);
      return fetch(`http://127.0.0.1:${port}/v1/_health`).then((r) => r.ok || undefined, () => undefined);
    },
    timeoutMs,
    'the engine to answer',
  );
}

/** Resolves with the exit code, or fails when the process outlives timeoutMs (and kills it). */
export async function exitWithin(engine: EngineProcess, timeoutMs: number): Promise<number | null> {
  const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs));
  const result = await Promise.race([engine.exited, timeout]);
  if (result === 'timeout') {
    engine.signalGroup('SIGKILL');
    throw new Error(`the engine did not exit within ${timeoutMs} ms:\n${engine.output().slice(-3000)}`);
  }
  return result;
}
