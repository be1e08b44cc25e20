// A real image registry for pull tests: Debian's docker-registry (the CNCF
// distribution server) on a free local port, fed by `docker push`. Nothing can
// be pulled from the internet here, so this is how a pull is tested end to end.
// Docker talks plain HTTP to a registry on 127.0.0.0/8 without any set-up.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, sleep, startProgram, type RunningProcess } from './grid.js';

const run = promisify(execFile);
export const REGISTRY_BIN = '/usr/bin/docker-registry';

export interface Registry {
  /** host:port, the prefix of the images it serves. */
  address: string;
  process: RunningProcess;
  stop(): Promise<void>;
}

export async function startRegistry(): Promise<Registry> {
  if (!existsSync(REGISTRY_BIN)) {
    throw new Error(`${REGISTRY_BIN} is missing: scripts/test-env.sh installs it (apt-get install docker-registry)`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'grid-registry-'));
  const port = await freePort();
  const config = join(dir, 'config.yml');
  writeFileSync(
    config,
    ['version: 0.1', 'log:', '  level: warn', 'storage:', '  filesystem:', `    rootdirectory: ${join(dir, 'data')}`, 'http:', `  addr: 127.0.0.1:${port}`, ''].join('\n'),
  );
  const proc = startProgram(REGISTRY_BIN, ['serve', config], {}, 'docker-registry');
  const address = `localhost:${port}`;
  for (const started = Date.now(); ; await sleep(50)) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/v2/`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() - started > 10_000 || proc.child.exitCode !== null) {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`the registry did not start:\n${proc.output()}`);
    }
  }
  return {
    address,
    process: proc,
    async stop() {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Makes an image that exists only in the registry: `base` plus one layer of
 * `layerBytes` random bytes (so it cannot already be on the node), pushed as
 * `ref`, then removed from the engine.
 */
export async function pushFreshImage(ref: string, base: string, layerBytes: number): Promise<void> {
  const name = `grid-push-${randomUUID()}`;
  try {
    await run('docker', ['run', '--name', name, base, 'sh', '-c', `head -c ${layerBytes} /dev/urandom > /payload`]);
    await run('docker', ['commit', name, ref]);
  } finally {
    await run('docker', ['rm', '-f', name]).catch(() => undefined);
  }
  await run('docker', ['push', ref]);
  await removeImage(ref);
}

export async function removeImage(ref: string): Promise<void> {
  await run('docker', ['rmi', '-f', ref]).catch(() => undefined);
}

export interface Proxy {
  /** host:port to use in image names instead of the registry's. */
  address: string;
  close(): void;
}

/**
 * A TCP proxy to the registry that sends its answers at `bytesPerSecond`, so a
 * pull of a few MiB takes long enough to be watched.
 */
export async function startSlowProxy(registry: Registry, bytesPerSecond: number): Promise<Proxy> {
  const [host, port] = ['127.0.0.1', Number(registry.address.split(':')[1])];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(port, host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => (client.destroy(), upstream.destroy()));
      s.once('close', () => (sockets.delete(s), client.destroy(), upstream.destroy()));
    }
    client.pipe(upstream);
    upstream.on('data', (data: Buffer) => {
      upstream.pause();
      client.write(data);
      setTimeout(() => upstream.resume(), (data.length / bytesPerSecond) * 1000);
    });
  });
  const listenPort = await freePort();
  await new Promise<void>((resolve) => server.listen(listenPort, '127.0.0.1', resolve));
  return {
    address: `localhost:${listenPort}`,
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}
