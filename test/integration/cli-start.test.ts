import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { OPSCTL_SH, ROOT, runCli, tempDir, writeScript } from '../helpers/cli.js';

describe('how opsctl starts Node', () => {
  it('bin/opsctl and the job image\'s entrypoint start it with a 1 MiB young generation (V8 reads it only at start)', async () => {
    const dir = await tempDir('ops-start-');
    try {
      const log = path.join(dir, 'args');
      const node = await writeScript(dir, 'node-recording', `printf '%s\\n' "$@" >> ${log}\nexec '${process.execPath}' "$@"\n`);
      for (const command of [[OPSCTL_SH], [path.join(ROOT, 'containers', 'backup', 'entrypoint.sh')]]) {
        await rm(log, { force: true });
        const r = await runCli(['--version'], { command, env: { OPSCTL_NODE: node, OPS_APP_DIR: ROOT } });
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual((await readFile(log, 'utf8')).trim().split('\n'), ['--max-semi-space-size=1', path.join(ROOT, 'bin', 'opsctl.js'), '--version'], command[0]);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/**
 * bin/opsctl.js keeps V8's compiled code of the bundle beside the bundle: exactly as trusted
 * as the code, never in a directory another local user could have created first.
 */
/** The machine's own Node (PATH's): on these machines 20, which has no module.enableCompileCache. */
const MACHINE_NODE = execFileSync('bash', ['-c', 'command -v node']).toString().trim();
const machineHasIt = execFileSync(MACHINE_NODE, ['-e', "process.stdout.write(typeof require('node:module').enableCompileCache)"]).toString() === 'function';

describe('the CLI compile cache', () => {
  const cache = path.join(ROOT, 'dist', 'opsctl', '.compile-cache');
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('lands beside the bundle, not in the temporary directory or the home of the user', async () => {
    await rm(cache, { recursive: true, force: true });
    const tmp = await tempDir('ops-cc-tmp-');
    dirs.push(tmp);
    const r = await runCli(['--version'], { env: { TMPDIR: tmp, HOME: tmp, XDG_CACHE_HOME: undefined } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const entries = await readdir(cache, { recursive: true });
    assert.ok(entries.some((e) => e.includes('/')), `compiled code cached in ${cache}: ${entries.join(', ')}`);
    assert.deepEqual(await readdir(tmp, { recursive: true }), [], 'nothing in TMPDIR or HOME');
  });

  it('a Node without enableCompileCache (before 22.1; the machine\'s own here) runs it as before', { skip: machineHasIt && `this machine's node (${MACHINE_NODE}) has enableCompileCache: no runtime without it to try` }, async () => {
    const r = await runCli(['--version'], { command: [MACHINE_NODE, path.join(ROOT, 'bin', 'opsctl.js')] });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\d+\.\d+\.\d+\n$/);
  });

  it('NODE_DISABLE_COMPILE_CACHE=1 leaves it off', async () => {
    await rm(cache, { recursive: true, force: true });
    const r = await runCli(['--version'], { env: { NODE_DISABLE_COMPILE_CACHE: '1' } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(existsSync(cache), false);
  });

  it('a user who cannot write the bundle runs as before, with no cache and nothing on stderr', { skip: process.getuid?.() !== 0 && 'needs root to run as the postgres user' }, async () => {
    await rm(cache, { recursive: true, force: true });
    const tmp = await tempDir('ops-cc-pg-');
    dirs.push(tmp);
    execFileSync('chown', ['postgres', tmp]);
    const out = execFileSync('su', ['postgres', '-s', '/bin/bash', '-c', `cd ${tmp} && TMPDIR=${tmp} HOME=${tmp} '${process.execPath}' '${path.join(ROOT, 'bin', 'opsctl.js')}' --version 2>&1; echo "rc=$?"`], { encoding: 'utf8' });
    assert.match(out, /^\d+\.\d+\.\d+\nrc=0\n$/, out);
    assert.equal(existsSync(cache), false, 'the bundle is root-owned: postgres cannot create the cache beside it');
    assert.deepEqual(await readdir(tmp, { recursive: true }), [], 'and makes none elsewhere');
  });
});
