import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, it, before, after } from 'node:test';
import { inProcessZstd, decoder } from '../../src/backup/codec.js';
import { decodeInt, parseToc } from '../../src/pg-archive/toc.js';
import { CopyLines } from '../../src/pg-archive/copy-lines.js';
import { createAwkwardDatabase, dumpFixture, pgRestoreVerdict, readerVerdict } from '../helpers/archive-differential.js';
import { pgMajorBindirs } from '../helpers/pg-majors.js';
import type { TestDatabase } from '../helpers/postgres.js';
import { ArchiveReader } from '../../src/pg-archive/reader.js';

describe('pg_dump custom-format reader', () => {
  let db: TestDatabase;
  let z0: Buffer;
  let z6: Buffer;
  before(async () => {
    db = await createAwkwardDatabase();
    z0 = await dumpFixture(db.url, 0);
    z6 = await dumpFixture(db.url, 6);
  });
  after(async () => db?.drop());

  it('ints are read as pg_restore reads them: sign byte, 4 bytes little-endian into a C int', () => {
    assert.equal(decodeInt(Buffer.from([0, 0x15, 0x0d, 0, 0]), 0, 4), 0x0d15);
    assert.equal(decodeInt(Buffer.from([1, 5, 0, 0, 0]), 0, 4), -5);
    assert.equal(decodeInt(Buffer.from([0, 0xff, 0xff, 0xff, 0xff]), 0, 4), -1, 'wraps like int32');
  });

  it('COPY lines: rows up to the end-of-copy marker, empty rows of a table without columns, cut-off rows', () => {
    const count = (...pieces: string[]) => {
      const l = new CopyLines();
      for (const p of pieces) l.push(Buffer.from(p));
      return { rows: l.rows, cut: l.cutOff, ended: l.ended };
    };
    assert.deepEqual(count('1\tx\n2\ty\\nz\n', '\\.\n\n\n'), { rows: 2, cut: false, ended: true });
    assert.deepEqual(count('\n\n\n\\', '.\n'), { rows: 3, cut: false, ended: true });
    assert.deepEqual(count('\\\\.\n', '\\.x\n', '\\.\n'), { rows: 2, cut: false, ended: true }, 'an escaped backslash and a longer line are rows');
    assert.deepEqual(count('1\n2'), { rows: 1, cut: true, ended: false });
    assert.deepEqual(count('1\n2\n'), { rows: 2, cut: false, ended: false }, 'no marker (a writer that leaves it out) is not a cut');
  });

  it('reads the same tables and rows from a -Z0 and a zlib archive, with every field straddling writes', async () => {
    const a = await readerVerdict(z0);
    const b = await readerVerdict(z6);
    assert.equal(a.ok && b.ok, true, `${a.detail} / ${b.detail}`);
    assert.deepEqual([...a.counts], [...b.counts]);
    assert.equal(a.counts.get('public.no_columns'), 3);
    assert.equal(a.counts.get('public.empty_table'), 0);
    assert.equal(a.counts.get('"Other Schema"."my table"'), 25);
    assert.equal(a.counts.get('s2."Ünïcödé.name"'), 3, 'a value "\\." is escaped in COPY text and counts as a row');
  });

  // Real archives of the majors production runs (pg_dump 17 in the image, 18 next), every
  // compression they offer, read by the native reader and by pg_restore of the same major.
  for (const major of [17, 18] as const) {
    for (const compress of ['0', 'gzip:6', 'lz4', 'zstd']) {
      it(`a real pg_dump ${major} archive (--compress=${compress}, version 1.16) reads to the rows pg_restore ${major} prints`, async () => {
        const bin = pgMajorBindirs()[major]!;
        const bytes = await dumpFixture(db.url, compress, path.join(bin, 'pg_dump'));
        const toc = parseToc(bytes);
        assert.deepEqual(toc.header.version, [1, 16, 0]);
        assert.equal(toc.entries.find((e) => e.desc === 'TABLE')?.relkind, 0x72, 'each entry\'s relkind (1.16)');
        // What the reader keeps (retain 'used'): the TABLE entries and those with data, as read whole but for their dependencies.
        const used = parseToc(bytes, 'used');
        assert.deepEqual(used.entries, toc.entries.filter((e) => e.desc === 'TABLE' || (e.hadDumper && e.dataState !== 3)).map(({ dependencies: _, ...e }) => e));
        assert.ok(used.entries.length < toc.entries.length && used.count === toc.entries.length, `${used.entries.length} of ${used.count} kept`);
        const oracle = await pgRestoreVerdict(bytes, path.join(bin, 'pg_restore'));
        assert.equal(oracle.ok, true, oracle.detail);
        const ours = await readerVerdict(bytes);
        assert.equal(ours.ok, true, ours.detail);
        if (compress === 'lz4' || compress === 'zstd') {
          // Blocks this reader cannot decode are walked to the end, never counted as read.
          const reader = new ArchiveReader();
          reader.end(bytes);
          await new Promise((resolve, reject) => reader.on('finish', resolve).on('error', reject));
          assert.equal(reader.summary.undecoded, compress);
          assert.deepEqual(reader.summary.tables, []);
        } else {
          assert.deepEqual([...ours.counts].sort(), [...oracle.counts].sort());
          assert.deepEqual([...ours.counts].sort(), [...(await readerVerdict(z0)).counts].sort(), 'the same rows as pg_dump 15 wrote');
        }
      });
    }
  }

  it('refuses versions it does not know, other integer sizes and other formats, naming the field', async () => {
    const cases: [string, (b: Buffer) => void, RegExp][] = [
      ['1.17', (b) => (b[6] = 17), /archive version 1\.17\.0 is not one this reader knows \(1\.14 to 1\.16: pg_dump 12 to 18\) at byte 5/],
      ['1.13', (b) => (b[6] = 13), /archive version 1\.13\.0/],
      ['intSize 8', (b) => (b[8] = 8), /integer size 8 \(pg_dump writes 4\) at byte 8/],
      ['tar format', (b) => (b[10] = 3), /format 3 is not the custom format/],
      ['no magic', (b) => (b[0] = 0x51), /no PGDMP magic/],
    ];
    for (const [label, mutate, message] of cases) {
      const b = Buffer.from(z0);
      mutate(b);
      const v = await readerVerdict(b);
      assert.equal(v.ok, false, label);
      assert.match(v.detail, message, label);
      assert.equal(v.code, 'ARCHIVE_FORMAT', label);
    }
  });

  it('a table of contents string claiming 2 GiB is refused at once, not buffered', async () => {
    const b = Buffer.from(z0);
    const at = b.indexOf(Buffer.from('ENCODING')) - 5;
    b.writeUInt32LE(0x7fffffff, at + 1);
    const v = await readerVerdict(b);
    assert.match(v.detail, /claims 2147483647 bytes; header and table of contents are limited to 134217728/);
  });

  it("Node's own zstd decodes in-process where the runtime has it (nodejs24.x), else the zstd binary runs", async () => {
    const own = inProcessZstd();
    const dec = decoder('zstd', { inProcess: true })!;
    assert.equal(dec.processOutput === true, own === undefined, `Node ${process.version}: in-process zstd ${own ? 'present' : 'absent'}`);
    const packed = spawnSync('zstd', ['-q', '-c'], { input: z0 }).stdout;
    const chunks: Buffer[] = [];
    dec.output.on('data', (c: Buffer) => chunks.push(c));
    dec.input.end(packed);
    await dec.done;
    assert.deepEqual(Buffer.concat(chunks), z0);
  });
});
