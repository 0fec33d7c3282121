import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, chown, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { claimSpool, recordPushed, spoolSource, trusted } from '../../src/wal/spool.js';
import { OPSCTL_SH, runCli, tempDir, writeConfig } from '../helpers/cli.js';

const nobody = Number(execFileSync('id', ['-u', 'nobody']).toString());
const SEGMENT = '000000010000000000000099';

/** Debian's bash-builtins package: bin/opsctl loads stat from it and forks no stat process. */
const STAT_BUILTIN = '/usr/lib/bash/stat';

/**
 * bin/opsctl reads the spool two ways: with bash's stat builtin where the system has one (no
 * fork; whole-second mtimes, no sticky bit in its perms) and with a forked GNU stat. Each
 * rule below holds both ways. In the builtin run the first `stat` on PATH always fails, so an
 * answer the shell gives came from the builtin.
 */
const MODES: { label: string; env: (work: string) => Promise<Record<string, string>> }[] = [
  {
    label: 'stat builtin',
    env: async (work) => {
      const bin = path.join(work, 'bin-failing-stat');
      await mkdir(bin, { recursive: true });
      await writeFile(path.join(bin, 'stat'), '#!/bin/sh\nexit 1\n', { mode: 0o755 });
      return { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}` };
    },
  },
  { label: 'forked stat', env: async () => ({ OPSCTL_STAT_BUILTIN: '0' }) },
];

it('the stat builtin is installed here (CI installs bash-builtins): the first mode below is what it says', async () => {
  assert.ok((await stat(STAT_BUILTIN)).isFile(), `${STAT_BUILTIN} missing: apt-get install bash-builtins`);
});

for (const mode of MODES) {
/**
 * Another local user on the database host: they create the spool's root before we do and
 * plant a "segment fetched ahead". Neither the shell fast path nor Node may believe it.
 */
describe(`WAL spool on a shared host (${mode.label}): a path another user controls is never trusted (shell fast path and Node)`, () => {
  let work: string;
  let cfg: string;
  let modeEnv: Record<string, string>;
  before(async () => {
    work = await tempDir('ops-spool-trust-');
    await chmod(work, 0o755);
    cfg = await writeConfig(work, { repository: { url: `file://${path.join(work, 'repo')}` }, postgres: [{ name: 'main', url: 'postgresql://postgres@127.0.0.1:1/postgres' }] });
    modeEnv = await mode.env(work);
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
    const shell = await runCli(['--config', cfg, 'wal', 'fetch', SEGMENT, dest, '--name', 'main', '--spool', spool], { command: [OPSCTL_SH], env: { ...modeEnv, OPSCTL_NODE: '/bin/false' } });
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
    const shell = await runCli(['--config', cfg, 'wal', 'fetch', SEGMENT, dest, '--name', 'main', '--spool', spool], { command: [OPSCTL_SH], env: { ...modeEnv, OPSCTL_NODE: '/bin/false' } });
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
    const shell = await runCli(['--config', cfg, 'wal', 'fetch', SEGMENT, dest, '--name', 'main', '--spool', spool], { command: [OPSCTL_SH], env: { ...modeEnv, OPSCTL_NODE: '/bin/false' } });
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
      runCli(['--config', config, 'wal', 'fetch', file, dest, '--name', 'main', '--spool', spool], { command: [OPSCTL_SH], env: { ...modeEnv, OPSCTL_NODE: node } });
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
  it('a root-owned directory that all may write, without the sticky bit, in the path: refused; with it (as /tmp) the spool is trusted', async () => {
    const open = path.join(work, 'all-write');
    const spool = path.join(open, 'own', 'main');
    await mkdir(path.join(spool, 'fetch'), { recursive: true, mode: 0o700 });
    await chmod(path.join(open, 'own'), 0o700);
    await writeFile(path.join(spool, '.source'), `${await spoolSource(cfg, {})}\n`);
    const fetch = (dest: string) => runCli(['--config', cfg, 'wal', 'fetch', SEGMENT, dest, '--name', 'main', '--spool', spool], { command: [OPSCTL_SH], env: { ...modeEnv, OPSCTL_NODE: '/bin/false' } });
    await writeFile(path.join(spool, 'fetch', SEGMENT), 'through an open directory');
    await chmod(open, 0o777);
    assert.equal(await trusted(path.join(spool, 'fetch')), false);
    const refused = await fetch(path.join(work, 'dest-open'));
    assert.notEqual(refused.code, 0, refused.stdout);
    await assert.rejects(stat(path.join(work, 'dest-open')), /ENOENT/);
    await chmod(open, 0o1777);
    assert.equal(await trusted(path.join(spool, 'fetch')), true);
    const taken = await fetch(path.join(work, 'dest-sticky'));
    assert.equal(taken.code, 0, taken.stderr);
    assert.equal(await readFile(path.join(work, 'dest-sticky'), 'utf8'), 'through an open directory');
  });

  /**
   * Repeats `act` until the two mtimes it gives fall within one second (the builtin sees whole
   * seconds only) and differ. `act` waits 30 ms between writing a record and rewriting the
   * file: file timestamps move in clock ticks (a few ms), and the rule is "not modified after
   * the record", which a rewrite within the record's own tick would pass both ways.
   */
  async function withinOneSecond(act: () => Promise<[bigint, bigint]>): Promise<void> {
    for (let attempt = 0; attempt < 10; attempt += 1) {
      const [a, b] = await act();
      if (a / 1_000_000_000n === b / 1_000_000_000n && a !== b) return;
    }
    assert.fail('ten attempts crossed a second boundary');
  }

  it('a push record answers only for the file it was made for: the file rewritten in place since (same inode and size, the same second) is not "spooled"', async () => {
    const wal = path.join(work, 'pg_wal-record');
    await mkdir(wal, { recursive: true });
    const file = path.join(wal, '000000010000000000000042');
    const spool = path.join(work, 'record-spool');
    const source = await spoolSource(cfg, {});
    await claimSpool(spool, source);
    const push = () => runCli(['--config', cfg, 'wal', 'push', file, '--name', 'main', '--spool', spool], { command: [OPSCTL_SH], env: { ...modeEnv, OPSCTL_NODE: '/bin/false' } });
    await withinOneSecond(async () => {
      await writeFile(file, Buffer.alloc(8192, 'a'));
      const pushed = (await stat(file, { bigint: true })).mtimeNs;
      await recordPushed(spool, path.basename(file), file, source);
      const ino = (await stat(file)).ino;
      await sleep(30);
      await writeFile(file, Buffer.alloc(8192, 'b'));
      const now = await stat(file, { bigint: true });
      assert.equal(Number(now.ino), ino, 'rewritten in place');
      return [pushed, now.mtimeNs];
    });
    const rewritten = await push();
    assert.notEqual(rewritten.code, 0, rewritten.stdout);
    assert.doesNotMatch(rewritten.stdout, /spooled/);
    // The rule can pass: recorded for the file as it is now, the shell answers.
    await recordPushed(spool, path.basename(file), file, source);
    const same = await push();
    assert.equal(same.code, 0, same.stderr);
    assert.match(same.stdout, /spooled/);
  });

  it('a configuration file rewritten in place after its spool was made (same size, the same second) is not that spool\'s', async () => {
    const dir = path.join(work, 'cfg-rewritten');
    await mkdir(dir, { recursive: true });
    const cfg2 = path.join(dir, 'ops.config.json');
    const text = await readFile(cfg, 'utf8');
    await writeFile(cfg2, text);
    const spool = path.join(work, 'cfg-spool', 'main');
    await mkdir(path.join(spool, 'fetch'), { recursive: true, mode: 0o700 });
    const fetch = (dest: string) => runCli(['--config', cfg2, 'wal', 'fetch', SEGMENT, dest, '--name', 'main', '--spool', spool], { command: [OPSCTL_SH], env: { ...modeEnv, OPSCTL_NODE: '/bin/false' } });
    await writeFile(path.join(spool, 'fetch', SEGMENT), 'made for the file as it was');
    await writeFile(path.join(spool, '.source'), `${await spoolSource(cfg2, {})}\n`);
    const before = await fetch(path.join(work, 'dest-cfg-1'));
    assert.equal(before.code, 0, `the rule can pass: ${before.stderr}`);
    await writeFile(path.join(spool, 'fetch', SEGMENT), 'made for the file as it was');
    await withinOneSecond(async () => {
      const was = (await stat(cfg2, { bigint: true })).mtimeNs;
      await writeFile(path.join(spool, '.source'), `${await spoolSource(cfg2, {})}\n`);
      await sleep(30);
      await writeFile(cfg2, text);
      return [was, (await stat(cfg2, { bigint: true })).mtimeNs];
    });
    const after = await fetch(path.join(work, 'dest-cfg-2'));
    assert.notEqual(after.code, 0, after.stdout);
    await assert.rejects(stat(path.join(work, 'dest-cfg-2')), /ENOENT/);
  });
});
}
