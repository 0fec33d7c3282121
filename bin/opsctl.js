#!/usr/bin/env node
// The operator CLI. The TypeScript sources are compiled and bundled to dist/opsctl/ by
// `npm ci` (prepare → npm run build; scripts/bundle-cli.mjs says why bundled).

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
