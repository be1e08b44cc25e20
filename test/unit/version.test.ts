// Which agent and control-plane versions work together: one minor series either way.
import test from 'ava';
import { acceptedVersions, compatibleVersion, handsBack } from '../../common/version.js';

test('the same series and its neighbours are compatible; two minors apart, another major or no version are not', (t) => {
  for (const theirs of ['0.4.0', '0.4.9', '0.3.2', '0.5.0', '0.4.1-simulated', '0.5.0+build.7']) t.true(compatibleVersion(theirs, '0.4.3'), theirs);
  for (const theirs of ['0.2.9', '0.6.0', '1.4.0', 'test', '', '0.4', 'v0.4.0']) t.false(compatibleVersion(theirs, '0.4.3'), theirs);
});

test('acceptedVersions names the series, never a negative one', (t) => {
  t.is(acceptedVersions('0.4.3'), '0.3.x, 0.4.x or 0.5.x');
  t.is(acceptedVersions('1.0.0'), '1.0.x or 1.1.x');
});

test('hand-backs are known from 0.2 on', (t) => {
  for (const v of ['0.2.0', '0.3.1', '1.0.0', '0.2.0-simulated']) t.true(handsBack(v), v);
  for (const v of ['0.1.0', '0.0.9', '', 'test']) t.false(handsBack(v), v);
});
