// Bundles opsctl into dist/opsctl/: one file to start plus a chunk per command group
// loaded on demand. Start-up matters for an operator CLI that also runs every scheduled
// job: unbundled, Node resolves and compiles about 150 modules before the first command
// (zod's 64 locale modules among them, which bundling drops as unused), about 40 ms of
// every run. Type checking and the per-file dist/ stay with tsc.
import { readFileSync, rmSync } from 'node:fs';
import { build } from 'esbuild';

// Chunk names change with their content: start empty so no stale chunk stays behind.
rmSync('dist/opsctl', { recursive: true, force: true });

const result = await build({
  // wal-spool: the fast path for spooled WAL pushes and fetched-ahead segments, loaded before main (see bin/opsctl.js).
  // base-tar-worker: the thread that reads a base backup's decoded tar (src/backup/base-tar.ts
  // starts it from the file beside its own chunk, here).
  entryPoints: { main: 'src/cli/main.ts', 'wal-spool': 'src/wal/spool.ts', 'base-tar-worker': 'src/backup/base-tar-worker.ts' },
  outdir: 'dist/opsctl',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  sourcemap: true,
  // Whitespace and syntax only (about 10 ms less to parse): names stay, so stack traces read.
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
  // CommonJS dependencies call require() for Node's built-ins.
  banner: { js: "import { createRequire as __opsRequire } from 'node:module'; const require = __opsRequire(import.meta.url);" },
  // pg tries the optional native binding inside a try/catch; it is not installed.
  external: ['pg-native'],
  // A package's ES module build first. A CommonJS module reached by import() becomes a
  // chunk whose only export is `default`, so `const { SSMClient } = await import(...)`
  // found nothing in the bundle while it worked from source (every AWS-facing command
  // failed with "is not a constructor"). The AWS SDK and smithy ship dist-es for this.
  mainFields: ['module', 'main'],
  metafile: true,
});

// Close the class, not the instance: a dynamically imported chunk that is a bare CommonJS
// module (`export default require_x()`) has no named exports, whatever the source expects.
const bare = [];
for (const [file, output] of Object.entries(result.metafile.outputs)) {
  if (!file.endsWith('.js')) continue;
  if (output.exports.length === 1 && output.exports[0] === 'default' && /export default require_\w+\(\);/.test(readFileSync(file, 'utf8'))) {
    bare.push(`${file} (${Object.keys(output.inputs).find((input) => input.includes('node_modules/')) ?? 'unknown input'})`);
  }
}
if (bare.length > 0) {
  console.error(`bundle-cli: chunks with only a CommonJS default export (named imports of them fail at run time):\n  ${bare.join('\n  ')}`);
  process.exit(1);
}
