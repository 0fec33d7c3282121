#!/usr/bin/env node
// The operator CLI. The TypeScript sources are compiled and bundled to dist/opsctl/ by
// `npm ci` (prepare → npm run build; scripts/bundle-cli.mjs says why bundled).

// V8's compiled code of the bundle is kept beside it, in dist/opsctl/.compile-cache: each
// command then starts about 20 ms sooner (a verify of a small database: 0.347 -> 0.327 s,
// median of 15). Beside the code it caches, it is exactly as trusted as that code: only who
// can write the bundle can write the cache (a cache in a shared temporary directory would let
// another local user hand us compiled code). The build empties it; where the bundle is not
// ours to write Node leaves it off and runs as before. NODE_DISABLE_COMPILE_CACHE=1 turns it off.
// A namespace import: Node before 22.1 has no enableCompileCache, and a named import of it
// would fail to link (every command, and restore_command on such a Node, would fail).
import * as nodeModule from 'node:module';
nodeModule.enableCompileCache?.(new URL('../dist/opsctl/.compile-cache', import.meta.url).pathname);

// PostgreSQL runs `wal push` / `wal fetch` once per file: a file already pushed ahead, or a
// segment already fetched ahead, is answered here without loading the CLI (src/wal/spool.ts).
const argv = process.argv.slice(2);
if (argv.includes('wal')) {
  const { spoolFastPath } = await import('../dist/opsctl/wal-spool.js');
  if (await spoolFastPath(argv)) process.exit(0);
}
const { main, processExit } = await import('../dist/opsctl/main.js');

const controller = new AbortController();
// ECS gives a task its stopTimeout (120 s in our task definitions) between SIGTERM and
// SIGKILL. Cleanup is bounded well inside it; this is the backstop if anything still hangs.
const STOP_GRACE_MS = Number(process.env.OPS_STOP_GRACE_MS ?? 90_000);
let signals = 0;
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    signals += 1;
    // First signal: stop cleanly (abort uploads, remove partial data). Second: give up now.
    if (signals > 1) process.exit(processExit(argv, 2));
    process.stderr.write(`\nopsctl: ${signal} received, stopping and cleaning up\n`);
    setTimeout(() => {
      process.stderr.write(`opsctl: cleanup did not finish within ${STOP_GRACE_MS} ms, exiting\n`);
      process.exit(processExit(argv, 2));
    }, STOP_GRACE_MS).unref();
    controller.abort(signal);
  });
}

const code = await main(argv, controller.signal);
// Benchmarks read the CLI's own peak RSS (not its children's) from here.
if (process.env.OPS_REPORT_RSS) process.stderr.write(`opsctl-max-rss-kb=${process.resourceUsage().maxRSS}\n`);
// Exit once stdout has drained, without waiting for idle sockets of SDK clients.
process.stdout.write('', () => process.exit(code));
