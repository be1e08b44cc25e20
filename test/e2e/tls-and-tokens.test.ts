// A control plane on a network: TLS on its port, agents identified by their
// client certificates (never by what their hello claims), clients by bearer
// tokens whose scope decides what they may call. Real processes, real sockets;
// the certificates and the first admin token are made with the commands the
// README's "Running on a network" gives an operator.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { connect as tlsConnect } from 'node:tls';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClientError, Status } from 'nice-grpc';
import { TokenScope } from '../../common/gen/grid/v1/token.js';
import { JobState } from '../../common/gen/grid/v1/job.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { makeTestCerts, type TestCerts } from '../helpers/certs.js';
import { connectRawAgent } from '../helpers/raw-agent.js';
import {
  BIN, clients, commandSpec, gridctl, startAgent, startControlPlane, waitForJob, waitForNodes,
  type Clients, type ControlPlaneProcess, type RunningProcess,
} from '../helpers/grid.js';

let db: TestDatabase;
let certs: TestCerts;
let cp: ControlPlaneProcess;
let agent: RunningProcess;
let admin: string;

const tokenOf = (scope: 'read' | 'submit' | 'admin', name: string = scope) => {
  const run = spawnSync(process.execPath, [BIN.controlPlane, 'token', 'create', '--scope', scope, '--name', name], {
    env: { ...process.env, GRID_DATABASE_URL: db.url },
    encoding: 'utf8',
  });
  if (run.status !== 0) throw new Error(`token create failed: ${run.stderr}`);
  return run.stdout.trim();
};
const api = (token?: string): Clients => clients(cp.address, { credentials: certs.credentials(), token });

test.before(async () => {
  db = await createTestDatabase();
  certs = makeTestCerts();
  cp = await startControlPlane(db.url, certs.serverArgs);
  admin = tokenOf('admin', 'root');
  agent = startAgent(cp.address, 'tls-node', certs.agent('tls-node').args);
  const c = api(admin);
  await waitForNodes(c, ['tls-node']);
  c.close();
});

test.after.always(async () => {
  await agent?.stop();
  await cp?.stop();
  await db?.drop();
});

async function refused(t: import('ava').ExecutionContext, call: Promise<unknown>, code: Status, message: RegExp) {
  const err = await t.throwsAsync(call, { instanceOf: ClientError });
  t.is((err as ClientError).code, code, (err as ClientError).details);
  t.regex((err as ClientError).details, message);
}

test('gridctl runs a job over TLS with a submit token from GRID_TOKEN, made by `gridctl token create` (the README\'s steps)', async (t) => {
  const made = await gridctl(cp.address, ['--tls-ca', certs.ca, 'token', 'create', '--scope', 'submit', '--name', 'ci'], { env: { GRID_TOKEN: admin } });
  t.is(made.code, 0, made.stderr.toString());
  t.regex(made.stderr.toString(), /made submit token "ci" \(id [0-9a-f]{12}\); it is shown only now/);
  const ci = made.stdout.toString().trim();
  const listed = await gridctl(cp.address, ['--tls-ca', certs.ca, 'token', 'list'], { env: { GRID_TOKEN: admin } });
  t.regex(listed.stdout.toString(), /\bci\s+submit\s+valid\b/);
  t.false(listed.stdout.toString().includes(ci.slice(18)), 'token list shows no secret');
  const run = await gridctl(cp.address, ['--tls-ca', certs.ca, 'run', '--', 'echo', 'over tls'], { env: { GRID_TOKEN: ci } });
  t.is(run.code, 0, run.stderr.toString());
  t.is(run.stdout.toString(), 'over tls\n');
});

