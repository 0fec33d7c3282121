import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { FileRepository } from '../../src/repository/file-repository.js';
import { makeTempDir } from '../helpers/tmp.js';

/**
 * The race CI met: `wal fetch` lists the archive (to tell "not archived" from "wrong
 * archive") while `wal push` writes into it. Every write makes a partial file and renames
 * or unlinks it, so an entry readdir saw can be gone when it is stat'ed. Listing must
 * leave it out, not fail: a failed listing made restore_command exit 255 and stop a PITR
 * drill's recovery.
 */
describe('file:// listing beside concurrent writers', () => {
  it('lists while 2,000 exclusive and plain writes come and go: never fails, never lists a partial file', async () => {
    const dir = await makeTempDir('ops-list-race-');
    const repo = new FileRepository(dir);
    try {
      let writing = true;
      const writer = (async () => {
        for (let i = 0; i < 2000; i += 1) {
          const key = `wal/main/${String(i).padStart(24, '0')}.zst`;
          if (i % 2 === 0) await repo.createExclusive(key, Buffer.alloc(1024, i));
          else await repo.putBytes(key, Buffer.alloc(1024, i));
        }
        writing = false;
      })();
      let lists = 0;
      while (writing) {
        const listed = await repo.list('wal/main/');
        assert.ok(listed.every((o) => o.key.endsWith('.zst')), 'only whole objects listed');
        lists += 1;
      }
      await writer;
      assert.ok(lists > 10, `listed ${lists} times during the writes`);
      assert.equal((await repo.list('wal/main/')).length, 2000);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
