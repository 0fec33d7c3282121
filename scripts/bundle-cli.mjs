// Bundles opsctl into dist/opsctl/: one file to start plus a chunk per command group
// loaded on demand. Start-up matters for an operator CLI that also runs every scheduled
// job: unbundled, Node resolves and compiles about 150 modules before the first command
// (zod's 64 locale modules among them, which bundling drops as unused), about 40 ms of
// every run. Type checking and the per-file dist/ stay with tsc.
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

// Chunk names change with their content: start empty so no stale chunk stays behind.
rmSync('dist/opsctl', { recursive: true, force: true });

await build({
  // wal-spool: the fast path for spooled WAL pushes and fetched-ahead segments, loaded before main (see bin/opsctl.js).
  entryPoints: { main: 'src/cli/main.ts', 'wal-spool': 'src/wal/spool.ts' },
  outdir: 'dist/opsctl',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  // Whitespace and syntax only (about 10 ms less to parse): names stay, so stack traces read.
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
  // CommonJS dependencies call require() for Node's built-ins.
  banner: { js: "import { createRequire as __opsRequire } from 'node:module'; const require = __opsRequire(import.meta.url);" },
  // pg tries the optional native binding inside a try/catch; it is not installed.
  external: ['pg-native'],
});
