import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Manifest } from '../../src/backup/manifest.js';
import type { ArchiveToc, TocEntry } from '../../src/pg-archive/toc.js';
import { catalogueLevel } from '../../src/verify/postgres-verify.js';
import { TableListing } from '../../src/verify/table-listing.js';

// Level 2 matches pg_restore --list by the dump id the table of contents gives, then
// anywhere in the listing. These pin both: the id's line must name the same table (a line
// naming another is not taken on trust), and a table found only on another line still counts.
const ok: PromiseSettledResult<void> = { status: 'fulfilled', value: undefined };

function entry(dumpId: number, desc: string, namespace: string, tag: string): TocEntry {
  return { dumpId, hadDumper: false, tag, desc, section: 2, copyStmt: null, namespace, relkind: null, dependencies: [], dataState: 3, entryOffset: 0 };
}

function toc(entries: TocEntry[]): ArchiveToc {
  const header = { version: [1, 14, 0], intSize: 4, offSize: 8, compression: 'none', created: { year: 2026, month: 1, day: 1, hour: 0, minute: 0, second: 0, isDst: 0 }, database: 'd', serverVersion: '15', dumpVersion: '15' } as const;
  return { header: { ...header, version: [1, 14, 0] }, entries, count: entries.length, length: 0 };
}

const manifest = (tables: [string, string][]) => ({ tables: tables.map(([schema, name]) => ({ schema, name })) }) as unknown as Manifest;

const level = (tables: [string, string][], entries: TocEntry[], listing: string) => catalogueLevel(manifest(tables), {}, toc(entries), ok, ok, TableListing.of(listing));

describe('verify level 2: the table of contents against pg_restore --list', () => {
  it('passes when the line of each table\'s dump id names it', () => {
    const l = level([['public', 't1'], ['public', 't2']], [entry(10, 'TABLE', 'public', 't1'), entry(11, 'TABLE', 'public', 't2'), entry(12, 'TABLE DATA', 'public', 't1')], ';\n; Selected TOC Entries:\n10; 1259 16384 TABLE public t1 postgres\n11; 1259 16390 TABLE public t2 postgres\n12; 0 16384 TABLE DATA public t1 postgres\n');
    assert.equal(l.ok, true, l.detail);
    assert.match(l.detail ?? '', /^2 tables in the table of contents, 2 expected; pg_restore --list agrees$/);
  });

  it('fails when the dump id\'s line names another table and no line names this one', () => {
    const l = level([['public', 't1']], [entry(10, 'TABLE', 'public', 't1')], '10; 1259 16384 TABLE public t10 postgres\n10; 1259 16384 TABLE public t1x postgres\n');
    assert.equal(l.ok, false);
    assert.equal(l.detail, 'the two readers disagree: the table of contents lacks [], pg_restore --list lacks [public.t1]');
  });

  it('counts a table --list shows under another dump id (the search anywhere, as before)', () => {
    const l = level([['public', 't1']], [entry(10, 'TABLE', 'public', 't1')], '99; 1259 16384 TABLE public t1 postgres\n');
    assert.equal(l.ok, true, l.detail);
  });

  it('a schema named DATA: its TABLE line ("TABLE DATA x postgres") is found by dump id', () => {
    const l = level([['DATA', 'x']], [entry(7, 'TABLE', 'DATA', 'x')], '7; 1259 16384 TABLE DATA x postgres\n');
    assert.equal(l.ok, true, l.detail);
  });

  it('a name holding a line break is matched as --list prints it (a space)', () => {
    const l = level([['public', 'new\nline']], [entry(7, 'TABLE', 'public', 'new\nline')], '7; 1259 16384 TABLE public new line postgres\n');
    assert.equal(l.ok, true, l.detail);
  });

  it('a table neither reader has fails as missing; one only the table of contents has, as a disagreement', () => {
    const missing = level([['public', 'ghost']], [], '');
    assert.equal(missing.detail, 'missing from the archive: public.ghost');
    const one = level([['public', 't1']], [entry(10, 'TABLE', 'public', 't1')], '11; 1259 16384 TABLE public t2 postgres\n');
    assert.equal(one.detail, 'the two readers disagree: the table of contents lacks [], pg_restore --list lacks [public.t1]');
  });

  it('counts each expected table once, however often the manifest and the extra tables name it', () => {
    const entries = [entry(10, 'TABLE', 'public', 't1'), entry(11, 'TABLE', 'public', 't2')];
    const listing = '10; 1259 16384 TABLE public t1 postgres\n11; 1259 16390 TABLE public t2 postgres\n';
    const twice = catalogueLevel(manifest([['public', 't1'], ['public', 't2'], ['public', 't1']]), { extraTables: ['public.t2', 'public.t1'] }, toc(entries), ok, ok, TableListing.of(listing));
    assert.equal(twice.detail, '2 tables in the table of contents, 2 expected; pg_restore --list agrees');
    const ghost = catalogueLevel(manifest([['public', 't1']]), { extraTables: ['public.ghost', 'public.ghost', 'public.t1'] }, toc(entries), ok, ok, TableListing.of(listing));
    assert.equal(ghost.detail, 'missing from the archive: public.ghost');
  });

  it('a table the table of contents names twice passes when the line of either dump id names it', () => {
    const entries = [entry(10, 'TABLE', 'public', 't1'), entry(12, 'TABLE', 'public', 't1')];
    const l = level([['public', 't1']], entries, '10; 1259 16384 TABLE public other postgres\n12; 1259 16390 TABLE public t1 postgres\n');
    assert.equal(l.ok, true, l.detail);
    assert.equal(l.detail, '1 tables in the table of contents, 1 expected; pg_restore --list agrees');
  });
});
