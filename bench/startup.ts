import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fixed, measure, OPSCTL_SH, ROOT, table, WORK } from './lib.js';

/**
 * Start-up of opsctl: bare Node, the bundled CLI (what bin/opsctl.js runs) and the
 * per-file tsc output of the same sources, each running `config validate`; rounds
 * alternate the three so a change in the shared machine's speed hits them alike.
 */
export async function benchStartup(): Promise<string> {
  const cfg = path.join(WORK, 'startup.json');
  await writeFile(cfg, JSON.stringify({ repository: { url: `file://${WORK}/startup-repo` }, redis: [{ name: 'r', url: 'redis://127.0.0.1:6379', mode: 'rdb' }] }));
  const unbundled = `node --input-type=module -e "const { main } = await import('${path.join(ROOT, 'dist', 'cli', 'main.js')}'); process.exit(await main(process.argv.slice(1)))" --`;
  const commands: [string, string][] = [
    ['node -e 0 (Node alone)', 'node -e 0'],
    ['opsctl config validate (bundled, dist/opsctl/)', `${OPSCTL_SH} --config ${cfg} config validate > /dev/null`],
    ['the same from the per-file tsc output (dist/cli/)', `${unbundled} --config ${cfg} config validate > /dev/null`],
  ];
  const runs = commands.map(() => [] as number[]);
  for (let round = 0; round < 9; round += 1) {
    for (const [i, [, command]] of commands.entries()) runs[i]!.push((await measure(command)).seconds);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return ['### Start-up (median of 9 alternating rounds)\n', table(commands.map(([label], i) => [label, fixed(median(runs[i]!), 3)]), ['command', 'seconds'])].join('\n');
}
