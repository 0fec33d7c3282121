import { spawn } from 'node:child_process';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ArchiveError, ArchiveReader, type LayoutMark } from '../../src/pg-archive/reader.js';
import { CopyRowCounter } from '../../src/verify/copy-counter.js';
import { query, createSeedDatabase, type TestDatabase } from './postgres.js';
import { RESTORE_SCRIPT_OPTIONS } from '../../src/restore/pg-restore-options.js';
import { pgMajorBindirs } from './pg-majors.js';

/**
 * Differential testing of the native archive reader against `pg_restore -f -` (the
 * oracle), on real pg_dump archives and thousands of mutations of them. Deterministic:
 * the same seed gives the same mutations.
 */

export const MUTATION_KINDS = [
  'truncate at a structure boundary',
  'truncate at a random offset',
  'flip a header/TOC byte',
  'flip a length/id byte',
  'flip a data byte',
  'zero a range',
  'append garbage',
  'reorder data blocks',
  'drop a data block',
  'repeat a data block',
] as const;
export type MutationKind = (typeof MUTATION_KINDS)[number];

export type Outcome =
  /** both refuse */
  | 'both reject'
  /** both accept, same row counts (only level 1, sha256, can see the change) */
  | 'both accept, same rows'
  /** pg_restore accepts it but prints no countable COPY for a table whose statement the mutation changed */
  | 'both accept, COPY statement altered'
  /** ours refuses what pg_restore accepts: allowed only for reasons the format makes certain (see STRICTER_CODES) */
  | 'ours stricter'
  /** a defect: ours accepts what pg_restore refuses, or counts other rows */
  | 'VIOLATION';

/**
 * Where this reader refuses what `pg_restore -f` accepts, and why that is right: pg_restore
 * stops reading after the last block it needs, so bytes after the archive's end never
 * reach it; our payload must be exactly what pg_dump wrote.
 */
export const STRICTER_CODES = new Set(['ARCHIVE_TRAILING_BYTES', 'ARCHIVE_DUPLICATE_BLOCK', 'ARCHIVE_BAD_DEPENDENCY']);

export interface Fixture {
  name: string;
  bytes: Buffer;
  /** The oracle of the same major as the pg_dump that wrote it (PATH's pg_restore unless told). */
  pgRestore?: string;
}

export interface CaseResult {
  fixture: string;
  kind: MutationKind;
  outcome: Outcome;
  detail: string;
}

/** A small database with the seeds' schema plus the awkward objects the issue lists. */
export async function createAwkwardDatabase(): Promise<TestDatabase> {
  const db = await createSeedDatabase(40, 'ops_archive');
  await query(
    db.name,
    `create schema "Other Schema";
     create table "Other Schema"."my table" (id int primary key, "quoted ""col""" text, payload bytea);
     insert into "Other Schema"."my table" select g, 'row ' || g || E'\\twith tab\\nand newline', decode(md5(g::text) || '00ff5c2e0a', 'hex') from generate_series(1, 25) g;
     create schema s2;
     create table s2."Ünïcödé.name" (v text);
     insert into s2."Ünïcödé.name" values ('\\.'), (E'\\\\.'), ('ok');
     create table public.empty_table (a int);
     create table public.no_columns ();
     insert into public.no_columns default values;
     insert into public.no_columns default values;
     insert into public.no_columns default values;
     select lo_from_bytea(0, decode(repeat('0123456789abcdef', 300), 'hex'));
     select lo_from_bytea(0, 'small large object');`,
  );
  return db;
}

/** A real archive: `compress` as pg_dump takes it (6, 0, or 16+'s `lz4`, `zstd:3`), from the pg_dump given (PATH's unless told). */
export async function dumpFixture(url: string, compress: number | string, pgDump = 'pg_dump'): Promise<Buffer> {
  // To a pipe, as the backup does: pg_dump cannot seek back, so offsets stay unset.
  return runCollect(pgDump, ['--format=custom', `--compress=${compress}`, `--dbname=${url}`], undefined, 60_000).then((r) => {
    if (r.code !== 0) throw new Error(`pg_dump failed: ${r.stderr}`);
    return r.stdout;
  });
}

