import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ArchiveBadDependencyError, ArchiveFormatError } from '../../src/pg-archive/errors.js';
import { parseToc } from '../../src/pg-archive/toc.js';

// The table of contents is read from its bytes without decoding the fields nothing uses
// (oids, tablespace, access method, owner) and with dependencies parsed in place. These pin
// what that parse must still answer exactly as pg_restore 15 reads the same bytes.

const int = (v: number) => {
  const b = Buffer.alloc(5);
  b[0] = v < 0 ? 1 : 0;
  b.writeUInt32LE(Math.abs(v), 1);
  return b;
};
const str = (s: string | Buffer | null) => (s === null ? int(-1) : Buffer.concat([int(Buffer.byteLength(s)), Buffer.isBuffer(s) ? s : Buffer.from(s)]));

interface Fields {
  tableOid?: string | null;
  desc?: string | null;
  namespace?: string | Buffer;
  withOids?: string | Buffer;
  deps?: (string | Buffer)[];
}

/** A pg_dump 15 (archive 1.14) header and one entry with the fields given. */
function archive(entries: Fields[]): Buffer {
  const header = Buffer.concat([
    Buffer.from('PGDMP'),
    Buffer.from([1, 14, 0, 4, 8, 1]),
    int(0), // compression level
    ...[0, 0, 0, 1, 0, 126, 0].map(int), // creation time
    str('db'),
    str('15.0'),
    str('15.0'),
    int(entries.length),
  ]);
  const body = entries.map((f, i) =>
    Buffer.concat([
      int(i + 1),
      int(0),
      str(f.tableOid === undefined ? '0' : f.tableOid),
      str('0'),
      str(`tag${i}`),
      str(f.desc === undefined ? 'COMMENT' : f.desc),
      int(1),
      str(''),
      str(''),
      str(null),
      str(f.namespace ?? 'public'),
      str(''),
      str(''),
      str('postgres'),
      str(f.withOids ?? 'false'),
      ...(f.deps ?? []).map(str),
      str(null),
      Buffer.from([3]),
      Buffer.alloc(8),
    ]),
  );
  return Buffer.concat([header, ...body]);
}

const deps = (d: string | Buffer) => parseToc(archive([{ deps: [d] }])).entries[0]!.dependencies;

describe('table of contents fields read in place', () => {
  it('a dependency is strtoul\'s prefix: blanks, a sign, digits; leading zeros do not count toward the 10 digits', () => {
    for (const [text, id] of [
      ['12', 12],
      ['  \t\n\v\f\r7', 7],
      ['+5', 5],
      ['12abc', 12],
      ['0000000000042', 42],
      ['2147483647', 2147483647],
      ['1 2', 1],
    ] as const) assert.deepEqual(deps(text), [id], JSON.stringify(text));
  });

  it('a dependency that is 0, negative, beyond INT_MAX, no number, or cut by a NUL before its digits is refused, naming its text', () => {
    for (const text of ['0', '-5', '2147483648', '99999999999', 'abc', '', ' ', '+', Buffer.from([0x00, 0x31])]) {
      assert.throws(() => deps(text), (e: unknown) => e instanceof ArchiveBadDependencyError && e.message.includes('out of range in entry 1'), JSON.stringify(String(text)));
    }
    assert.deepEqual(deps(Buffer.from([0x33, 0x00, 0x39])), [3], 'a NUL ends the text: "3\\09" is 3');
  });

  it('WITH OIDS is refused only for the exact text "true" (up to a NUL)', () => {
    assert.throws(() => parseToc(archive([{ withOids: 'true' }])), /WITH OIDS/);
    assert.throws(() => parseToc(archive([{ withOids: Buffer.from('true\0x') }])), /WITH OIDS/);
    for (const w of ['false', 'True', 'truex', '']) assert.equal(parseToc(archive([{ withOids: w }])).entries.length, 1, w);
  });

  it('a null table oid or desc is refused at the field\'s offset', () => {
    assert.throws(() => parseToc(archive([{ tableOid: null }])), (e: unknown) => e instanceof ArchiveFormatError && /missing \(null string\)/.test(e.message));
    assert.throws(() => parseToc(archive([{ desc: null }])), (e: unknown) => e instanceof ArchiveFormatError && /missing \(null string\)/.test(e.message));
  });

  it("retain 'used' keeps only TABLE entries and entries with data, yet checks every entry as a whole parse does", () => {
    // Every entry of archive() is a COMMENT (no data) unless given a desc: kept only when all are.
    for (const text of ['0', '-5', 'abc', Buffer.from([0x00, 0x31])]) {
      assert.throws(() => parseToc(archive([{ desc: 'TABLE' }, { deps: [text] }]), 'used'), ArchiveBadDependencyError, `a dropped entry's dependency ${JSON.stringify(String(text))}`);
    }
    assert.throws(() => parseToc(archive([{ withOids: 'true' }]), 'used'), /WITH OIDS/, 'WITH OIDS in a dropped entry');
    assert.throws(() => parseToc(archive([{ tableOid: null }]), 'used'), /missing \(null string\)/, 'a null table oid in a dropped entry');
    const fields: Fields[] = [{ desc: 'TABLE', deps: ['7'] }, { deps: ['3'] }, { desc: 'TABLE', namespace: 'таблица' }, {}, { desc: 'INDEX' }];
    const all = parseToc(archive(fields), 'all');
    const used = parseToc(archive(fields), 'used');
    assert.deepEqual(
      used.entries,
      all.entries.filter((e) => e.desc === 'TABLE').map(({ dependencies, ...e }) => (assert.ok(dependencies), e)),
      'the TABLE entries, with every field but their dependencies as a whole parse reads it',
    );
    assert.ok(used.entries.every((e) => !('dependencies' in e)), 'no dependency list kept');
    assert.deepEqual(used.entries.map((e) => e.tag), ['tag0', 'tag2']);
    assert.equal(used.count, 5);
    assert.equal(all.count, 5);
    assert.equal(used.length, all.length);
  });

  it('a repeated desc and schema come back equal to the decoded text, and a non-ASCII or NUL-cut one is decoded, not matched', () => {
    const entries = parseToc(
      archive([
        { desc: 'TABLE', namespace: 'public' },
        { desc: 'TABLE', namespace: 'public' },
        { desc: 'TABLE', namespace: 'таблица' },
        { desc: 'TABLE', namespace: 'таблица' },
        { desc: 'TABLE', namespace: Buffer.from('public\0zz') },
        { desc: 'TABLE DATA', namespace: 'publiC' },
      ]),
    ).entries;
    assert.deepEqual(
      entries.map((e) => [e.desc, e.namespace]),
      [
        ['TABLE', 'public'],
        ['TABLE', 'public'],
        ['TABLE', 'таблица'],
        ['TABLE', 'таблица'],
        ['TABLE', 'public'],
        ['TABLE DATA', 'publiC'],
      ],
    );
  });
});
