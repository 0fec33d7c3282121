import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { recordBytes } from '../../src/backup/catalog.js';
import { countsJson } from '../../src/verify/postgres-verify.js';
import type { TableData } from '../../src/pg-archive/reader.js';
import { prepareProperty, stringifyPrepared } from '../../src/util/prepared-json.js';

// A verification's row counts are written from the native reader's tables, not from an object of
// 50,000 keys; the bytes of the record and of --json must stay exactly JSON.stringify's.
const KEYS = ['public."a""b"', 'public."new\nline"', 'public.t1', 'public.t10', 'public.t2', 's."\u0000"', 's.\u{1F600}', 's.\ud800x', 'x.таблица'];
const tables = (keys: string[]): TableData[] => keys.map((key, i) => ({ dumpId: i + 1, schema: 's', table: 't', key, rows: i * 7, bytes: 0 }));
const plain = (keys: string[]) => Object.fromEntries(tables(keys).map((t) => [t.key, t.rows]));

function verificationLike(counts: Record<string, number>) {
  return { formatVersion: 1, backupId: 'b', levels: [{ level: 1, ok: true, detail: 'x\ny' }], rowCounts: counts, durationSeconds: 1, tools: { a: 'b' } };
}

describe('prepared JSON', () => {
  it('countsJson is JSON.stringify of the counts object, for keys in code-unit order', () => {
    const keys = [...KEYS].sort();
    assert.equal(countsJson(tables(keys)), JSON.stringify(plain(keys), null, 2));
    assert.equal(countsJson([]), '{}');
  });

  it('countsJson declines what an object would order otherwise: keys out of order, twice, or array indexes', () => {
    assert.equal(countsJson(tables(['public.b', 'public.a'])), undefined);
    assert.equal(countsJson(tables(['public.a', 'public.a'])), undefined);
    assert.equal(countsJson(tables(['1', 'public.a'])), undefined, 'an index key is listed first by an object');
    assert.notEqual(countsJson(tables(['01', '4294967295', 'public.a'])), undefined, 'not array indexes: "01", 2^32 - 1');
    assert.equal(countsJson(tables(['01', '4294967295', 'public.a'])), JSON.stringify(plain(['01', '4294967295', 'public.a']), null, 2));
  });

  it('a document with a prepared property is written as JSON.stringify writes it, at any depth, and the property still reads as the object', () => {
    const keys = [...KEYS].sort();
    for (const wrap of [(v: object) => v, (v: object) => ({ results: [{ ok: true, verification: v }, { ok: false }] })]) {
      const v = verificationLike({});
      let built = 0;
      prepareProperty(v, 'rowCounts', countsJson(tables(keys))!, () => (built += 1, plain(keys)));
      const expected = JSON.stringify(wrap(verificationLike(plain(keys))), null, 2);
      assert.equal(stringifyPrepared(wrap(v)), expected);
      assert.equal(built, 0, 'written without building the object');
      assert.equal(recordBytes(wrap(v)), `${expected}\n`);
      assert.deepEqual(v.rowCounts, plain(keys));
      assert.equal(JSON.stringify(wrap(v), null, 2), expected, 'plain JSON.stringify (the Lambda runtime) sees the same');
      assert.equal(built, 1, 'built once, on first read');
      assert.deepEqual(Object.keys(v), Object.keys(verificationLike({})), 'the property keeps its place');
    }
  });

  it('a document without one is JSON.stringify\'s text', () => {
    const doc = { a: [1, { b: 'c\n', d: null }], e: { f: 'g' } };
    assert.equal(stringifyPrepared(doc), JSON.stringify(doc, null, 2));
    assert.throws(() => prepareProperty({ a: 1 } as { a: number; b?: number }, 'b', '1', () => 1), /not a property yet/);
  });
});
