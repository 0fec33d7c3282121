import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, chown, copyFile, mkdir, readdir, readFile, rename, rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { recordPushed, spoolSource } from '../../src/wal/spool.js';
import { OPSCTL, OPSCTL_SH, runCli, tempDir, writeConfig } from '../helpers/cli.js';
import { startPostgresServer, type TestPostgresServer } from '../helpers/pg-server.js';
import { removeLocalS3, startLocalS3, type LocalS3 } from '../helpers/s3.js';

const postgresIds = async () => {
  const { execFileSync } = await import('node:child_process');
  return { uid: Number(execFileSync('id', ['-u', 'postgres']).toString()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString()) };
};

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(sql)).rows;
  } finally {
    await c.end();
  }
}

/** Write some WAL and switch segments `n` times; wait until the archiver has handed every one over (at least `n`, none waiting). */
async function makeSegments(url: string, n: number): Promise<number> {
  for (let i = 0; i < n; i += 1) {
    await query(url, `create table if not exists t (i int, pad text); insert into t select g, repeat('x', 200) from generate_series(1, 2000) g`);
    await query(url, 'select pg_switch_wal()');
  }
  for (let i = 0; i < 300; i += 1) {
    const [s] = await query<{ archived: string; failed: string; last: string | null; current: string }>(
      url,
      `select archived_count::text as archived, failed_count::text as failed, last_archived_wal as last, pg_walfile_name(pg_current_wal_lsn()) as current from pg_stat_archiver`,
    );
    const ready = await query<{ n: string }>(url, `select count(*)::text as n from pg_ls_archive_statusdir() where name like '%.ready'`);
    if (ready[0]!.n === '0' && Number(s!.archived) >= n) return Number(s!.archived);
    if (Number(s!.failed) > 0 && i > 100) throw new Error(`archive_command failed ${s!.failed} times`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('archiver did not catch up');
}

for (const kind of ['file', 's3'] as const) {
  describe(`WAL archive with archive_command = 'opsctl wal push %p' (${kind === 'file' ? 'file://' : 's3rver'} repository, a real cluster)`, () => {
    let server: TestPostgresServer;
    let work: string;
    let cfg: string;
    let s3: LocalS3 | undefined;
    let env: Record<string, string> = {};
    let archived = 0;
    before(async () => {
      work = await tempDir('ops-wal-');
      await chmod(work, 0o755);
      const { uid, gid } = await postgresIds();
      const repo = path.join(work, 'repo');
      await mkdir(repo);
      await chown(repo, uid, gid);
      if (kind === 's3') {
        s3 = await startLocalS3('wal');
        env = s3.env;
      }
      cfg = await writeConfig(work, { repository: { url: kind === 's3' ? 's3://wal/ops' : `file://${repo}` }, postgres: [{ name: 'main', url: 'postgresql://postgres@127.0.0.1/postgres' }] });
      await chmod(cfg, 0o644);
      const envPrefix = Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ');
      // The server's own pushes keep their spool inside this test's directory.
      const serverSpool = path.join(work, 'server-spool');
      await mkdir(serverSpool, { mode: 0o700 });
      await chown(serverSpool, uid, gid);
      server = await startPostgresServer({
        settings: {
          wal_level: 'replica',
          archive_mode: 'on',
          // Through bin/opsctl, as the docs say: the shell answers spooled files, Node does the rest.
          archive_command: `env ${envPrefix} OPSCTL_NODE=${process.execPath} ${OPSCTL_SH} --config ${cfg} wal push %p --name main --spool ${serverSpool}`,
        },
      });
      archived = await makeSegments(server.url, 4);
    });
    after(async () => {
      await server?.remove();
      if (s3) await removeLocalS3(s3);
      await rm(work, { recursive: true, force: true });
    });
    const cli = (args: string[]) => runCli(['--config', cfg, ...args], { env });

    it('every segment PostgreSQL handed over is in the archive, contiguous; wal status exits 0', async () => {
      assert.ok(archived >= 4, `${archived} archived`);
      const r = await cli(['--json', 'wal', 'status', '--name', 'main']);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const s = JSON.parse(r.stdout) as { segmentBytes: number; timelines: { timeline: number; segments: number; missingCount: number }[] };
      assert.equal(s.segmentBytes, 16 * 1024 * 1024);
      assert.equal(s.timelines[0]!.timeline, 1);
      assert.equal(s.timelines[0]!.missingCount, 0);
      assert.ok(s.timelines[0]!.segments >= 4);
    });

    it('wal fetch returns a segment byte for byte (checked), and a name not archived exits 1 at once', async () => {
      const file = (await query<{ file: string }>(server.url, 'select last_archived_wal as file from pg_stat_archiver'))[0]!.file;
      const original = await readFile(path.join(server.dir, 'data', 'pg_wal', file));
      const dest = path.join(work, 'fetched');
      const r = await cli(['wal', 'fetch', file, dest, '--name', 'main', '--spool', path.join(work, 's1')]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok((await readFile(dest)).equals(original));
      // Fetching ahead: the following segment waits checked in the spool, and the next call takes it without loading the CLI.
      const spool = path.join(work, 'fetch-spool');
      const firstArchived = (JSON.parse((await cli(['--json', 'wal', 'status', '--name', 'main'])).stdout) as { timelines: { first: string }[] }).timelines[0]!.first;
      const r1 = await cli(['--json', 'wal', 'fetch', firstArchived, path.join(work, 'f1'), '--name', 'main', '--spool', spool]);
      const ahead = (JSON.parse(r1.stdout) as { ahead: string[] }).ahead;
      assert.ok(ahead.length >= 1, r1.stdout);
      const r2 = await cli(['wal', 'fetch', ahead[0]!, path.join(work, 'f2'), '--name', 'main', '--spool', spool]);
      assert.equal(r2.stdout, `${ahead[0]}: fetched ahead, sha256 checked\n`);
      const direct = await cli(['wal', 'fetch', ahead[0]!, path.join(work, 'f3'), '--name', 'main', '--ahead', '0', '--spool', path.join(work, 'other-spool')]);
      assert.equal(direct.code, 0);
      assert.ok((await readFile(path.join(work, 'f2'))).equals(await readFile(path.join(work, 'f3'))), 'the segment fetched ahead is the archived one');
      // bin/opsctl (what restore_command calls) hands a segment fetched ahead over in the shell: Node here only fails.
      if (ahead.length >= 2) {
        const shell = await runCli(['--config', cfg, 'wal', 'fetch', ahead[1]!, path.join(work, 'f4'), '--name', 'main', '--spool', spool], { env: { ...env, OPSCTL_NODE: '/bin/false' }, command: [OPSCTL_SH] });
        assert.equal(shell.code, 0, shell.stderr);
        assert.equal(shell.stdout, `${ahead[1]}: fetched ahead, sha256 checked\n`);
        const again = await runCli(['--config', cfg, 'wal', 'fetch', ahead[1]!, path.join(work, 'f5'), '--name', 'main', '--ahead', '0', '--spool', path.join(work, 'other-spool')]);
        assert.ok((await readFile(path.join(work, 'f4'))).equals(await readFile(path.join(work, 'f5'))));
        const gone = await runCli(['--config', cfg, 'wal', 'fetch', ahead[1]!, path.join(work, 'f6'), '--name', 'main', '--spool', spool], { env: { ...env, OPSCTL_NODE: '/bin/false' }, command: [OPSCTL_SH] });
        assert.equal(gone.code, 1, 'taken once; the next ask goes to Node (here /bin/false)');
        assert.equal(again.code, 0);
      } else assert.fail(`fetch ahead brought ${ahead.length} segment(s); the test needs 2`);
      const missing = await cli(['wal', 'fetch', '00000009000000000000000A', path.join(work, 'nothing'), '--name', 'main', '--spool', path.join(work, 's3')]);
      assert.equal(missing.code, 1);
      assert.match(missing.stdout, /00000009000000000000000A is not in the archive/);
      await assert.rejects(readFile(path.join(work, 'nothing')), /ENOENT/);
      // Timeline 1 has no history file, yet every promotion from it asks: 1 ("not archived"),
      // from the shell without Node (a Node here would exit 7), and from Node alike.
      const node7 = path.join(work, 'node-7');
      await writeFile(node7, '#!/bin/sh\nexit 7\n', { mode: 0o755 });
      const tl1 = await runCli(['--config', cfg, 'wal', 'fetch', '00000001.history', path.join(work, 'h1'), '--name', 'main'], { env: { ...env, OPSCTL_NODE: node7 }, command: [OPSCTL_SH] });
      assert.equal(tl1.code, 1, tl1.stderr);
      assert.match(tl1.stderr, /00000001\.history is not in the archive \(timeline 1 has no history file\)/);
      const tl1Node = await cli(['--json', 'wal', 'fetch', '00000001.history', path.join(work, 'h2'), '--name', 'main']);
      assert.equal(tl1Node.code, 1, tl1Node.stdout + tl1Node.stderr);
      // Node answers it without asking the repository: with one that cannot answer (nothing
      // listens on the endpoint), timeline 1 still gets 1, while timeline 2's file, which may
      // exist, gets a status that stops recovery.
      const dead = { ...env, OPS_REPOSITORY_URL: 's3://nowhere/ops', AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'x', AWS_REGION: 'us-east-1', AWS_MAX_ATTEMPTS: '1' };
      const tl1Dead = await runCli(['--config', cfg, 'wal', 'fetch', '00000001.history', path.join(work, 'h3'), '--name', 'main'], { env: dead });
      assert.equal(tl1Dead.code, 1, tl1Dead.stdout + tl1Dead.stderr);
      const tl2Dead = await runCli(['--config', cfg, 'wal', 'fetch', '00000002.history', path.join(work, 'h4'), '--name', 'main'], { env: dead });
      assert.ok((tl2Dead.code ?? 0) > 125, `unreachable repository: exit ${tl2Dead.code} ${tl2Dead.stderr}`);
    });

    it('pushing an archived segment again with identical content exits 0; with other content it exits 2 and keeps the archived one', async () => {
      const file = (await query<{ file: string }>(server.url, 'select last_archived_wal as file from pg_stat_archiver'))[0]!.file;
      const dir = path.join(work, 'again', 'pg_wal');
      await mkdir(dir, { recursive: true });
      await copyFile(path.join(server.dir, 'data', 'pg_wal', file), path.join(dir, file));
      const same = await cli(['--json', 'wal', 'push', path.join(dir, file), '--name', 'main']);
      assert.equal(same.code, 0, same.stderr);
      assert.equal((JSON.parse(same.stdout) as { outcome: string }).outcome, 'identical');
      const bytes = await readFile(path.join(dir, file));
      bytes[1000] = bytes[1000]! ^ 0xff;
      await writeFile(path.join(dir, file), bytes);
      const other = await cli(['wal', 'push', path.join(dir, file), '--name', 'main']);
      assert.equal(other.code, 2);
      assert.match(other.stderr, new RegExp(`${file} is already archived with other content .*not overwritten`));
      const back = path.join(work, 'back');
      assert.equal((await cli(['wal', 'fetch', file, back, '--name', 'main', '--spool', path.join(work, 's2')])).code, 0);
      assert.ok((await readFile(back)).equals(await readFile(path.join(server.dir, 'data', 'pg_wal', file))), 'the archived copy is the original');
    });

    it('a backlog of 40 pushed in one call: each archived whole; one already archived with other content is not spooled, and its own call exits 2', async () => {
      const dir = path.join(work, 'backlog40', 'pg_wal');
      const status = path.join(dir, 'archive_status');
      await mkdir(status, { recursive: true });
      const seed = await readdir(path.join(server.dir, 'data', 'pg_wal'));
      const source = await readFile(path.join(server.dir, 'data', 'pg_wal', seed.find((f) => /^[0-9A-F]{24}$/.test(f))!));
      const names = Array.from({ length: 40 }, (_, i) => `0000000A00000000000000${(i + 16).toString(16).toUpperCase()}`);
      for (const [i, n] of names.entries()) {
        const b = Buffer.from(source);
        b.writeUInt32BE(i, 200);
        await writeFile(path.join(dir, n), b);
        await writeFile(path.join(status, `${n}.ready`), '');
      }
      // names[7] is in the archive already, with other bytes (another cluster's, say).
      const other = path.join(work, 'backlog40-other');
      await mkdir(other);
      await writeFile(path.join(other, names[7]!), Buffer.alloc(source.length, 1));
      assert.equal((await cli(['wal', 'push', path.join(other, names[7]!), '--name', 'main', '--spool', path.join(work, 'sp40-other')])).code, 0);
      const spool = path.join(work, 'sp40');
      const first = await cli(['--json', 'wal', 'push', path.join(dir, names[0]!), '--name', 'main', '--parallel', '2', '--spool', spool]);
      assert.equal(first.code, 0, first.stderr);
      const ahead = (JSON.parse(first.stdout) as { ahead: string[] }).ahead;
      assert.deepEqual(ahead, names.slice(1).filter((n) => n !== names[7]));
      assert.match(first.stderr, new RegExp(`wal push ahead of ${names[7]} skipped`));
      for (const n of names.slice(1)) {
        const r = await runCli(['--config', cfg, 'wal', 'push', path.join(dir, n), '--name', 'main', '--spool', spool], { env, command: [OPSCTL_SH] });
        if (n === names[7]) {
          assert.equal(r.code, 2, `${n}: ${r.stdout}${r.stderr}`);
          continue;
        }
        assert.equal(r.stdout, `${n}: spooled\n`);
        await rename(path.join(status, `${n}.ready`), path.join(status, `${n}.done`));
      }
      // Every one fetched back is the file pushed, byte for byte.
      for (const n of [names[0]!, names[19]!, names[39]!]) {
        const out = path.join(work, `b40-${n}`);
        assert.equal((await cli(['wal', 'fetch', n, out, '--name', 'main', '--ahead', '0', '--spool', path.join(work, 'sp40-f')])).code, 0);
        assert.ok((await readFile(out)).equals(await readFile(path.join(dir, n))), n);
      }
      assert.deepEqual((await readdir(spool)).filter((f) => !f.endsWith('.ok') && f !== '.source'), [], 'no scratch files left in the spool (the records and the mark of what they are for stay)');
    });

    it('a backlog in archive_status/ is pushed ahead in parallel; the next calls return at once from the spool', async () => {
      const dir = path.join(work, 'backlog', 'pg_wal');
      const status = path.join(dir, 'archive_status');
      await mkdir(status, { recursive: true });
      const seed = await readdir(path.join(server.dir, 'data', 'pg_wal'));
      const source = path.join(server.dir, 'data', 'pg_wal', seed.find((f) => /^[0-9A-F]{24}$/.test(f))!);
      const names = Array.from({ length: 6 }, (_, i) => `0000000700000000000000${(i + 16).toString(16).toUpperCase()}`);
      for (const [i, n] of names.entries()) {
        const b = await readFile(source);
        b.writeUInt32BE(i, 200);
        await writeFile(path.join(dir, n), b);
        await writeFile(path.join(status, `${n}.ready`), '');
      }
      const spool = path.join(work, 'spool');
      const first = await cli(['--json', 'wal', 'push', path.join(dir, names[0]!), '--name', 'main', '--parallel', '2', '--batch', '4', '--spool', spool]);
      assert.equal(first.code, 0, first.stderr);
      assert.deepEqual((JSON.parse(first.stdout) as { ahead: string[] }).ahead, names.slice(1, 4));
      const second = await cli(['--json', 'wal', 'push', path.join(dir, names[1]!), '--name', 'main', '--spool', spool]);
      assert.equal((JSON.parse(second.stdout) as { outcome: string }).outcome, 'spooled');
      // As PostgreSQL calls it (no --json): answered by bin/opsctl.js's fast path, before the CLI loads.
      const third = await cli(['wal', 'push', path.join(dir, names[3]!), '--name', 'main', '--spool', spool]);
      assert.equal(third.code, 0, third.stderr);
      assert.equal(third.stdout, `${names[3]}: spooled\n`);
      // What PostgreSQL should call, bin/opsctl, answers a spooled file in the shell: with a
      // Node that only fails, the spooled file still succeeds; a file not spooled reaches it.
      const shell = (args: string[]) => runCli(['--config', cfg, ...args], { env: { ...env, OPSCTL_NODE: '/bin/false' }, command: [OPSCTL_SH] });
      const viaShell = await shell(['wal', 'push', path.join(dir, names[2]!), '--name', 'main', '--spool', spool]);
      assert.equal(viaShell.code, 0, viaShell.stderr);
      assert.equal(viaShell.stdout, `${names[2]}: spooled\n`);
      const notSpooled = await shell(['wal', 'push', path.join(dir, names[5]!), '--name', 'main', '--spool', spool]);
      assert.equal(notSpooled.code, 1, 'went to Node (here /bin/false)');
      await recordPushed(spool, names[2]!, path.join(dir, names[2]!), await spoolSource(cfg, env)); // spooled again, for the change below
      // A spool others can write is not believed: the file is pushed (and found identical) instead.
      await writeFile(path.join(spool, `${names[4]}.ok`), '{}');
      await chmod(spool, 0o777);
      const untrusted = await cli(['wal', 'push', path.join(dir, names[4]!), '--name', 'main', '--spool', spool]);
      assert.equal(untrusted.code, 0, untrusted.stderr);
      assert.match(untrusted.stdout, /: (archived|identical)/);
      await chmod(spool, 0o700);
      // A spooled file whose bytes changed since is not taken on trust: pushed, and refused as a conflict.
      const b = await readFile(path.join(dir, names[2]!));
      b[50] = b[50]! ^ 1;
      await writeFile(path.join(dir, names[2]!), b);
      const changed = await cli(['wal', 'push', path.join(dir, names[2]!), '--name', 'main', '--spool', spool]);
      assert.equal(changed.code, 2);
    });

    it('a damaged archived object is refused by wal fetch (exit 255: fatal to recovery, naming it) and nothing reaches the destination', async () => {
      if (kind === 's3') return; // the bytes are damaged on disk: file:// only
      const file = (await query<{ file: string }>(server.url, 'select last_archived_wal as file from pg_stat_archiver'))[0]!.file;
      const object = path.join(work, 'repo', 'wal', 'main', `${file}.zst`);
      const original = await readFile(object);
      const damaged = Buffer.from(original);
      damaged[damaged.length - 100] = damaged[damaged.length - 100]! ^ 0xff;
      await writeFile(object, damaged);
      try {
        const dest = path.join(work, 'damaged-dest');
        const r = await cli(['wal', 'fetch', file, dest, '--name', 'main', '--ahead', '0', '--spool', path.join(work, 's4')]);
        assert.equal(r.code, 255, r.stdout + r.stderr);
        assert.match(r.stderr, new RegExp(`archived ${file} is damaged \\((does not decompress|sha256 .* differs)`));
        await assert.rejects(readFile(dest), /ENOENT/);
        assert.deepEqual((await readdir(work)).filter((f) => f.startsWith('damaged-dest')), [], 'no temporary file left either');
      } finally {
        await writeFile(object, original);
      }
    });

    it('a segment deleted from the archive is found by wal status (exit 2), naming it', async () => {
      const list = await cli(['--json', 'wal', 'status', '--name', 'main']);
      const s = JSON.parse(list.stdout) as { timelines: { timeline: number; first: string; last: string }[] };
      const tl1 = s.timelines.find((t) => t.timeline === 1)!;
      const middle = `${tl1.first.slice(0, 16)}${(Number.parseInt(tl1.first.slice(16), 16) + 1).toString(16).toUpperCase().padStart(8, '0')}`;
      if (kind === 's3') await s3!.client.send(new (await import('@aws-sdk/client-s3')).DeleteObjectCommand({ Bucket: 'wal', Key: `ops/wal/main/${middle}.zst` }));
      else await rm(path.join(work, 'repo', 'wal', 'main', `${middle}.zst`));
      const r = await cli(['wal', 'status', '--name', 'main']);
      assert.equal(r.code, 2, r.stdout);
      assert.match(r.stdout, new RegExp(`problem: timeline 1: 1 segment\\(s\\) missing, first ${middle}`));
    });
  });
}

describe('SIGKILL during wal push leaves nothing that wal fetch returns as the segment', () => {
  it('30 pushes killed at random moments: each name is then either absent (exit 1) or whole and checked (exit 0)', async () => {
    const work = await tempDir('ops-wal-kill-');
    try {
      const cfg = await writeConfig(work, { repository: { url: `file://${work}/repo` }, postgres: [{ name: 'main', url: 'postgresql://postgres@127.0.0.1/postgres' }] });
      const dir = path.join(work, 'pg_wal');
      await mkdir(dir);
      const content = Buffer.alloc(16 << 20);
      for (let i = 0; i < content.length; i += 4096) content.writeUInt32BE(i, i);
      // Kill moments spread over 0.2x..1.4x of how long one whole push takes on this machine,
      // so both outcomes happen on a fast machine and on a slow one.
      await writeFile(path.join(dir, '000000030000000000000001'), content);
      const t0 = Date.now();
      const warm = await runCli(['--config', cfg, 'wal', 'push', path.join(dir, '000000030000000000000001'), '--name', 'main']);
      assert.equal(warm.code, 0, warm.stderr);
      const oneMs = Date.now() - t0;
      let whole = 0;
      let absent = 0;
      for (let i = 0; i < 30; i += 1) {
        const name = `0000000300000000000000${(i + 16).toString(16).toUpperCase()}`;
        await writeFile(path.join(dir, name), content);
        const child = spawn(process.execPath, [OPSCTL, '--config', cfg, 'wal', 'push', path.join(dir, name), '--name', 'main'], { stdio: 'ignore' });
        const exited = new Promise((r) => child.once('exit', r));
        await new Promise((r) => setTimeout(r, Math.round(oneMs * (0.2 + 1.2 * (((i * 7) % 30) / 29)))));
        child.kill('SIGKILL');
        await exited;
        const out = path.join(work, `out-${i}`);
        const r = await runCli(['--config', cfg, 'wal', 'fetch', name, out, '--name', 'main', '--spool', path.join(work, 'spool')]);
        if (r.code === 0) {
          whole += 1;
          assert.ok((await readFile(out)).equals(content), `${name}: fetched bytes equal the pushed file`);
        } else {
          absent += 1;
          assert.equal(r.code, 1, r.stdout + r.stderr);
          await assert.rejects(readFile(out), /ENOENT/);
        }
        // PostgreSQL retries: the retry succeeds, whatever the kill left.
        const retry = await runCli(['--config', cfg, 'wal', 'push', path.join(dir, name), '--name', 'main']);
        assert.equal(retry.code, 0, retry.stderr);
      }
      assert.equal(whole + absent, 30);
      // Both outcomes happened: the kills landed before and after the object was in place.
      assert.ok(whole > 0 && absent > 0, `${whole} whole, ${absent} absent (one push took ${oneMs} ms)`);
      const leftovers = (await readdir(path.join(work, 'repo', 'wal', 'main'))).filter((f) => !f.endsWith('.zst'));
      assert.ok(leftovers.every((f) => f.includes('.partial-')), leftovers.join(', '));
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});

describe('bin/opsctl as the postgres user (not root), as PostgreSQL runs it', () => {
  it("answers its own spool's records in the shell, and refuses a spool that another user owns", async () => {
    const work = await tempDir('ops-wal-user-');
    try {
      await chmod(work, 0o755);
      const { uid, gid } = await postgresIds();
      const repo = path.join(work, 'repo');
      const dir = path.join(work, 'pg_wal');
      await mkdir(path.join(dir, 'archive_status'), { recursive: true });
      const names = ['000000050000000000000010', '000000050000000000000011', '000000050000000000000012'];
      for (const [i, n] of names.entries()) {
        await writeFile(path.join(dir, n), Buffer.alloc(1 << 20, i + 1));
        await writeFile(path.join(dir, 'archive_status', `${n}.ready`), '');
      }
      const cfg = await writeConfig(work, { repository: { url: `file://${repo}` }, postgres: [{ name: 'main', url: 'postgresql://postgres@127.0.0.1/postgres' }] });
      await chmod(cfg, 0o644);
      for (const p of [work, dir, path.join(dir, 'archive_status'), ...names.map((n) => path.join(dir, n))]) await chown(p, uid, gid);
      const spool = path.join(work, 'spool');
      const asPostgres = (args: string[], node = process.execPath) =>
        runCli(['-u', 'postgres', '--', 'env', `OPSCTL_NODE=${node}`, OPSCTL_SH, '--config', cfg, ...args], { command: ['runuser'] });
      const first = await asPostgres(['wal', 'push', path.join(dir, names[0]!), '--name', 'main', '--spool', spool]);
      assert.equal(first.code, 0, first.stdout + first.stderr);
      assert.match(first.stdout, /2 more pushed ahead/);
      const hit = await asPostgres(['wal', 'push', path.join(dir, names[1]!), '--name', 'main', '--spool', spool], '/bin/false');
      assert.equal(hit.code, 0, hit.stdout + hit.stderr);
      assert.equal(hit.stdout, `${names[1]}: spooled\n`);
      // The same spool handed to root: not root's, so not believed (root's call goes to its Node, here /bin/false).
      const asRoot = await runCli(['--config', cfg, 'wal', 'push', path.join(dir, names[2]!), '--name', 'main', '--spool', spool], { env: { OPSCTL_NODE: '/bin/false' }, command: [OPSCTL_SH] });
      assert.equal(asRoot.code, 1, 'root does not take a record from a spool it does not own');
      const still = await asPostgres(['wal', 'push', path.join(dir, names[2]!), '--name', 'main', '--spool', spool], '/bin/false');
      assert.equal(still.stdout, `${names[2]}: spooled\n`);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});

describe('a WAL file that changes while it is pushed (PostgreSQL never does this; a broken copy or another writer might)', () => {
  it('in a backlog it is skipped, not spooled; pushed itself it is refused (exit 2, naming it) and nothing is archived under its name', async () => {
    const work = await tempDir('ops-wal-changing-');
    try {
      const cfg = await writeConfig(work, { repository: { url: `file://${work}/repo` }, postgres: [{ name: 'main', url: 'postgresql://postgres@127.0.0.1/postgres' }] });
      const dir = path.join(work, 'pg_wal');
      await mkdir(path.join(dir, 'archive_status'), { recursive: true });
      const [still, changing] = ['000000040000000000000010', '000000040000000000000011'];
      await writeFile(path.join(dir, still), Buffer.alloc(16 << 20, 2));
      await writeFile(path.join(dir, changing), Buffer.alloc(64 << 20, 3));
      for (const f of [still, changing]) await writeFile(path.join(dir, 'archive_status', `${f}.ready`), '');
      const spool = path.join(work, 'spool');
      // Another writer touches the file all the while the pushes run.
      let touching = true;
      const toucher = (async () => {
        for (let i = 1; touching; i += 1) {
          await utimes(path.join(dir, changing), i, i);
          await new Promise((r) => setTimeout(r, 2));
        }
      })();
      try {
        const first = await runCli(['--config', cfg, '--json', 'wal', 'push', path.join(dir, still), '--name', 'main', '--spool', spool]);
        assert.equal(first.code, 0, first.stderr);
        assert.deepEqual((JSON.parse(first.stdout) as { ahead: string[] }).ahead, []);
        assert.match(first.stderr, new RegExp(`wal push ahead of ${changing} skipped: .*changed while it was being archived`));
        const own = await runCli(['--config', cfg, 'wal', 'push', path.join(dir, changing), '--name', 'main', '--spool', spool]);
        assert.equal(own.code, 2, own.stdout + own.stderr);
        assert.match(own.stdout + own.stderr, new RegExp(`${changing} changed while it was being archived`));
      } finally {
        touching = false;
        await toucher;
      }
      const f = await runCli(['--config', cfg, 'wal', 'fetch', changing, path.join(work, 'out'), '--name', 'main', '--ahead', '0', '--spool', path.join(work, 'fs')]);
      assert.equal(f.code, 1, 'not in the archive');
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});
