import test from 'ava';
import { imageRefusal } from '../../agent/image-policy.js';

test('with no policy every image is allowed; with one, only the listed prefixes', (t) => {
  t.is(imageRefusal('python:3.12', []), undefined);
  t.is(imageRefusal('registry.internal/team/app:1', ['registry.internal/', 'grid-test/']), undefined);
  t.is(imageRefusal('grid-test/busybox:1', ['registry.internal/', 'grid-test/']), undefined);
  t.is(imageRefusal('python:3.12', ['registry.internal/']), 'image python:3.12 is not allowed on this node (allowed: registry.internal/)');
});