/**
 * The archives both the test and the larger bench run mutate: the host's pg_dump 15 (archive
 * 1.14) with and without zlib blocks, and real pg_dump 17 and 18 (1.16), each judged by
 * pg_restore of its own major (the majors production runs).
 */
export async function majorFixtures(url: string): Promise<Fixture[]> {
  const bin = pgMajorBindirs();
  return [
    { name: 'pg_dump 15 -Z0', bytes: await dumpFixture(url, 0) },
    { name: 'pg_dump 15 -Z6 (zlib blocks)', bytes: await dumpFixture(url, 6) },
    { name: 'pg_dump 17 -Z0', bytes: await dumpFixture(url, 0, path.join(bin[17]!, 'pg_dump')), pgRestore: path.join(bin[17]!, 'pg_restore') },
    { name: 'pg_dump 18 gzip:6', bytes: await dumpFixture(url, 'gzip:6', path.join(bin[18]!, 'pg_dump')), pgRestore: path.join(bin[18]!, 'pg_restore') },
  ];
}

interface Collected {
  code: number | null;
  stdout: Buffer;
  stderr: string;
  timedOut: boolean;
}

export function runCollect(cmd: string, args: string[], input: Buffer | undefined, timeoutMs: number, onStdout?: (b: Buffer) => void): Promise<Collected> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (b: Buffer) => (onStdout ? onStdout(b) : out.push(b)));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.stdin.on('error', () => undefined);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr: err, timedOut });
    });
    child.stdin.end(input);
  });
}

interface Verdict {
  ok: boolean;
  counts: Map<string, number>;
  detail: string;
  code?: string;
}

/** The oracle: pg_restore reading the archive from stdin with restore's options, as verify feeds it; a hang counts as refusal. */
export async function pgRestoreVerdict(archive: Buffer, pgRestore = 'pg_restore'): Promise<Verdict> {
  const counter = new CopyRowCounter();
  const r = await runCollect(pgRestore, [...RESTORE_SCRIPT_OPTIONS, '--file=-'], archive, 3_000, (b) => counter.write(b));
  await new Promise<void>((resolve) => counter.end(resolve));
  if (r.timedOut) return { ok: false, counts: counter.counts, detail: 'pg_restore hung (killed after 3 s)' };
  if (r.code !== 0) return { ok: false, counts: counter.counts, detail: r.stderr.trim().split('\n').pop() ?? `exit ${r.code}` };
  return { ok: true, counts: counter.counts, detail: 'accepted' };
}

export async function readerVerdict(archive: Buffer, layout = false): Promise<Verdict & { layout: LayoutMark[] }> {
  const reader = new ArchiveReader({ layout });
  try {
    await new Promise<void>((resolve, reject) => {
      reader.on('error', reject);
      reader.on('finish', resolve);
      // Written in pieces of uneven size, so fields straddle writes as they do from a pipe.
      const source = Readable.from(pieces(archive), { objectMode: false });
      source.pipe(reader);
    });
  } catch (error) {
    return {
      ok: false,
      counts: new Map(),
      detail: error instanceof Error ? error.message : String(error),
      ...(error instanceof ArchiveError ? { code: error.code } : {}),
      layout: reader.layout,
    };
  }
  const counts = new Map(reader.summary.tables.map((t) => [t.key, t.rows]));
  return { ok: true, counts, detail: 'accepted', layout: reader.layout };
}

function* pieces(buf: Buffer): Generator<Buffer> {
  let i = 0;
  let size = 1;
  while (i < buf.length) {
    yield buf.subarray(i, i + size);
    i += size;
    size = size >= 65_536 ? 7 : size * 3 + 1;
  }
}

