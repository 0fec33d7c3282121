import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ROOT, runCli, tempDir } from '../helpers/cli.js';

/**
 * bin/opsctl.js keeps V8's compiled code of the bundle beside the bundle: exactly as trusted
 * as the code, never in a directory another local user could have created first.
 */
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
