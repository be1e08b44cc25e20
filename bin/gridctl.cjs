#!/usr/bin/env node
// gridctl's entry: loads the one-file bundle (scripts/bundle.mjs) with a V8 code
// cache, so that from the second run on Node skips compiling it (Node 20 has no
// module.enableCompileCache). The cache is one file per bundle build and Node
// version under $XDG_CACHE_HOME/grid (~/.cache/grid); a cache that cannot be read
// or written, or that V8 rejects, only costs the compile it would have saved.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const vm = require('node:vm');
const Module = require('node:module');

const bundle = path.join(__dirname, '..', 'dist', 'bundle', 'gridctl.cjs');
let source;
let stat;
try {
  source = fs.readFileSync(bundle, 'utf8');
  stat = fs.statSync(bundle);
} catch (err) {
  process.stderr.write(`gridctl: cannot read ${bundle} (${err.code || err.message}); build it with npm run build\n`);
  process.exit(125);
}
const cacheDir = path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'grid');
// One cache per install and Node version (the prefix), replaced when that install's bundle is rebuilt.
const install = require('node:crypto').createHash('sha256').update(bundle).digest('hex').slice(0, 12);
const prefix = `gridctl-${install}-${process.version}-${process.arch}-`;
const cacheFile = path.join(cacheDir, `${prefix}${stat.size}-${Math.round(stat.mtimeMs)}.v8`);
let cachedData;
try {
  cachedData = fs.readFileSync(cacheFile);
} catch {
  cachedData = undefined;
}
// The bundle keeps cli/main.ts's #! line, which is not JavaScript inside a function wrapper.
const script = new vm.Script(Module.wrap(source.replace(/^#!.*/, '')), { filename: bundle, cachedData });
if (cachedData === undefined || script.cachedDataRejected) {
  // At exit the cache also holds the functions this run compiled lazily. Written
  // whole then renamed: a gridctl starting meanwhile never reads half a file.
  process.once('exit', () => {
    try {
      fs.mkdirSync(cacheDir, { recursive: true });
      for (const old of fs.readdirSync(cacheDir)) {
        if (old.startsWith(prefix) && old.endsWith('.v8') && old !== path.basename(cacheFile)) fs.rmSync(path.join(cacheDir, old), { force: true });
      }
      const partial = `${cacheFile}.${process.pid}`;
      fs.writeFileSync(partial, script.createCachedData());
      fs.renameSync(partial, cacheFile);
    } catch {
      // No cache this time.
    }
  });
}
const main = new Module(bundle, module);
main.filename = bundle;
main.paths = Module._nodeModulePaths(path.dirname(bundle));
script.runInThisContext().call(main.exports, main.exports, (id) => main.require(id), main, bundle, path.dirname(bundle));