/** mulberry32: a small seeded PRNG, so a failing case can be regenerated. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Mutation {
  kind: MutationKind;
  label: string;
  bytes: Buffer;
}

/** Every structure boundary, plus `perKind` random cases of each other kind. */
export function mutations(original: Buffer, layout: LayoutMark[], perKind: number, seed: number): Mutation[] {
  const rnd = prng(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const out: Mutation[] = [];
  const dataStart = layout.find((m) => m.kind === 'data-start')!.offset;
  // Every block and entry boundary; of the chunk boundaries (one per row in a -Z0 dump), a sample.
  const chunks = layout.filter((m) => m.kind === 'chunk-length' || m.kind === 'lo-oid');
  const sampled = chunks.filter((_, i) => i % Math.max(1, Math.ceil(chunks.length / perKind)) === 0);
  const structural = layout.filter((m) => m.kind !== 'chunk-length' && m.kind !== 'lo-oid');
  const boundaries = [...new Set([0, 5, 8, 11, ...structural.map((m) => m.offset), ...sampled.map((m) => m.offset)])].filter((o) => o < original.length);
  for (const o of boundaries) out.push({ kind: 'truncate at a structure boundary', label: `cut at ${o}`, bytes: original.subarray(0, o) });
  for (let k = 0; k < perKind; k += 1) {
    const o = 1 + int(original.length - 1);
    out.push({ kind: 'truncate at a random offset', label: `cut at ${o}`, bytes: original.subarray(0, o) });
  }
  const flip = (kind: MutationKind, o: number) => {
    const b = Buffer.from(original);
    const x = 1 + int(255);
    b[o] = b[o]! ^ x;
    out.push({ kind, label: `byte ${o} ^= 0x${x.toString(16)}`, bytes: b });
  };
  for (let k = 0; k < perKind; k += 1) flip('flip a header/TOC byte', int(dataStart));
  const ints = layout.filter((m) => m.kind === 'block' || m.kind === 'chunk-length' || m.kind === 'lo-oid');
  for (let k = 0; k < perKind; k += 1) {
    const m = ints[int(ints.length)]!;
    flip('flip a length/id byte', m.offset + int(m.kind === 'block' ? 6 : 5));
  }
  const lengthBytes = new Set(ints.flatMap((m) => [0, 1, 2, 3, 4, 5].map((d) => m.offset + d)));
  for (let k = 0; k < perKind; k += 1) {
    let o: number;
    do o = dataStart + int(original.length - dataStart);
    while (lengthBytes.has(o));
    flip('flip a data byte', o);
  }
  for (let k = 0; k < perKind; k += 1) {
    const o = int(original.length);
    const len = 1 + int(64);
    const b = Buffer.from(original);
    b.fill(0, o, Math.min(o + len, b.length));
    out.push({ kind: 'zero a range', label: `zero ${len} at ${o}`, bytes: b });
  }
  for (let k = 0; k < perKind; k += 1) {
    const len = 1 + int(100);
    const tail = Buffer.alloc(len);
    for (let i = 0; i < len; i += 1) tail[i] = int(256);
    // Half of them look like the start of another data block.
    if (k % 2 === 0) tail[0] = 1;
    out.push({ kind: 'append garbage', label: `append ${len}`, bytes: Buffer.concat([original, tail]) });
  }
  // Whole data blocks moved, left out or written twice: what a spliced or reordered stream holds.
  const starts = layout.filter((m) => m.kind === 'block').map((m) => m.offset);
  const end = layout.find((m) => m.kind === 'end')?.offset ?? original.length;
  const blocks = starts.map((o, i) => ({ from: o, to: starts[i + 1] ?? end }));
  if (blocks.length >= 2) {
    for (let k = 0; k < perKind; k += 1) {
      const i = int(blocks.length - 1);
      const j = i + 1 + int(blocks.length - 1 - i);
      const [a, b] = [blocks[i]!, blocks[j]!];
      const bytes = Buffer.concat([original.subarray(0, a.from), original.subarray(b.from, b.to), original.subarray(a.to, b.from), original.subarray(a.from, a.to), original.subarray(b.to)]);
      out.push({ kind: 'reorder data blocks', label: `blocks ${i} and ${j} swapped`, bytes });
    }
  }
  for (let k = 0; k < Math.min(perKind, blocks.length); k += 1) {
    const b = blocks[int(blocks.length)]!;
    out.push({ kind: 'drop a data block', label: `block at ${b.from} left out`, bytes: Buffer.concat([original.subarray(0, b.from), original.subarray(b.to)]) });
    const c = blocks[int(blocks.length)]!;
    out.push({ kind: 'repeat a data block', label: `block at ${c.from} written twice`, bytes: Buffer.concat([original.subarray(0, c.to), original.subarray(c.from, c.to), original.subarray(c.to)]) });
  }
  return out.filter((m) => !m.bytes.equals(original));
}

export function judge(oracle: Verdict, ours: Verdict): { outcome: Outcome; detail: string } {
  if (!oracle.ok) {
    return ours.ok ? { outcome: 'VIOLATION', detail: `pg_restore refused (${oracle.detail}), ours accepted` } : { outcome: 'both reject', detail: `pg_restore: ${oracle.detail}; ours: ${ours.detail}` };
  }
  if (!ours.ok) {
    return ours.code && STRICTER_CODES.has(ours.code)
      ? { outcome: 'ours stricter', detail: ours.detail }
      : { outcome: 'VIOLATION', detail: `pg_restore accepted, ours refused: ${ours.detail}` };
  }
  let altered = false;
  for (const [key, rows] of ours.counts) {
    const theirs = oracle.counts.get(key);
    if (theirs === undefined) {
      altered = true;
      continue;
    }
    if (theirs !== rows) return { outcome: 'VIOLATION', detail: `${key}: pg_restore ${theirs} rows, ours ${rows}` };
  }
  for (const key of oracle.counts.keys()) if (!ours.counts.has(key)) return { outcome: 'VIOLATION', detail: `${key}: only pg_restore printed it` };
  return altered ? { outcome: 'both accept, COPY statement altered', detail: '' } : { outcome: 'both accept, same rows', detail: '' };
}

/** Runs every mutation of every fixture through both readers, `parallel` pg_restores at a time. */
export async function runDifferential(fixtures: Fixture[], perKind: number, seed = 1, parallel = 4): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (const fixture of fixtures) {
    const base = await readerVerdict(fixture.bytes, true);
    if (!base.ok) throw new Error(`fixture ${fixture.name} itself is refused: ${base.detail}`);
    const cases = mutations(fixture.bytes, base.layout, perKind, seed);
    let next = 0;
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        while (next < cases.length) {
          const m = cases[next++]!;
          const [oracle, ours] = await Promise.all([pgRestoreVerdict(m.bytes, fixture.pgRestore), readerVerdict(m.bytes)]);
          const { outcome, detail } = judge(oracle, ours);
          results.push({ fixture: fixture.name, kind: m.kind, outcome, detail: `${m.label}: ${detail}` });
        }
      }),
    );
  }
  return results;
}

export const OUTCOMES: Outcome[] = ['both reject', 'both accept, same rows', 'both accept, COPY statement altered', 'ours stricter', 'VIOLATION'];

/** Counts by mutation kind and outcome, as a markdown table. */
export function differentialTable(results: CaseResult[]): string {
  const lines = [`| mutation | cases | ${OUTCOMES.join(' | ')} |`, `|---|---:|${OUTCOMES.map(() => '---:').join('|')}|`];
  for (const kind of MUTATION_KINDS) {
    const of = results.filter((r) => r.kind === kind);
    lines.push(`| ${kind} | ${of.length} | ${OUTCOMES.map((o) => of.filter((r) => r.outcome === o).length).join(' | ')} |`);
  }
  lines.push(`| **all** | ${results.length} | ${OUTCOMES.map((o) => results.filter((r) => r.outcome === o).length).join(' | ')} |`);
  return lines.join('\n');
}
