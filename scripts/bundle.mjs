// Builds gridctl into one CommonJS file, dist/bundle/gridctl.cjs, that needs
// nothing but Node: every module it uses inlined, so a run starts without
// resolving and reading hundreds of files from node_modules (that was half of
// a trivial `gridctl run`'s start-up). CommonJS, not ESM, because Node 20 can
// only keep a compiled script's V8 code cache for a classic script (vm.Script):
// bin/gridctl.cjs loads the bundle through one.
import { build } from 'esbuild';

const result = await build({
  metafile: true,
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

// The launcher compiles the bundle as a classic script, where Node 20 cannot
// serve import(): a dynamic import would fail only when that code path runs.
for (const [file, output] of Object.entries(result.metafile.outputs)) {
  const dynamic = output.imports.filter((i) => i.kind === 'dynamic-import');
  if (dynamic.length > 0) throw new Error(`${file} keeps dynamic imports (${dynamic.map((i) => i.path).join(', ')}): import them statically`);
}
