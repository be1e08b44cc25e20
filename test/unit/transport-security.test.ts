// Which transport the control plane's flags ask for, and which they may not.
import test from 'ava';
import { chooseTransport, isLoopback, nodeOfCertificate } from '../../control-plane/transport-security.js';

test('TLS needs all three files; some of them is a plain error naming the rest', (t) => {
  t.is(chooseTransport({ listen: '0.0.0.0:7070', tlsCert: 'a', tlsKey: 'b', tlsClientCa: 'c' }).kind, 'tls');
  t.throws(() => chooseTransport({ listen: '0.0.0.0:7070', tlsCert: 'a' }), { message: /all three of --tls-cert, --tls-key and --tls-client-ca/ });
});

test('nothing asked for is refused: plaintext is never the silent default', (t) => {
  t.throws(() => chooseTransport({ listen: '127.0.0.1:7070' }), { message: /no TLS certificate was given/ });
});

test('plaintext on loopback is allowed; on a network address only with the override', (t) => {
  for (const listen of ['127.0.0.1:7070', 'localhost:7070', '[::1]:7070', '127.0.0.5:0']) t.is(chooseTransport({ listen, plaintext: true }).kind, 'plaintext');
  for (const listen of ['0.0.0.0:7070', ':7070', '10.0.0.5:7070', '[::]:7070']) {
    t.throws(() => chooseTransport({ listen, plaintext: true }), { message: /not a loopback address/ }, listen);
    t.is(chooseTransport({ listen, plaintext: true, allowPlaintextOnNetwork: true }).kind, 'plaintext');
  }
  t.throws(() => chooseTransport({ listen: '127.0.0.1:1', plaintext: true, tlsCert: 'x' }), { message: /choose one/ });
});

test('loopback is 127/8, ::1 and localhost, nothing else', (t) => {
  t.true(isLoopback('127.1.2.3'));
  t.false(isLoopback('128.0.0.1'));
  t.false(isLoopback('0.0.0.0'));
  t.false(isLoopback('localhost.example.com'));
});

test('only a client-auth certificate names a node', (t) => {
  const cert = (eku?: string[]) => ({ subject: { CN: 'node-1' }, ext_key_usage: eku }) as never;
  t.is(nodeOfCertificate(cert(['1.3.6.1.5.5.7.3.2'])), 'node-1');
  t.is(nodeOfCertificate(cert(['1.3.6.1.5.5.7.3.1'])), undefined, 'a server certificate is not an agent');
  t.is(nodeOfCertificate(undefined), undefined);
});
