import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, chown, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spoolSource, trusted } from '../../src/wal/spool.js';
import { OPSCTL_SH, runCli, tempDir, writeConfig } from '../helpers/cli.js';

const nobody = Number(execFileSync('id', ['-u', 'nobody']).toString());
const SEGMENT = '000000010000000000000099';

/**
 * Another local user on the database host: they create the spool's root before we do and
 * plant a "segment fetched ahead". Neither the shell fast path nor Node may believe it.
 */
describe('WAL spool on a shared host: a path another user controls is never trusted (shell fast path and Node)', () => {
  let work: string;
  let cfg: string;
  before(async () => {
    work = await tempDir('ops-spool-trust-');
    await chmod(work, 0o755);
    cfg = await writeConfig(work, { repository: { url: `file://${path.join(work, 'repo')}` }, postgres: [{ name: 'main', url: 'postgresql://postgres@127.0.0.1:1/postgres' }] });
  });
  after(async () => rm(work, { recursive: true, force: true }));

  async function plant(root: string, owner: number, mode: number): Promise<string> {
    // The root is made by the other user; what is inside is made (or left) as ours.
    await mkdir(root, { mode });
    await chown(root, owner, owner);
    await chmod(root, mode);
    const spool = path.join(root, 'main');
    await mkdir(path.join(spool, 'fetch'), { recursive: true, mode: 0o700 });
    await writeFile(path.join(spool, 'fetch', SEGMENT), 'not WAL: planted by someone else');
    // Made for exactly this configuration: only the path rule can refuse it.
    await writeFile(path.join(spool, '.source'), `${await spoolSource(cfg, {})}\n`);
    return spool;
  }

  it('a spool root owned and writable by another user: the planted segment is not handed over, by the shell or by Node', async () => {
    const spool = await plant(path.join(work, 'hostile-root'), nobody, 0o777);
    assert.equal(await trusted(path.join(spool, 'fetch')), false);
    const dest = path.join(work, 'dest-shell');
    const shell = await runCli(['--config', cfg, 'wal', 'fetch', SEGMENT, dest, '--name', 'main', '--spool', spool], { command: [OPSCTL_SH], env: { OPSCTL_NODE: '/bin/false' } });
    assert.notEqual(shell.code, 0, 'not answered by the shell (it went on to "Node", here /bin/false)');
    assert.doesNotMatch(shell.stdout, /fetched ahead/);
    await assert.rejects(stat(dest), /ENOENT/);
    const node = await runCli(['--config', cfg, 'wal', 'fetch', SEGMENT, dest, '--name', 'main', '--spool', spool], { command: [OPSCTL_SH], env: { OPSCTL_NODE: process.execPath } });
    assert.notEqual(node.code, 0, node.stdout + node.stderr);
    await assert.rejects(stat(dest), /ENOENT/);
  });

  it('a symlink in the spool path is not followed into trust', async () => {
    const real = path.join(work, 'real-root');
    await mkdir(path.join(real, 'main', 'fetch'), { recursive: true, mode: 0o700 });
    await chmod(real, 0o700);
    await writeFile(path.join(real, 'main', 'fetch', SEGMENT), 'planted through a link');
    await writeFile(path.join(real, 'main', '.source'), `${await spoolSource(cfg, {})}\n`);
    await execFileSync('ln', ['-s', real, path.join(work, 'link-root')]);
    const spool = path.join(work, 'link-root', 'main');
    assert.equal(await trusted(path.join(spool, 'fetch')), false);
    const dest = path.join(work, 'dest-link');
    const shell = await runCli(['--config', cfg, 'wal', 'fetch', SEGMENT, dest, '--name', 'main', '--spool', spool], { command: [OPSCTL_SH], env: { OPSCTL_NODE: '/bin/false' } });
    assert.notEqual(shell.code, 0);
    await assert.rejects(stat(dest), /ENOENT/);
  });

  it('the same layout owned by us alone is trusted: the rule can pass (so the refusals above are the rule, not a broken spool)', async () => {
    const root = path.join(work, 'own-root');
    await mkdir(path.join(root, 'main', 'fetch'), { recursive: true, mode: 0o700 });
    await chmod(root, 0o700);
    await writeFile(path.join(root, 'main', 'fetch', SEGMENT), 'ours');
    await writeFile(path.join(root, 'main', '.source'), `${await spoolSource(cfg, {})}\n`);
    const spool = path.join(root, 'main');
    assert.equal(await trusted(path.join(spool, 'fetch')), true);
    const dest = path.join(work, 'dest-own');
    const shell = await runCli(['--config', cfg, 'wal', 'fetch', SEGMENT, dest, '--name', 'main', '--spool', spool], { command: [OPSCTL_SH], env: { OPSCTL_NODE: '/bin/false' } });
    assert.equal(shell.code, 0, shell.stderr);
    assert.match(shell.stdout, /fetched ahead/);
    assert.equal(await readFile(dest, 'utf8'), 'ours');
  });

  it('a spool is keyed by what it was made for: segments fetched ahead from one repository are not handed to a fetch from another', async () => {
    const cfgB = await writeConfig(path.join(work, 'b'), { repository: { url: `file://${path.join(work, 'repo-b')}` }, postgres: [{ name: 'main', url: 'postgresql://postgres@127.0.0.1:1/postgres' }] }).catch(async () => {
      await mkdir(path.join(work, 'b'));
      return writeConfig(path.join(work, 'b'), { repository: { url: `file://${path.join(work, 'repo-b')}` }, postgres: [{ name: 'main', url: 'postgresql://postgres@127.0.0.1:1/postgres' }] });
    });
    const wal = path.join(work, 'pg_wal');
    await mkdir(wal, { recursive: true });
    const names = ['000000010000000000000001', '000000010000000000000002', '000000010000000000000003'];
    for (const n of names) {
      await writeFile(path.join(wal, n), Buffer.alloc(4096, n.at(-1)));
      const p = await runCli(['--config', cfg, 'wal', 'push', path.join(wal, n), '--name', 'main', '--spool', path.join(work, 'push-spool')]);
      assert.equal(p.code, 0, p.stderr);
    }
    const spool = path.join(work, 'keyed-spool');
    const first = await runCli(['--config', cfg, 'wal', 'fetch', names[0]!, path.join(work, 'k1'), '--name', 'main', '--spool', spool]);
    assert.equal(first.code, 0, first.stderr);
    const viaShell = (config: string, file: string, dest: string, node = '/bin/false') =>
      runCli(['--config', config, 'wal', 'fetch', file, dest, '--name', 'main', '--spool', spool], { command: [OPSCTL_SH], env: { OPSCTL_NODE: node } });
    const other = await viaShell(cfgB, names[1]!, path.join(work, 'kb2'));
    assert.notEqual(other.code, 0, 'another repository: not answered from the spool');
    await assert.rejects(stat(path.join(work, 'kb2')), /ENOENT/);
    const same = await viaShell(cfg, names[1]!, path.join(work, 'ka2'));
    assert.equal(same.code, 0, same.stderr);
    assert.match(same.stdout, /fetched ahead/);
    const otherNode = await viaShell(cfgB, names[2]!, path.join(work, 'kb3'), process.execPath);
    assert.equal(otherNode.code, 255, 'repository B holds nothing for main: fatal, and A\'s segment is not handed over');
    await assert.rejects(stat(path.join(work, 'kb3')), /ENOENT/);
  });
});
