// gridctl certs: a small CA for one Grid and the certificates it signs — the
// control plane's (server auth, named for the addresses agents and clients
// dial) and each agent's (client auth; its common name is the node id, which
// is the only identity the control plane believes). Made with the openssl
// program every Debian or Ubuntu host has: keys never leave the directory.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { NODE_ID, NODE_ID_RULE } from '../../common/node-id.js';

export interface CertsFlags {
  dir: string;
  days: number;
}

const RESERVED = new Set(['ca', 'server']);

/** Makes ca.crt and ca.key in the directory; refuses to replace a CA (every certificate it signed would stop working). */
export function certsInit(flags: CertsFlags): number {
  mkdirSync(flags.dir, { recursive: true, mode: 0o700 });
  const [crt, key] = [join(flags.dir, 'ca.crt'), join(flags.dir, 'ca.key')];
  if (existsSync(crt) || existsSync(key)) throw new Error(`${crt} already exists: a new CA would orphan every certificate the old one signed`);
  newKey(key);
  openssl([
    'req', '-x509', '-new', '-key', key, '-out', crt, '-days', String(Math.max(flags.days, 3650)), '-sha256',
    '-subj', '/O=Grid/CN=Grid CA', '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:0', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  process.stdout.write(
    `made a CA in ${flags.dir} (ca.crt: give to every agent and client; ca.key: keep on this machine only)\n` +
      `next: gridctl certs issue-server --dir ${flags.dir} --name HOSTNAME, and gridctl certs issue-agent --dir ${flags.dir} NODE_ID\n`,
  );
  return 0;
}

/** server.crt/server.key for the control plane, valid for each --name (DNS name or IP) and for loopback. */
export function certsIssueServer(flags: CertsFlags & { name: string[]; out?: string }): number {
  const names = [...new Set([...flags.name, 'localhost', '127.0.0.1', '::1'])];
  const san = names.map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
  const base = flags.out ?? 'server';
  issue(flags, base, flags.name[0] ?? 'localhost', ['keyUsage=critical,digitalSignature,keyEncipherment', 'extendedKeyUsage=serverAuth', `subjectAltName=${san}`]);
  process.stdout.write(
    `issued ${join(flags.dir, base)}.crt for ${names.join(', ')}\n` +
      `serve it: grid-control-plane --tls-cert ${join(flags.dir, base)}.crt --tls-key ${join(flags.dir, base)}.key --tls-client-ca ${join(flags.dir, 'ca.crt')}\n`,
  );
  return 0;
}

/** NODE_ID.crt/.key for an agent: the node id is its common name, and the control plane takes it from there. */
export function certsIssueAgent(nodeId: string, flags: CertsFlags): number {
  if (!NODE_ID.test(nodeId)) throw new Error(`"${nodeId}" is not a node id: ${NODE_ID_RULE}`);
  // Its files are NODE_ID.crt/.key beside the CA's and the server's: those names would overwrite them.
  if (RESERVED.has(nodeId)) throw new Error(`"${nodeId}" cannot be a node id here: its files would replace ${nodeId}.crt and ${nodeId}.key`);
  issue(flags, nodeId, nodeId, ['keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth']);
  const at = (f: string) => join(flags.dir, f);
  process.stdout.write(
    `issued ${at(nodeId)}.crt for node "${nodeId}"\n` +
      `copy ${at('ca.crt')}, ${at(nodeId)}.crt and ${at(nodeId)}.key to the node, then: ` +
      `grid-agent --server HOST:7070 --tls-ca ca.crt --tls-cert ${nodeId}.crt --tls-key ${nodeId}.key\n`,
  );
  return 0;
}

function issue(flags: CertsFlags, base: string, commonName: string, extensions: string[]): void {
  const [caCrt, caKey] = [join(flags.dir, 'ca.crt'), join(flags.dir, 'ca.key')];
  if (!existsSync(caCrt) || !existsSync(caKey)) throw new Error(`no CA in ${flags.dir}: run \`gridctl certs init --dir ${flags.dir}\` first`);
  const [crt, key] = [join(flags.dir, `${base}.crt`), join(flags.dir, `${base}.key`)];
  const work = mkdtempSync(join(tmpdir(), 'gridctl-certs-'));
  try {
    newKey(key);
    const csr = join(work, 'req.csr');
    const ext = join(work, 'ext.cnf');
    writeFileSync(ext, ['basicConstraints=critical,CA:FALSE', ...extensions].join('\n') + '\n');
    openssl(['req', '-new', '-key', key, '-out', csr, '-subj', `/O=Grid/CN=${commonName}`]);
    openssl(['x509', '-req', '-in', csr, '-CA', caCrt, '-CAkey', caKey, '-CAcreateserial', '-out', crt, '-days', String(flags.days), '-sha256', '-extfile', ext]);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function newKey(file: string): void {
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file]);
  spawnSync('chmod', ['600', file]);
}

function openssl(args: string[]): void {
  const run = spawnSync('openssl', args, { encoding: 'utf8' });
  if (run.error) throw new Error(`cannot run openssl (${(run.error as NodeJS.ErrnoException).code}): install it (apt-get install openssl)`);
  if (run.status !== 0) throw new Error(`openssl ${args[0]} failed: ${run.stderr.trim()}`);
}
