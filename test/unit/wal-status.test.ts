import assert from 'node:assert/strict';
import { mkdir, rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { silentLog } from '../../src/log.js';
import { FileRepository } from '../../src/repository/file-repository.js';
import { walPush } from '../../src/wal/archive.js';
import { walStatus } from '../../src/wal/status.js';
import { tempDir } from '../helpers/cli.js';

describe('wal status', () => {
  it('names as newest the furthest segment (what LAST shows), not the one written last: a hand push of an older one changes nothing', async () => {
    const work = await tempDir('ops-wal-status-');
    try {
      const repo = new FileRepository(path.join(work, 'repo'));
      const wal = path.join(work, 'pg_wal');
      await mkdir(wal);
      const names = ['0D', '0E', '0F', '10'].map((s) => `0000000100000000000000${s}`);
      for (const n of names) {
        await writeFile(path.join(wal, n), Buffer.alloc(16 << 20, 1));
        await walPush(path.join(wal, n), { name: 'db', spool: path.join(work, 'spool') }, { repo, log: silentLog });
      }
      // ...0D archived again by hand, later than all the others.
      const later = new Date(Date.now() + 60_000);
      await utimes(path.join(work, 'repo', 'wal', 'db', `${names[0]}.zst`), later, later);
      const s = await walStatus(repo, 'db');
      assert.equal(s.timelines[0]!.last, names[3]);
      assert.equal(s.newest?.file, names[3]);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});
