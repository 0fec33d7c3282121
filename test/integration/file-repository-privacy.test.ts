import assert from 'node:assert/strict';
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { OPSCTL, postgresConfig, runCli, tempDir, writeConfig } from '../helpers/cli.js';
import { createSeedDatabase, type TestDatabase } from '../helpers/postgres.js';

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    out.push(p);
    if (e.isDirectory()) out.push(...(await walk(p)));
  }
  return out;
}

describe('a file:// repository is private to its owner whatever the umask', () => {
  let db: TestDatabase;
  let work: string;
  before(async () => {
    db = await createSeedDatabase(200);
    work = await tempDir('ops-privacy-');
  });
  after(async () => {
    await db?.drop();
    await rm(work, { recursive: true, force: true });
  });

  it('under umask 022 (and 000) a backup and its verification are 0600 files in 0700 directories', async () => {
    for (const umask of ['022', '000']) {
      const repo = path.join(work, `repo-${umask}`);
      const cfg = await writeConfig(work, postgresConfig('db', db.url, `file://${repo}`));
      for (const args of [['backup', 'postgres'], ['verify', 'postgres']]) {
        const r = await runCli(['-c', `umask ${umask}; exec "$0" "$@"`, process.execPath, OPSCTL, '--config', cfg, ...args], { command: ['sh'] });
        assert.equal(r.code, 0, r.stderr);
      }
      const entries = await walk(repo);
      assert.ok(entries.some((p) => p.endsWith('manifest.json')) && entries.some((p) => p.endsWith('verification.json')));
      for (const p of entries) {
        const st = await stat(p);
        const mode = st.mode & 0o777;
        assert.equal(mode, st.isDirectory() ? 0o700 : 0o600, `${path.relative(repo, p)}: ${mode.toString(8)} under umask ${umask}`);
      }
    }
  });
});
