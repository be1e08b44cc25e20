// A CA and certificates for a test Grid, made as the README tells an operator
// to: with `gridctl certs`. Kept in a temporary directory, removed at exit.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChannelCredentials } from '@grpc/grpc-js';
import { BIN } from './grid.js';

export interface TestCerts {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  /** `--tls-*` flags of a control plane serving these. */
  serverArgs: string[];
  /** Issues an agent certificate (again, if asked twice) and returns its files. */
  agent(nodeId: string): { cert: string; key: string; args: string[] };
  /** Credentials a client dials with: the CA, and an agent's certificate if named. */
  credentials(nodeId?: string): ChannelCredentials;
  gridctl(args: string[]): string;
}

export function makeTestCerts(): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'grid-certs-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const gridctl = (args: string[]) => {
    const run = spawnSync(process.execPath, [BIN.gridctl, 'certs', ...args, '--dir', dir], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`gridctl certs ${args.join(' ')} failed: ${run.stderr}`);
    return run.stdout;
  };
  gridctl(['init']);
  gridctl(['issue-server', '--name', 'localhost']);
  const at = (f: string) => join(dir, f);
  const agent = (nodeId: string) => {
    gridctl(['issue-agent', nodeId]);
    const [cert, key] = [at(`${nodeId}.crt`), at(`${nodeId}.key`)];
    return { cert, key, args: ['--tls-ca', at('ca.crt'), '--tls-cert', cert, '--tls-key', key] };
  };
  return {
    dir,
    ca: at('ca.crt'),
    serverCert: at('server.crt'),
    serverKey: at('server.key'),
    serverArgs: ['--tls-cert', at('server.crt'), '--tls-key', at('server.key'), '--tls-client-ca', at('ca.crt')],
    agent,
    credentials(nodeId) {
      const ca = readFileSync(at('ca.crt'));
      if (!nodeId) return ChannelCredentials.createSsl(ca);
      const files = agent(nodeId);
      return ChannelCredentials.createSsl(ca, readFileSync(files.key), readFileSync(files.cert));
    },
    gridctl,
  };
}
