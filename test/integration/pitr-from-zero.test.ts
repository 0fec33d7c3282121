import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, mkdir, readFile, readdir, rm, rmdir, symlink } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT, tempDir } from '../helpers/cli.js';
import { pgBin, sqlOn, startPostgresServer, type TestPostgresServer } from '../helpers/pg-server.js';
import { postgresUid } from '../helpers/pitr.js';

/** The script between the from-zero markers of doc/pitr.md, exactly as the page shows it. */
async function fromZeroScript(): Promise<string> {
  const doc = await readFile(path.join(ROOT, 'doc', 'pitr.md'), 'utf8');
  const m = /<!-- from-zero:begin -->\n```sh\n([\s\S]*?)```\n<!-- from-zero:end -->/.exec(doc);
  assert.ok(m, 'doc/pitr.md has the from-zero script between its markers');
  return m[1]!;
}

function run(script: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-euo', 'pipefail', '-c', script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (out += c));
    // Bounded: a step that waits forever is a failure to see, not a hung suite.
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
    // 'exit', not 'close': the server the script restarts may hold a copy of its pipes.
    child.on('exit', (code) => {
      clearTimeout(timer);
      setTimeout(() => resolve({ code, out }), 200);
    });
  });
}

/**
 * doc/pitr.md's set-up from zero, run as written against a cluster that does not archive
 * yet (only the six names at its top are this host's): the role and grants, the
 * repository, the configuration, archive_command and the restart, `wal check` as the
 * proof, the first base backup and `info`. opsctl is this checkout's bin/opsctl on PATH,
 * as the page's installation step leaves it.
 */
describe('doc/pitr.md from zero, every command as written (a fresh cluster)', () => {
  let server: TestPostgresServer;
  let work: string;
  // The script's archive_command uses the default spool, as a host would: /tmp/ops-wal-spool-<uid>/<db>.
  // It is this test's to remove only when the test made it.
  const spoolRoot = `/tmp/ops-wal-spool-${postgresUid}`;
  const spool = path.join(spoolRoot, 'callcenter');
  let spoolWasThere = true;
  let rootWasThere = true;
  before(async () => {
    spoolWasThere = existsSync(spool);
    rootWasThere = existsSync(spoolRoot);
    server = await startPostgresServer();
    work = await tempDir('ops-from-zero-');
    await chmod(work, 0o755);
    await sqlOn(server.port, 'create database callcenter');
  });
  after(async () => {
    await server?.remove();
    if (work) await rm(work, { recursive: true, force: true });
    if (!spoolWasThere) await rm(spool, { recursive: true, force: true });
    if (!rootWasThere && (await readdir(spoolRoot).catch(() => ['?'])).length === 0) await rmdir(spoolRoot).catch(() => undefined);
  });

  it('runs to the end (exit 0): wal check proves archiving, the base backup lands verified, info offers the restore commands', async () => {
    const bin = path.join(work, 'bin');
    await mkdir(bin);
    await chmod(bin, 0o755);
    await symlink(path.join(ROOT, 'bin', 'opsctl'), path.join(bin, 'opsctl'));
    const pgdata = path.join(server.dir, 'data');
    const env = {
      ...process.env,
      PATH: `${bin}:${path.dirname(pgBin('psql'))}:${process.env.PATH}`,
      PGHOST: '127.0.0.1',
      // The server inherits this environment on restart: its archive_command's spool goes
      // where PostgreSQL's user may write, as on a host (the suite's own TMPDIR may not be).
      TMPDIR: '/tmp',
      PGPORT: String(server.port),
      PGDATA: pgdata,
      // pg_ctl restart takes the options the server was started with (postmaster.opts).
      RESTART: `runuser -u postgres -- ${pgBin('pg_ctl')} -D ${pgdata} -w -l ${path.join(server.dir, 'log')} restart`,
      OPS_CONFIG: path.join(work, 'etc', 'ops.config.json'),
      REPO: path.join(work, 'repo'),
      DB: 'callcenter',
    };
    const r = await run(await fromZeroScript(), env);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /wal\/callcenter: archiving works: [0-9A-F]{24} reached the archive in \d+\.\d s and came back intact/);
    assert.match(r.out, /postgres\/callcenter base backup \d{8}T\d{6}Z: .* verified \(level 3\)/);
    assert.match(r.out, /postgres\/callcenter: ok/);
    assert.match(r.out, /to the end of the archive:\n +opsctl --config \S+ops\.config\.json restore postgres latest --base --pgdata \/PATH --start --port 5433/);
    const settings = await sqlOn<{ name: string; setting: string }>(server.port, `select name, setting from pg_settings where name in ('archive_mode', 'wal_level') order by name`);
    assert.deepEqual(settings.map((s) => `${s.name}=${s.setting}`), ['archive_mode=on', 'wal_level=replica']);
  });
});
