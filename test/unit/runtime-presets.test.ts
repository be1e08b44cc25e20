// Runtime presets: the sh preset follows --default-image (an air-gapped
// operator sets one image, not one per preset) unless a runtimes file names its own.
import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRuntimes } from '../../control-plane/runtime-presets.js';

const imageOf = (presets: { name: string; image: string }[], name: string) => presets.find((p) => p.name === name)?.image;

test('sh runs in the default image unless a runtimes file gives it one; the others keep theirs', (t) => {
  t.is(imageOf(loadRuntimes(undefined, 'registry.internal/busybox:1'), 'sh'), 'registry.internal/busybox:1');
  t.is(imageOf(loadRuntimes(undefined, 'registry.internal/busybox:1'), 'python'), 'python:3.12-slim');
  t.is(imageOf(loadRuntimes(undefined), 'sh'), 'busybox:1.37');
  const dir = mkdtempSync(join(tmpdir(), 'grid-runtimes-'));
  writeFileSync(join(dir, 'own.json'), JSON.stringify({ sh: { image: 'alpine:3' } }));
  writeFileSync(join(dir, 'other.json'), JSON.stringify({ python: { image: 'py:local' } }));
  t.is(imageOf(loadRuntimes(join(dir, 'own.json'), 'registry.internal/busybox:1'), 'sh'), 'alpine:3');
  t.is(imageOf(loadRuntimes(join(dir, 'other.json'), 'registry.internal/busybox:1'), 'sh'), 'registry.internal/busybox:1');
});
