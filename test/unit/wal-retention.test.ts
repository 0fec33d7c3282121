import assert from 'node:assert/strict';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { BackupEntry } from '../../src/backup/catalog.js';
import { silentLog } from '../../src/log.js';
import { FileRepository } from '../../src/repository/file-repository.js';
import { parseWalName, segmentName, segmentOfLsn } from '../../src/wal/names.js';
import { pruneWal } from '../../src/wal/retention.js';
import { makeTempDir } from '../helpers/tmp.js';

const SEG = 16 << 20;
const now = new Date('2026-12-01T12:00:00Z');
const days = (n: number) => new Date(now.getTime() - n * 86_400_000);

function base(id: string, timeline: number, startLsn: string): BackupEntry {
  return {
    component: 'postgres',
    name: 'main/base',
    id,
    startedAt: new Date(),
    objects: [],
    lastWrite: new Date(),
    manifest: { details: { kind: 'base', timeline, startLsn, stopLsn: startLsn, stopSegment: segmentOfLsn(timeline, startLsn, SEG), segmentBytes: SEG } } as never,
  } as BackupEntry;
}

describe('WAL names and retention', () => {
  it('segment names, LSNs and indexes agree with PostgreSQL (16 MiB segments: 256 per log id)', () => {
    assert.equal(segmentOfLsn(1, '0/2000028', SEG), '000000010000000000000002');
    assert.equal(segmentOfLsn(3, '16/B374D848', SEG), '0000000300000016000000B3');
    assert.equal(segmentName(1, 256, SEG), '000000010000000100000000');
    assert.deepEqual(parseWalName('00000002.history'), { file: '00000002.history', kind: 'history', timeline: 2 });
    assert.equal(parseWalName('000000010000000000000003.00000028.backup')?.kind, 'backup');
    assert.equal(parseWalName('000000010000000000000003.partial')?.kind, 'partial');
    assert.equal(parseWalName('../etc/passwd'), undefined);
  });

  it('removes only WAL older than the limit that no kept base backup needs; never a history file; nothing without a base', async () => {
    const dir = await makeTempDir('ops-walret-');
    const repo = new FileRepository(dir);
    const put = async (file: string, age: number) => {
      const p = path.join(dir, 'wal', 'main', `${file}.zst`);
      await mkdir(path.dirname(p), { recursive: true });
      await writeFile(p, 'x');
      await utimes(p, days(age), days(age));
    };
    for (let i = 1; i <= 10; i += 1) await put(segmentName(1, i, SEG), 10);
    await put(segmentName(1, 11, SEG), 2); // young
    await put('00000002.history', 10);
    await put(segmentName(2, 3, SEG), 10); // a later timeline: needed by the base
    await put(`${segmentName(1, 4, SEG)}.00000028.backup`, 10);
    const none = await pruneWal(repo, 'main', [], 7, { dryRun: false, now, log: silentLog });
    assert.equal(none.deleted, 0);
    const r = await pruneWal(repo, 'main', [base('20261120T000000Z', 1, '0/6000028'), base('20261125T000000Z', 1, '0/9000028')], 7, { dryRun: false, now, log: silentLog });
    const left = (await repo.list('wal/main/')).map((o) => o.key.slice('wal/main/'.length, -4)).sort();
    assert.deepEqual(left, ['000000010000000000000006', '000000010000000000000007', '000000010000000000000008', '000000010000000000000009', '00000001000000000000000A', '00000001000000000000000B', '000000020000000000000003', '00000002.history'].sort());
    assert.equal(r.deleted, 6, 'segments 1-5 and the .backup label of segment 4');
  });

  it("streamed chunks: removed once their segment is archived whole, or when old and before the oldest base; the open segment's chunks stay", async () => {
    const dir = await makeTempDir('ops-walret-chunks-');
    const repo = new FileRepository(dir);
    const put = async (key: string, age: number) => {
      const p = path.join(dir, key);
      await mkdir(path.dirname(p), { recursive: true });
      await writeFile(p, 'x');
      await utimes(p, days(age), days(age));
    };
    const chunk = (seg: string) => `wal/main/chunks/${seg}/00000000-00001000.zst`;
    await put(`wal/main/${segmentName(1, 9, SEG)}.zst`, 0); // archived whole: its leftover chunk goes
    await put(chunk(segmentName(1, 9, SEG)), 0);
    await put(chunk(segmentName(1, 2, SEG)), 10); // old, before the base: goes
    await put(chunk(segmentName(1, 10, SEG)), 10); // the open segment (not archived, after the base): stays
    const r = await pruneWal(repo, 'main', [base('20261120T000000Z', 1, '0/6000028')], 7, { dryRun: false, now, log: silentLog });
    const left = (await repo.list('wal/main/chunks/')).map((o) => o.key).sort();
    assert.deepEqual(left, [chunk(segmentName(1, 10, SEG))]);
    assert.equal(r.deleted, 2);
  });
});