test('no token, a malformed one and an unknown one are UNAUTHENTICATED, saying what to send', async (t) => {
  for (const token of [undefined, 'not-a-token', 'grid_0123456789ab_' + 'A'.repeat(43), admin.slice(0, -4) + 'AAAA']) {
    const c = api(token);
    await refused(t, c.jobs.listJobs({ states: [], pageSize: 10, pageToken: '' }), Status.UNAUTHENTICATED, /authorization: Bearer <token>/);
    c.close();
  }
  const plain = await gridctl(cp.address, ['--tls-ca', certs.ca, 'list'], { env: { GRID_TOKEN: '' } });
  t.is(plain.code, 125);
  t.regex(plain.stderr.toString(), /needs an API token and none was sent/);
  // The server's words fit any client; gridctl adds how it is given a token.
  t.regex(plain.stderr.toString(), /TokenService\.CreateToken \(gridctl reads the token from GRID_TOKEN or --token-file/);
});

test('a revoked token is refused at once; an expired one too', async (t) => {
  const adm = api(admin);
  const { token, info } = await adm.tokens.createToken({ name: 'short-lived', scope: TokenScope.TOKEN_SCOPE_READ, expiresIn: undefined });
  const c = api(token);
  await c.jobs.listJobs({ states: [], pageSize: 10, pageToken: '' });
  await adm.tokens.revokeToken({ tokenId: info!.id });
  await refused(t, c.jobs.listJobs({ states: [], pageSize: 10, pageToken: '' }), Status.UNAUTHENTICATED, /"short-lived" .* was revoked at/);

  const expiring = await adm.tokens.createToken({ name: 'expiring', scope: TokenScope.TOKEN_SCOPE_READ, expiresIn: { seconds: 3600n, nanos: 0 } });
  await db.sql`UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = ${expiring.info!.id}`;
  const e = api(expiring.token);
  // Within the authenticator's cache time (2 s) of a lookup: none was made yet for this token.
  await refused(t, e.jobs.listJobs({ states: [], pageSize: 10, pageToken: '' }), Status.UNAUTHENTICATED, /"expiring" .* expired at/);
  const listed = (await adm.tokens.listTokens({})).tokens;
  t.truthy(listed.find((i) => i.id === info!.id)?.revokedAt);
  t.false(JSON.stringify(listed).includes(token.slice(18)), 'no secret is listed');
  for (const x of [adm, c, e]) x.close();
});

test('a read token may look but not submit, cancel or manage tokens: PERMISSION_DENIED naming the scope', async (t) => {
  const reader = api(tokenOf('read', 'dashboard'));
  const submitter = api(tokenOf('submit', 'pipeline'));
  await reader.jobs.listJobs({ states: [], pageSize: 10, pageToken: '' });
  await reader.nodes.listNodes({});
  await refused(t, reader.jobs.submitJob({ spec: commandSpec(['true']), requestId: '' }), Status.PERMISSION_DENIED, /"dashboard" has scope read, and \/grid\.v1\.JobService\/SubmitJob needs submit/);
  const { job } = await submitter.jobs.submitJob({ spec: commandSpec(['sleep', '30']), requestId: '' });
  await refused(t, reader.jobs.cancelJob({ jobId: job!.id, grace: undefined }), Status.PERMISSION_DENIED, /needs submit or above/);
  await refused(t, submitter.tokens.listTokens({}), Status.PERMISSION_DENIED, /"pipeline" has scope submit, and \/grid\.v1\.TokenService\/ListTokens needs admin/);
  await submitter.jobs.cancelJob({ jobId: job!.id, grace: { seconds: 0n, nanos: 0 } });
  await waitForJob(reader, job!.id, (j) => j.state === JobState.JOB_STATE_CANCELLED, 'the job is cancelled');
  reader.close();
  submitter.close();
});

test('an agent with a certificate for node A that claims node B is refused; so is one without a certificate', async (t) => {
  const liar = connectRawAgent(cp.address, 'node-b', 'liar-1', 'node-b', certs.credentials('node-a'));
  const lie = await liar.first;
  t.true(lie instanceof ClientError);
  t.is((lie as ClientError).code, Status.PERMISSION_DENIED);
  t.regex((lie as ClientError).details, /certificate is for node "node-a", but its hello claims node "node-b"/);

  const anonymous = connectRawAgent(cp.address, 'tls-node', 'anon-1', 'tls-node', certs.credentials());
  const anon = await anonymous.first;
  t.true(anon instanceof ClientError);
  t.is((anon as ClientError).code, Status.UNAUTHENTICATED);
  t.regex((anon as ClientError).details, /needs a client certificate/);
  // Neither took the real node's place.
  const c = api(admin);
  t.deepEqual((await c.nodes.listNodes({})).nodes.map((n) => n.id), ['tls-node']);
  c.close();
});

test('a plaintext client cannot talk to the TLS port', async (t) => {
  const c = clients(cp.address, { token: admin });
  const err = await t.throwsAsync(c.jobs.listJobs({ states: [], pageSize: 10, pageToken: '' }, { signal: AbortSignal.timeout(5000) }));
  t.truthy(err);
  t.not((err as ClientError).code, Status.OK);
  c.close();
});

test('a replaced server certificate is served without a restart', async (t) => {
  const serial = () =>
    new Promise<string>((resolve, reject) => {
      const [host, port] = [cp.address.slice(0, cp.address.lastIndexOf(':')), Number(cp.address.slice(cp.address.lastIndexOf(':') + 1))];
      const socket = tlsConnect({ host, port, rejectUnauthorized: false, ALPNProtocols: ['h2'] }, () => {
        resolve(socket.getPeerCertificate().serialNumber);
        socket.end();
      });
      socket.once('error', reject);
    });
  const before = await serial();
  certs.gridctl(['issue-server', '--name', 'localhost']);
  const deadline = Date.now() + 20_000;
  let after = before;
  while (after === before && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    after = await serial();
  }
  t.not(after, before, 'the new certificate is served');
});

test('plaintext is served only when asked for, and on a network address only with the loud override', async (t) => {
  const start = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(process.execPath, [BIN.controlPlane, ...args], { env: { ...process.env, GRID_DATABASE_URL: db.url, ...env }, encoding: 'utf8', timeout: 20_000 });
  const unasked = start(['--listen', '127.0.0.1:0']);
  t.is(unasked.status, 1);
  t.regex(unasked.stderr, /no TLS certificate was given.*gridctl certs init.*--plaintext/s);
  const network = start(['--listen', '0.0.0.0:0', '--plaintext']);
  t.is(network.status, 1);
  t.regex(network.stderr, /refusing to serve plaintext on 0\.0\.0\.0:0, which is not a loopback address.*--allow-plaintext-on-network-INSECURE/s);
  const overridden = await startControlPlane(db.url, ['--listen', '0.0.0.0:0', '--plaintext', '--allow-plaintext-on-network-INSECURE']);
  t.regex(overridden.output(), /PLAINTEXT WITHOUT AUTHENTICATION on a network address/);
  await overridden.stop();
});

test('a revoke ends a watch already open with that token', async (t) => {
  const adm = api(admin);
  const submitter = api(tokenOf('submit', 'watcher-submit'));
  const { token, info } = await adm.tokens.createToken({ name: 'watcher', scope: TokenScope.TOKEN_SCOPE_READ, expiresIn: undefined });
  const watcher = api(token);
  const { job } = await submitter.jobs.submitJob({ spec: commandSpec(['sleep', '60']), requestId: '' });
  try {
    const watching = (async () => {
      for await (const _ of watcher.jobs.watchJob({ jobId: job!.id, includeLogs: true, stdoutOffset: 0n, stderrOffset: 0n, attempt: 0 }));
    })();
    await new Promise((r) => setTimeout(r, 500));
    const revokedAt = Date.now();
    await adm.tokens.revokeToken({ tokenId: info!.id });
    await refused(t, watching, Status.UNAUTHENTICATED, /"watcher" .* was revoked/);
    const tookMs = Date.now() - revokedAt;
    t.log(`the watch ended ${tookMs} ms after the revoke`);
    t.true(tookMs < 10_000);
  } finally {
    await submitter.jobs.cancelJob({ jobId: job!.id, grace: { seconds: 0n, nanos: 0 } });
    for (const c of [adm, submitter, watcher]) c.close();
  }
});

test('a config file context gives gridctl its address, CA and token; flags still win', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'grid-config-'));
  const tokenFile = join(dir, 'ci.token');
  writeFileSync(tokenFile, tokenOf('submit', 'from-context') + '\n');
  const env: NodeJS.ProcessEnv = { ...process.env, GRID_CONFIG: join(dir, 'config.yaml') };
  delete env.GRID_SERVER;
  delete env.GRID_TOKEN;
  const run = (args: string[]) => spawnSync(process.execPath, [BIN.gridctl, ...args], { env, encoding: 'utf8' });
  const set = run(['config', 'set-context', 'prod', '--server', cp.address, '--tls-ca', certs.ca, '--token-file', tokenFile]);
  t.is(set.status, 0, set.stderr);
  t.regex(run(['config', 'get-contexts']).stdout, /^\* prod {2}127\.0\.0\.1:\d+ {2}tls {2}token$/m);
  const viaContext = run(['run', '--', 'echo', 'via a context']);
  t.is(viaContext.status, 0, viaContext.stderr);
  t.is(viaContext.stdout, 'via a context\n');
  const flagWins = run(['-s', '127.0.0.1:9', 'nodes']);
  t.is(flagWins.status, 125);
  t.regex(flagWins.stderr, /127\.0\.0\.1:9/);
  t.regex(run(['--context', 'nope', 'nodes']).stderr, /no context "nope" in .*config\.yaml \(it has: prod\)/);
});
