// Colour follows the terminal, NO_COLOR and FORCE_COLOR; an address without a port gets Grid's.
import test from 'ava';
import { colourOn, dim } from '../../cli/style.js';
import { withDefaultPort } from '../../cli/client.js';

test('NO_COLOR turns colour off even on a terminal; FORCE_COLOR turns it on even when piped', (t) => {
  t.true(colourOn({}, true));
  t.false(colourOn({}, false));
  t.false(colourOn({ NO_COLOR: '1' }, true));
  t.true(colourOn({ NO_COLOR: '' }, true), 'an empty NO_COLOR is unset (no-color.org)');
  t.true(colourOn({ FORCE_COLOR: '1' }, false));
  t.false(colourOn({ FORCE_COLOR: '0' }, true));
  t.is(dim('x', false), 'x');
  t.is(dim('x', true), '\x1b[2mx\x1b[0m');
});

test('an address without a port dials 7070, not 80', (t) => {
  t.is(withDefaultPort('localhost'), 'localhost:7070');
  t.is(withDefaultPort('cp.example:9000'), 'cp.example:9000');
  t.is(withDefaultPort('[::1]'), '[::1]:7070');
  t.is(withDefaultPort('[::1]:7000'), '[::1]:7000');
  t.is(withDefaultPort('10.0.0.5'), '10.0.0.5:7070');
});
