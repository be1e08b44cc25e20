// imageReferenceProblem: Docker's reference grammar, so typos are refused at submit time.
import test from 'ava';
import { imageReferenceProblem } from '../../control-plane/image-reference.js';

// 64 hex characters.
const DIGEST = 'sha256:' + '0123456789abcdef'.repeat(4);

const VALID = [
  'busybox',
  'busybox:1.37',
  'library/python:3.12-slim',
  'ghcr.io/org/app:v1',
  'localhost:5000/a/b:c',
  `registry.example.com/x@${DIGEST}`,
  `python:3.12@${DIGEST}`,
  'grid-test/busybox:1',
  'a__b',
  'a-b.c',
  'a--b',
  'My.Registry:443/app',
  '[::1]:5000/app:latest',
];

for (const ref of VALID) {
  test(`accepts valid reference ${JSON.stringify(ref)}`, (t) => {
    t.is(imageReferenceProblem(ref), undefined);
  });
}

const INVALID = [
  '',
  'Ubuntu',
  'ubuntu::latest',
  'bad image',
  'x:',
  ':tag',
  'a/',
  '/a',
  'a//b',
  'x@sha256:short',
  'x@sha256:',
  'a___b',
  '-a',
  'a-',
  'a:-tag',
  `a:${'t'.repeat(129)}`,
  'a'.repeat(256),
];

for (const ref of INVALID) {
  const label = ref.length > 40 ? `${ref.slice(0, 12)}... (${ref.length} chars)` : JSON.stringify(ref);
  test(`refuses invalid reference ${label}`, (t) => {
    const problem = imageReferenceProblem(ref);
    t.is(typeof problem, 'string');
    t.true((problem ?? '').length > 0);
  });
}

test('an empty reference is reported as empty', (t) => {
  t.is(imageReferenceProblem(''), 'it is empty');
});

test('an uppercase repository name gets the lowercase message', (t) => {
  t.is(imageReferenceProblem('Ubuntu'), 'repository names must be lowercase');
  t.is(imageReferenceProblem('library/Ubuntu:22.04'), 'repository names must be lowercase');
});

test('a malformed reference gets the grammar message with an example', (t) => {
  t.is(imageReferenceProblem('ubuntu::latest'), 'expected [registry/]name[:tag][@digest], e.g. python:3.12-slim');
  t.is(imageReferenceProblem('bad image'), 'expected [registry/]name[:tag][@digest], e.g. python:3.12-slim');
});

test('a name longer than 255 characters is refused for its length; 255 is accepted', (t) => {
  t.is(imageReferenceProblem('a'.repeat(256)), 'the name is longer than 255 characters');
  t.is(imageReferenceProblem('a'.repeat(255)), undefined);
  t.is(imageReferenceProblem(`${'a'.repeat(255)}:tag`), undefined);
});
