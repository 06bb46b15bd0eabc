import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { until } from '../helpers/wait.ts';
import { alive, embeddedEnv, embeddedServer, exitWithin, freePort, runCli, spawnEngine, tempDataDirs, waitHealthy, type EngineProcess } from './processes.ts';

const dirs = await tempDataDirs();
const engines: EngineProcess[] = [];
afterAll(async () => {
  for (const engine of engines) engine.signalGroup('SIGKILL');
  await dirs.cleanup();
});

function start(env: NodeJS.ProcessEnv): EngineProcess {
  const engine = spawnEngine(['start'], env);
  engines.push(engine);
  return engine;
}

describe('the data folder owns its server', () => {
  it('two folders, one EMBEDDED_PG_PORT: the second gets a port of its own (remembered), both work, each stops only its own', async () => {
    const pgPort = await freePort();
    const [folderA, folderB] = [await dirs.make(), await dirs.make()];
    const [portA, portB] = [await freePort(), await freePort()];
    const envA = embeddedEnv(folderA, { PORT: String(portA), EMBEDDED_PG_PORT: String(pgPort) });
    const envB = embeddedEnv(folderB, { PORT: String(portB), EMBEDDED_PG_PORT: String(pgPort) });

    const a = start(envA);
    await waitHealthy(portA, a);
    expect(embeddedServer(folderA)?.port).toBe(pgPort);

    const b = start(envB);
    await waitHealthy(portB, b);
    const serverB = embeddedServer(folderB)!;
    expect(serverB.port).not.toBe(pgPort);
    expect(b.output()).toContain(`EMBEDDED_PG_PORT ${pgPort} is taken`);
    expect(b.output()).not.toContain('password authentication failed');
    expect(Number(await readFile(path.join(folderB, 'pg-port'), 'utf8'))).toBe(serverB.port);

    // Each folder's CLI reaches its own database: a tenant made in B is not known in A.
    const made = await runCli(['tenant', 'create', '--name', 'B', '--json'], envB);
    expect(made.code, made.output).toBe(0);
    const { tenant_id: tenantB } = JSON.parse(made.output.trim().split('\n').at(-1)!);
    const fromA = await runCli(['key', 'create', '--tenant', tenantB, '--scopes', 'send'], envA);
    expect(fromA.code).toBe(1);
    expect(fromA.output).toContain(`tenant ${tenantB} not found`);

    b.child.kill('SIGTERM');
    expect(await exitWithin(b, 30_000)).toBe(0);
    await until(() => !alive(serverB.pid), 10_000, "B's server to stop");
    expect(embeddedServer(folderA)).toBeDefined();
    expect((await fetch(`http://127.0.0.1:${portA}/v1/_health`)).status).toBe(200);

    // B's next start takes its remembered port while A still holds EMBEDDED_PG_PORT.
    const b2 = start(envB);
    await waitHealthy(portB, b2);
    expect(embeddedServer(folderB)?.port).toBe(serverB.port);
    b2.child.kill('SIGTERM');
    a.child.kill('SIGTERM');
    expect(await exitWithin(b2, 30_000)).toBe(0);
    expect(await exitWithin(a, 30_000)).toBe(0);
  }, 180_000);

  it("a second engine on the same folder reuses the running server and leaves it running when it exits", async () => {
    const folder = await dirs.make();
    const [port1, port2] = [await freePort(), await freePort()];
    const pgPort = String(await freePort());
    const first = start(embeddedEnv(folder, { PORT: String(port1), EMBEDDED_PG_PORT: pgPort }));
    await waitHealthy(port1, first);
    const server = embeddedServer(folder)!;

    const second = start(embeddedEnv(folder, { PORT: String(port2), EMBEDDED_PG_PORT: pgPort }));
    await waitHealthy(port2, second);
    expect(second.output()).toMatch(/"embedded_db":\{"port":\d+,"owner":false\}/);
    expect(embeddedServer(folder)?.pid).toBe(server.pid);

    // A CLI command is a short-lived second process on the folder, too.
    const cli = await runCli(['tenant', 'create', '--name', 'Acme', '--json'], embeddedEnv(folder, { EMBEDDED_PG_PORT: pgPort }));
    expect(cli.code, cli.output).toBe(0);

    second.child.kill('SIGTERM');
    expect(await exitWithin(second, 30_000)).toBe(0);
    expect(alive(server.pid)).toBe(true);
    expect((await fetch(`http://127.0.0.1:${port1}/v1/_health`)).status).toBe(200);

    first.child.kill('SIGTERM');
    expect(await exitWithin(first, 30_000)).toBe(0);
    await until(() => !alive(server.pid), 10_000, 'the owner to stop its server');
  }, 120_000);
});
