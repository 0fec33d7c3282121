import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TableListing } from '../../src/verify/table-listing.js';

// Level 2 reads pg_restore --list's TABLE lines as they arrive, in chunks that split lines
// and characters anywhere. The reference is the whole listing read at once, line by line,
// with the regular expressions the earlier reader used.
function reference(listing: string): { byId: Map<number, string>; texts: string[] } {
  const byId = new Map<number, string>();
  const texts: string[] = [];
  for (const line of listing.split('\n')) {
    const m = /^(\d+); \d+ \d+ TABLE (.*)$/s.exec(line);
    if (!m) continue;
    texts.push(m[2]!);
    if (m[1]!.length <= 10) byId.set(Number(m[1]), m[2]!);
  }
  return { byId, texts };
}

const LISTING = [
  ';',
  '; Archive created at 2026-12-06 07:56:36 UTC',
  ';     dbname: t',
  '; Selected TOC Entries:',
  ';',
  '3399; 1259 16390 TABLE public t1 postgres',
  '3400; 1259 16391 TABLE Other Schema my table postgres',
  '3401; 1259 16392 TABLE public таблица владелец',
  '3402; 0 16390 TABLE DATA public t1 postgres',
  '7; 1259 16384 TABLE DATA x postgres',
  '12345678901; 1259 1 TABLE public huge id postgres',
  '3403; 1259 16393 INDEX public t1_pkey postgres',
  '3404; 1259 16394 TABLE ATTACH public p1 postgres',
  '3399; 1259 16390 TABLE public t1 again',
  'x; 1259 1 TABLE public notanid postgres',
  '3405;1259 1 TABLE public nospace postgres',
  '3406; 1259 TABLE public oneoid postgres',
  '3407; 1259 1 TABLE',
  '3408; 1259 1 TABLE ',
  '3409; 1259 16395 TABLE public last postgres',
].join('\n');

describe('pg_restore --list TABLE lines, read as they arrive', () => {
  it('agrees with the whole listing read at once, for every way of cutting it in two and in 7-byte pieces', () => {
    const want = reference(LISTING);
    assert.equal(want.texts.length, 10, 'the listing has the TABLE lines the cases need');
    const bytes = Buffer.from(LISTING, 'utf8');
    const cuts: Buffer[][] = [];
    for (let at = 0; at <= bytes.length; at += 1) cuts.push([bytes.subarray(0, at), bytes.subarray(at)]);
    const pieces: Buffer[] = [];
    for (let at = 0; at < bytes.length; at += 7) pieces.push(bytes.subarray(at, at + 7));
    cuts.push(pieces);
    for (const chunks of cuts) {
      const l = new TableListing();
      for (const c of chunks) l.push(Buffer.from(c));
      l.end();
      assert.deepEqual(l.texts, want.texts, `cut at ${chunks[0]!.length}`);
      assert.deepEqual([...l.byId], [...want.byId], `cut at ${chunks[0]!.length}`);
    }
  });

  it('keeps the last line of a dump id, the text as printed (a multi-byte name whole), and a last line without its line break', () => {
    const l = TableListing.of(LISTING);
    assert.equal(l.byId.get(3399), 'public t1 again');
    assert.equal(l.byId.get(3401), 'public таблица владелец');
    assert.equal(l.byId.get(7), 'DATA x postgres', 'a schema named DATA reads like TABLE DATA: kept');
    assert.equal(l.byId.get(3409), 'public last postgres');
    assert.equal(l.byId.has(3403), false, 'an INDEX line');
    assert.equal(l.texts.includes('public huge id postgres'), true, 'an id of 11 digits is in the search anywhere');
    assert.equal([...l.byId.values()].includes('public huge id postgres'), false, 'but matched by no dump id');
  });
});
