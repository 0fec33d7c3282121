import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it, before, after } from 'node:test';
import { inProcessZstd, decoder } from '../../src/backup/codec.js';
import { decodeInt, parseToc } from '../../src/pg-archive/toc.js';
import { CopyLines } from '../../src/pg-archive/copy-lines.js';
import { createAwkwardDatabase, dumpFixture, readerVerdict } from '../helpers/archive-differential.js';
import { rewriteArchive } from '../helpers/archive-writer.js';
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

  for (const [version, extra] of [
    [[1, 15, 0], 'the compression algorithm as a byte'],
    [[1, 16, 0], 'the algorithm byte and each entry\'s relkind'],
  ] as const) {
    it(`reads a ${version.join('.')} archive (${extra}) to the same rows`, async () => {
      for (const original of [z0, z6]) {
        const rewritten = rewriteArchive(original, parseToc(original), [...version]);
        const toc = parseToc(rewritten);
        assert.deepEqual(toc.header.version, version);
        if (version[1] === 16) assert.equal(toc.entries.find((e) => e.desc === 'TABLE')?.relkind, 0x72);
        const [a, b] = [await readerVerdict(original), await readerVerdict(rewritten)];
        assert.equal(b.ok, true, b.detail);
        assert.deepEqual([...b.counts], [...a.counts]);
      }
    });
  }

  it('blocks compressed with lz4 or zstd (pg_dump 16+) are walked, never reported as decoded', async () => {
    for (const [algorithm, name] of [[2, 'lz4'], [3, 'zstd']] as const) {
      const rewritten = rewriteArchive(z0, parseToc(z0), [1, 16, 0], { algorithm });
      const reader = new ArchiveReader();
      reader.end(rewritten);
      await new Promise((resolve, reject) => reader.on('finish', resolve).on('error', reject));
      assert.equal(reader.summary.undecoded, name);
      assert.deepEqual(reader.summary.tables, [], 'no row counted from bytes it cannot decode');
    }
  });

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
