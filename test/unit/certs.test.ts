// gridctl certs: the files it makes, and the ones it must never overwrite.
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certsInit, certsIssueAgent, certsIssueServer } from '../../cli/commands/certs.js';

const quiet = () => {
  const write = process.stdout.write;
  process.stdout.write = (() => true) as never;
  return () => (process.stdout.write = write);
};

test('a CA, a server certificate for its names and loopback, an agent certificate naming its node', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'grid-certs-unit-'));
  const restore = quiet();
  try {
    certsInit({ dir, days: 30 });
    certsIssueServer({ dir, days: 30, name: ['cp.example', '10.0.0.5'] });
    certsIssueAgent('node-7', { dir, days: 30 });
    t.throws(() => certsInit({ dir, days: 30 }), { message: /already exists/ });
    for (const reserved of ['ca', 'server']) t.throws(() => certsIssueAgent(reserved, { dir, days: 30 }), { message: /cannot be a node id here/ });
  } finally {
    restore();
  }
  const ca = new X509Certificate(readFileSync(join(dir, 'ca.crt')));
  const server = new X509Certificate(readFileSync(join(dir, 'server.crt')));
  const agent = new X509Certificate(readFileSync(join(dir, 'node-7.crt')));
  t.true(ca.ca);
  t.true(server.verify(ca.publicKey) && agent.verify(ca.publicKey));
  t.regex(server.subjectAltName ?? '', /DNS:cp\.example.*IP Address:10\.0\.0\.5.*DNS:localhost.*IP Address:127\.0\.0\.1/);
  t.regex(agent.subject, /CN=node-7/);
  t.is(agent.checkIssued(ca), true);
  t.is(server.checkHost('cp.example'), 'cp.example');
});
