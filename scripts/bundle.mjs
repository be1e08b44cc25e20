// Builds gridctl into one CommonJS file, dist/bundle/gridctl.cjs, that needs
// nothing but Node: every module it uses inlined, so a run starts without
// resolving and reading hundreds of files from node_modules (that was half of
// a trivial `gridctl run`'s start-up). CommonJS, not ESM, because Node 20 can
// only keep a compiled script's V8 code cache for a classic script (vm.Script):
// bin/gridctl.cjs loads the bundle through one.
import { build } from 'esbuild';

await build({
  entryPoints: { gridctl: 'cli/main.ts' },
  outdir: 'dist/bundle',
  outExtension: { '.js': '.cjs' },
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  logLevel: 'warning',
  // The bundle is loaded by its launcher, never run as a script itself.
  banner: { js: '// Built by scripts/bundle.mjs from cli/; do not edit.' },
});
