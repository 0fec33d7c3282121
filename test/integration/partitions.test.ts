import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { FileRepository } from '../../src/repository/file-repository.js';
import { filesUnder } from '../helpers/repo.js';
import { after, afterEach, describe, it } from 'node:test';
import pg from 'pg';
import { configSchema, type PostgresDatabaseConfig } from '../../src/config/schema.js';
import { seedSchemaSql } from '../../src/demo/sample-database.js';
import { silentLog } from '../../src/log.js';
import { ensurePartitions, type PartitionRunResult } from '../../src/partitions/run.js';
import { partitionStatus } from '../../src/partitions/status.js';
import { postgresConfig, runCli, tempDir, writeConfig } from '../helpers/cli.js';
import { monthsBetween } from '../helpers/months.js';
import { createTestDatabase, dbUrl, query, type TestDatabase } from '../helpers/postgres.js';

const SEEDS_TABLES = [
  { table: 'public.calls', retention: null },
  { table: 'public.call_turns', retention: 12 },
  { table: 'public.call_tool_calls', retention: 12 },
];

function dbConfig(url: string, tables: Record<string, unknown>[] = SEEDS_TABLES, extra: Record<string, unknown> = {}): PostgresDatabaseConfig {
  return configSchema.parse({ postgres: [{ name: 'callcenter', url, partitions: { tables, lockTimeoutMs: 200, lockRetries: 2, ...extra } }] }).postgres[0]!;
}

/** Children with bounds, printed in UTC whatever the database's own TimeZone. */
async function partitions(db: string, parent: string): Promise<string[]> {
  const c = new pg.Client({ connectionString: dbUrl(db) });
  await c.connect();
  try {
    await c.query(`SET TimeZone = 'UTC'`);
    const { rows } = await c.query<{ p: string }>(
      `SELECT c.relname || ' ' || pg_get_expr(c.relpartbound, c.oid) AS p FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = $1::regclass ORDER BY 1`,
      [parent],
    );
    return rows.map((r) => r.p);
  } finally {
    await c.end();
  }
}

async function names(db: string, parent: string): Promise<string[]> {
  return (await partitions(db, parent)).map((p) => p.split(' ')[0]!);
}

const run = (db: TestDatabase, at: string, cfg = dbConfig(db.url), tz = 'UTC', dryRun = false): Promise<PartitionRunResult> =>
  ensurePartitions(db.url, cfg, tz, { dryRun, now: new Date(at), log: silentLog });

describe('partition manager', () => {
  const dbs: TestDatabase[] = [];
  const fresh = async (months?: string[]) => {
    const db = await createTestDatabase('ops_test_parts');
    dbs.push(db);
    await query(db.name, seedSchemaSql('public', months));
    return db;
  };
  afterEach(async () => {
    while (dbs.length) await dbs.pop()!.drop();
  });

  it('creates the current month and 3 ahead for each table, with UTC bounds; a second run creates nothing', async () => {
    const db = await fresh();
    const r = await run(db, '2026-05-20T12:00:00Z');
    assert.equal(r.status, 'ok');
    assert.deepEqual(
      r.tables.map((t) => [t.table, t.created, t.coverage]),
      [
        ['public.calls', ['calls_2026_06', 'calls_2026_07', 'calls_2026_08'], 3],
        ['public.call_turns', ['call_turns_2026_06', 'call_turns_2026_07', 'call_turns_2026_08'], 3],
        ['public.call_tool_calls', ['call_tool_calls_2026_06', 'call_tool_calls_2026_07', 'call_tool_calls_2026_08'], 3],
      ],
    );
    assert.ok((await partitions(db.name, 'calls')).includes("calls_2026_08 FOR VALUES FROM ('2026-08-01 00:00:00+00') TO ('2026-09-01 00:00:00+00')"));
    const again = await run(db, '2026-05-20T12:00:00Z');
    assert.deepEqual(again.tables.map((t) => t.created.length), [0, 0, 0]);
    assert.equal(again.status, 'ok');
  });

  it('rolls over December into January', async () => {
    const db = await fresh(monthsBetween('2026_09', '2026_12'));
    const r = await run(db, '2026-12-31T23:59:59Z');
    assert.deepEqual(r.tables[0]?.created, ['calls_2027_01', 'calls_2027_02', 'calls_2027_03']);
    assert.ok((await partitions(db.name, 'calls')).includes("calls_2027_01 FOR VALUES FROM ('2027-01-01 00:00:00+00') TO ('2027-02-01 00:00:00+00')"));
  });

  it('daily partitions across February 29 of a leap year', async () => {
    const db = await fresh();
    await query(db.name, `CREATE TABLE public.events (id bigint, at date NOT NULL) PARTITION BY RANGE (at)`);
    const cfg = dbConfig(db.url, [{ table: 'public.events', interval: 'day', ahead: 3 }]);
    const r = await run(db, '2028-02-27T10:00:00Z', cfg);
    assert.deepEqual(r.tables[0]?.created, ['events_2028_02_27', 'events_2028_02_28', 'events_2028_02_29', 'events_2028_03_01']);
    assert.ok((await partitions(db.name, 'events')).includes("events_2028_02_29 FOR VALUES FROM ('2028-02-29') TO ('2028-03-01')"));
  });

  it('bounds follow the configured time zone and ignore the session TimeZone', async () => {
    const a = await fresh(['2026_05']);
    const b = await fresh(['2026_05']);
    await query(b.name, `ALTER DATABASE "${b.name}" SET timezone = 'Pacific/Kiritimati'`);
    await run(a, '2026-05-20T12:00:00Z');
    await run(b, '2026-05-20T12:00:00Z');
    assert.deepEqual(await partitions(a.name, 'calls'), await partitions(b.name, 'calls'));
    const kyiv = await fresh([]);
    const cfg = dbConfig(kyiv.url, [{ table: 'public.calls', timezone: 'Europe/Kyiv', ahead: 1 }]);
    const r = await run(kyiv, '2026-05-31T22:30:00Z', cfg); // already June 1st in Kyiv (UTC+3)
    assert.deepEqual(r.tables[0]?.created, ['calls_2026_06', 'calls_2026_07']);
    assert.ok((await partitions(kyiv.name, 'calls')).includes("calls_2026_06 FOR VALUES FROM ('2026-05-31 21:00:00+00') TO ('2026-06-30 21:00:00+00')"));
    // Switching zones over existing UTC partitions: reported, never created over them.
    const mixed = await run(a, '2026-05-31T22:30:00Z', dbConfig(a.url, [{ table: 'public.calls', timezone: 'Europe/Kyiv', ahead: 1 }]));
    assert.match(mixed.tables[0]?.problems[0] ?? '', /partition calls_2026_06 exists with bounds \[2026-06-01 00:00:00\+00, 2026-07-01 00:00:00\+00\), expected \[2026-05-31 21:00:00\+00, 2026-06-30 21:00:00\+00\)/);
    assert.equal(mixed.tables[0]?.created.length, 0);
  });

  it('a run that finds the advisory lock taken returns "skipped" and changes nothing', async () => {
    const db = await fresh();
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query(`SELECT pg_advisory_lock(hashtext('ops-automation:partitions'))`);
      const r = await run(db, '2026-05-20T12:00:00Z');
      assert.equal(r.status, 'skipped');
      assert.deepEqual(r.tables, []);
      assert.equal((await names(db.name, 'calls')).length, 5);
    } finally {
      await holder.end();
    }
    const [x, y] = await Promise.all([run(db, '2026-05-20T12:00:00Z'), run(db, '2026-05-20T12:00:00Z')]);
    assert.ok([x.status, y.status].every((s) => s === 'ok' || s === 'skipped'), `${x.status} ${y.status}`);
    assert.equal((await names(db.name, 'calls')).length, 8, 'each partition created exactly once');
  });

  it('moves rows waiting in the default partition into the new partition, in one transaction', async () => {
    const db = await fresh();
    await query(db.name, `CREATE TABLE public.call_turns_default PARTITION OF public.call_turns DEFAULT`);
    await query(db.name, `INSERT INTO public.call_turns VALUES (1, 1, '2026-06-10 10:00+00', 'caller', 'early'), (2, 1, '2026-09-10 10:00+00', 'caller', 'much later')`);
    const r = await run(db, '2026-05-20T12:00:00Z');
    const turns = r.tables.find((t) => t.table === 'public.call_turns')!;
    assert.deepEqual(turns.moved, { call_turns_2026_06: 1 });
    assert.deepEqual(turns.problems, []);
    assert.deepEqual((await query(db.name, 'SELECT id FROM ONLY public.call_turns_2026_06')).rows, [{ id: '1' }]);
    assert.deepEqual((await query(db.name, 'SELECT id FROM ONLY public.call_turns_default')).rows, [{ id: '2' }]);
  });

  it('stops with a clear error when the default partition holds more rows than it may move', async () => {
    const db = await fresh();
    await query(db.name, `CREATE TABLE public.calls_default PARTITION OF public.calls DEFAULT`);
    await query(db.name, `INSERT INTO public.calls SELECT g, '2026-07-01 00:00+00'::timestamptz + g * interval '1 minute', null, 'x', 'completed' FROM generate_series(1, 5) g`);
    const r = await run(db, '2026-05-20T12:00:00Z', dbConfig(db.url, SEEDS_TABLES, { moveDefaultRowsLimit: 3 }));
    const calls = r.tables[0]!;
    assert.equal(r.status, 'problems');
    assert.deepEqual(calls.created, ['calls_2026_06', 'calls_2026_08']);
    assert.match(calls.problems[0] ?? '', /default partition calls_default holds 5 rows for \[2026-07-01 00:00:00\+00, 2026-08-01 00:00:00\+00\) \(more than moveDefaultRowsLimit 3\): calls_2026_07 not created/);
    assert.equal((await query(db.name, 'SELECT count(*)::int AS n FROM ONLY public.calls_default')).rows[0]?.n, 5, 'nothing lost');
  });

  it('reports a partition with the expected name but other bounds, an overlap and a gap', async () => {
    const db = await fresh(['2026_05', '2026_08']);
    await query(db.name, `CREATE TABLE public.calls_2026_06 PARTITION OF public.calls FOR VALUES FROM ('2026-06-01 00:00+00') TO ('2026-06-15 00:00+00')`);
    await query(db.name, `CREATE TABLE public.calls_odd PARTITION OF public.calls FOR VALUES FROM ('2026-07-20 00:00+00') TO ('2026-07-25 00:00+00')`);
    const r = await run(db, '2026-05-20T12:00:00Z', dbConfig(db.url, [{ table: 'public.calls' }]));
    const p = r.tables[0]!.problems.join('\n');
    assert.match(p, /partition calls_2026_06 exists with bounds \[2026-06-01 00:00:00\+00, 2026-06-15 00:00:00\+00\), expected \[2026-06-01 00:00:00\+00, 2026-07-01 00:00:00\+00\)/);
    assert.match(p, /range \[2026-07-01 00:00:00\+00, 2026-08-01 00:00:00\+00\) for calls_2026_07 overlaps calls_odd/);
    assert.match(p, /gap between calls_2026_06 \(to 2026-06-15 00:00:00\+00\) and calls_odd/);
    assert.equal(r.status, 'problems');
  });

  // Seeds' migration: 2026_01..2026_05. The first run in December (a broken schedule for
  // half a year) used to create 2026_11.. and exit 2 on "gap" forever.
  it('catches up missed runs: every period from the oldest kept partition to 3 ahead, exit 0', async () => {
    const db = await fresh();
    const r = await run(db, '2026-11-22T12:00:00Z', dbConfig(db.url, [{ table: 'public.calls' }]));
    assert.deepEqual(r.tables[0]?.created, monthsBetween('2026_06', '2027_02').map((m) => `calls_${m}`));
    assert.deepEqual([r.tables[0]?.problems, r.tables[0]?.warnings, r.status], [[], [], 'ok']);
    const dir = await tempDir();
    const cfg = await writeConfig(dir, postgresConfig('callcenter', db.url, `file://${dir}/repo`, { partitions: { tables: [{ table: 'public.calls' }] } }));
    const again = await runCli(['--config', cfg, 'partitions', 'ensure', '--at', '2026-11-22T12:00:00Z']);
    assert.equal(again.code, 0, again.stdout + again.stderr);
  });

  it('catch-up stops at the retention cutoff; rows of a filled past period move out of the default partition, older rows stay (exit 1)', async () => {
    const db = await fresh(['2025_01', '2025_02']);
    await query(db.name, `CREATE TABLE public.call_turns_default PARTITION OF public.call_turns DEFAULT`);
    await query(db.name, `INSERT INTO public.call_turns VALUES (1, 1, '2026-03-10 10:00+00', 'caller', 'past, kept period'), (2, 1, '2025-06-10 10:00+00', 'caller', 'older than retention')`);
    const r = await run(db, '2026-11-22T12:00:00Z', dbConfig(db.url, [{ table: 'public.call_turns', retention: 12 }]));
    const t = r.tables[0]!;
    // Cutoff: 2025-11 (12 months before November 2026); 2025_01/02 are retired.
    assert.deepEqual(t.created, monthsBetween('2025_11', '2027_02').map((m) => `call_turns_${m}`));
    assert.deepEqual(t.dropped, ['call_turns_2025_01', 'call_turns_2025_02']);
    assert.deepEqual(t.moved, { call_turns_2026_03: 1 });
    assert.deepEqual(t.problems, []);
    assert.match(t.warnings.join('\n'), /1 row\(s\) remain in the default partition call_turns_default \(1 older than the retention cutoff 2025-11-01 00:00:00\+00/);
    assert.equal(r.status, 'warnings');
    assert.deepEqual((await query(db.name, 'SELECT id FROM ONLY public.call_turns_default')).rows, [{ id: '2' }]);
    const dir = await tempDir();
    const cfg = await writeConfig(dir, postgresConfig('callcenter', db.url, `file://${dir}/repo`, { partitions: { tables: [{ table: 'public.call_turns', retention: 12 }] } }));
    assert.equal((await runCli(['--config', cfg, 'partitions', 'ensure', '--at', '2026-11-22T12:00:00Z'])).code, 1, 'done, with something for a person: exit 1');
  });

  it('fillGaps off: the current period and ahead are created, the past gap reported (exit 1); an unfillable past period too', async () => {
    const db = await fresh();
    const r = await run(db, '2026-11-22T12:00:00Z', dbConfig(db.url, [{ table: 'public.calls', fillGaps: false }]));
    assert.deepEqual(r.tables[0]?.created, ['calls_2026_11', 'calls_2026_12', 'calls_2027_01', 'calls_2027_02']);
    assert.deepEqual(r.tables[0]?.warnings, ['gap between calls_2026_05 (to 2026-06-01 00:00:00+00) and calls_2026_11 (from 2026-11-01 00:00:00+00) (fillGaps is off)']);
    assert.deepEqual([r.tables[0]?.problems, r.status], [[], 'warnings']);

    const other = await fresh();
    await query(other.name, `CREATE TABLE public.calls_2026_07 (id bigint)`);
    const o = await run(other, '2026-11-22T12:00:00Z', dbConfig(other.url, [{ table: 'public.calls' }]));
    assert.ok(!o.tables[0]!.created.includes('calls_2026_07'));
    assert.match(o.tables[0]!.warnings.join('\n'), /a table named public\.calls_2026_07 exists but is not a partition of public\.calls/);
    assert.match(o.tables[0]!.warnings.join('\n'), /gap between calls_2026_06 .* and calls_2026_08/);
    assert.deepEqual([o.tables[0]!.problems, o.status], [[], 'warnings']);
  });

  it('handles mixed-case and hyphenated names, quoted', async () => {
    const db = await fresh();
    await query(db.name, `CREATE TABLE public."Call-Events" (id bigint, "At" timestamptz NOT NULL) PARTITION BY RANGE ("At")`);
    const r = await run(db, '2026-05-20T12:00:00Z', dbConfig(db.url, [{ table: 'public."Call-Events"', ahead: 1 }]));
    assert.deepEqual(r.tables[0]?.created, ['Call-Events_2026_05', 'Call-Events_2026_06']);
    await query(db.name, `INSERT INTO public."Call-Events" VALUES (1, '2026-06-02 00:00+00')`);
    assert.equal((await query(db.name, `SELECT count(*)::int AS n FROM ONLY public."Call-Events_2026_06"`)).rows[0]?.n, 1);
  });

  it('retention drops exactly the partitions whose upper bound is at or before the cutoff, never from calls', async () => {
    const db = await fresh(monthsBetween('2026_01', '2027_11'));
    const r = await run(db, '2027-08-15T00:00:00Z');
    const dropped = Object.fromEntries(r.tables.map((t) => [t.table, t.dropped]));
    assert.deepEqual(dropped['public.calls'], []);
    assert.deepEqual(dropped['public.call_turns'], monthsBetween('2026_01', '2026_07').map((m) => `call_turns_${m}`));
    assert.deepEqual(dropped['public.call_tool_calls'], monthsBetween('2026_01', '2026_07').map((m) => `call_tool_calls_${m}`));
    assert.equal((await names(db.name, 'call_turns'))[0], 'call_turns_2026_08');
    assert.equal((await names(db.name, 'calls')).length, 23);
    assert.equal(r.status, 'ok');
  });

  it('archive-before-drop: the partition is stored (checksummed, manifest) before it is dropped', async () => {
    const db = await fresh(monthsBetween('2026_01', '2027_11'));
    await query(db.name, `INSERT INTO public.call_turns VALUES (1, 1, '2026-01-05 10:00+00', 'caller', $1), (2, 1, '2026-01-06 10:00+00', 'agent', 'b')`, ['a real\nnewline']);
    const dir = await tempDir();
    const repo = new FileRepository(`${dir}/repo`);
    const cfg = dbConfig(db.url, [{ table: 'public.call_turns', retention: 12, archiveBeforeDrop: true }]);
    const r = await ensurePartitions(db.url, cfg, 'UTC', { dryRun: false, now: new Date('2027-08-15T00:00:00Z'), log: silentLog, repo });
    assert.deepEqual(r.tables[0]?.archived, r.tables[0]?.dropped);
    assert.equal(r.tables[0]?.archived.length, 7);
    const files = await filesUnder(`${dir}/repo`);
    const manifestFile = files.find((f) => f.startsWith('postgres/callcenter/archive/call_turns_2026_01/') && f.endsWith('manifest.json'))!;
    const manifest = JSON.parse(await readFile(`${dir}/repo/${manifestFile}`, 'utf8'));
    assert.equal(manifest.details.rows, 2);
    const payload = execFileSync('zstd', ['-dc', `${dir}/repo/${manifest.payload.key}`], { encoding: 'utf8' });
    assert.equal(payload.split('\n').filter(Boolean).length, 2);
    assert.ok(payload.includes('a real\\nnewline'), 'COPY text format escapes the newline: one line per row');
    assert.equal(execFileSync('sha256sum', [`${dir}/repo/${manifest.payload.key}`], { encoding: 'utf8' }).split(' ')[0], manifest.payload.sha256);
  });

  it('archive-before-drop: when the archive cannot be written, nothing is dropped', async () => {
    const db = await fresh(monthsBetween('2026_01', '2027_11'));
    const dir = await tempDir();
    await writeFile(`${dir}/blocker`, 'x');
    const cfg = dbConfig(db.url, [{ table: 'public.call_turns', retention: 12, archiveBeforeDrop: true }]);
    const r = await ensurePartitions(db.url, cfg, 'UTC', { dryRun: false, now: new Date('2027-08-15T00:00:00Z'), log: silentLog, repo: new FileRepository(`${dir}/blocker/repo`) });
    assert.deepEqual(r.tables[0]?.dropped, []);
    assert.equal(r.tables[0]?.problems.length, 7);
    assert.match(r.tables[0]?.problems[0] ?? '', /retiring call_turns_2026_01 failed: .*ENOTDIR/);
    assert.equal((await names(db.name, 'call_turns'))[0], 'call_turns_2026_01');
  });

  it('finishes a detach left pending by an interrupted run (FINALIZE) before dropping', async () => {
    const db = await fresh(monthsBetween('2026_01', '2027_11'));
    const reader = new pg.Client({ connectionString: db.url });
    const detacher = new pg.Client({ connectionString: db.url });
    await reader.connect();
    await detacher.connect();
    try {
      await reader.query('BEGIN');
      await reader.query('SELECT count(*) FROM public.call_turns');
      await detacher.query(`SET statement_timeout = '300ms'`);
      await assert.rejects(detacher.query('ALTER TABLE public.call_turns DETACH PARTITION public.call_turns_2026_01 CONCURRENTLY'), /statement timeout|canceling/);
      await reader.query('COMMIT');
    } finally {
      await reader.end();
      await detacher.end();
    }
    const pending = await query(db.name, `SELECT inhdetachpending FROM pg_inherits WHERE inhrelid = 'public.call_turns_2026_01'::regclass`);
    assert.equal(pending.rows[0]?.inhdetachpending, true, 'the interrupted detach is pending');
    const dry = await run(db, '2027-08-15T00:00:00Z', undefined, 'UTC', true);
    assert.ok(dry.tables[1]?.sql?.includes('ALTER TABLE "public"."call_turns" DETACH PARTITION "public"."call_turns_2026_01" FINALIZE'));
    const r = await run(db, '2027-08-15T00:00:00Z');
    assert.ok(r.tables[1]?.dropped.includes('call_turns_2026_01'));
    assert.equal((await query(db.name, `SELECT to_regclass('public.call_turns_2026_01') AS t`)).rows[0]?.t, null);
  });

  it('dry run prints the SQL and changes nothing', async () => {
    const db = await fresh(monthsBetween('2026_01', '2026_05'));
    const before = await partitions(db.name, 'call_turns');
    const r = await run(db, '2027-03-10T00:00:00Z', undefined, 'UTC', true);
    assert.deepEqual(await partitions(db.name, 'call_turns'), before);
    const sql = r.tables[1]!.sql!;
    assert.ok(sql.includes('ALTER TABLE "public"."call_turns" ATTACH PARTITION "public"."call_turns_2027_03" FOR VALUES FROM (\'2027-03-01 00:00:00+00\') TO (\'2027-04-01 00:00:00+00\')'));
    assert.ok(sql.includes('ALTER TABLE "public"."call_turns" DETACH PARTITION "public"."call_turns_2026_01" CONCURRENTLY'));
    assert.ok(sql.includes('DROP TABLE "public"."call_turns_2026_01"'));
    assert.deepEqual(r.tables[1]!.dropped, ['call_turns_2026_01', 'call_turns_2026_02']);
  });

  it('names the table that cannot be managed: unknown, not partitioned, LIST, non-date key', async () => {
    const db = await fresh();
    await query(db.name, `CREATE TABLE public.plain (id int)`);
    await query(db.name, `CREATE TABLE public.listed (k text) PARTITION BY LIST (k)`);
    await query(db.name, `CREATE TABLE public.numbered (n int) PARTITION BY RANGE (n)`);
    const cfg = dbConfig(db.url, [{ table: 'public.ghost' }, { table: 'public.plain' }, { table: 'public.listed' }, { table: 'public.numbered' }]);
    const r = await run(db, '2026-05-20T12:00:00Z', cfg);
    assert.deepEqual(
      r.tables.map((t) => t.problems[0]),
      [
        'table public.ghost does not exist',
        'table public.plain is not partitioned (declare it PARTITION BY RANGE on a date/timestamp column)',
        'table public.listed is partitioned by LIST, not RANGE',
        'table public.numbered is range-partitioned on n of type integer, not a date/timestamp column',
      ],
    );
  });

  it('does not stall traffic: runs beside an open writing transaction; gives up cleanly behind conflicting locks', async () => {
    const db = await fresh();
    const writer = new pg.Client({ connectionString: db.url });
    await writer.connect();
    try {
      await writer.query('BEGIN');
      await writer.query(`INSERT INTO public.calls VALUES (1, '2026-05-05 00:00+00', null, 'x', 'completed')`);
      const r = await run(db, '2026-05-20T12:00:00Z', dbConfig(db.url, [{ table: 'public.calls' }]));
      assert.deepEqual(r.tables[0]?.created, ['calls_2026_06', 'calls_2026_07', 'calls_2026_08'], 'ATTACH (SHARE UPDATE EXCLUSIVE) does not wait for ROW EXCLUSIVE');
      await writer.query('COMMIT');
      // SHARE (what CREATE INDEX holds) conflicts with ATTACH: bounded retries, then a clear problem.
      await writer.query('BEGIN');
      await writer.query('LOCK TABLE ONLY public.calls IN SHARE MODE');
      const blocked = await run(db, '2026-07-20T12:00:00Z', dbConfig(db.url, [{ table: 'public.calls' }]));
      assert.match(blocked.tables[0]?.problems[0] ?? '', /creating calls_2026_09 failed: create calls_2026_09: lock not granted after 3 attempts/);
      assert.equal(blocked.status, 'problems');
      await writer.query('ROLLBACK');
      // ACCESS EXCLUSIVE blocks even reading the bounds (pg_get_expr locks each partition).
      await writer.query('BEGIN');
      await writer.query('LOCK TABLE public.calls IN ACCESS EXCLUSIVE MODE');
      await assert.rejects(run(db, '2026-07-20T12:00:00Z', dbConfig(db.url, [{ table: 'public.calls' }])), /reading the partition catalogue: lock not granted after 3 attempts/);
      await writer.query('ROLLBACK');
    } finally {
      await writer.end();
    }
  });

  it('status shows coverage, oldest partition, rows in default; opsctl exits 1 when coverage is low', async () => {
    const db = await fresh();
    const dir = await tempDir();
    const cfg = await writeConfig(dir, postgresConfig('callcenter', db.url, `file://${dir}/repo`, { partitions: { tables: SEEDS_TABLES, minCoverage: 2 } }));
    const low = await runCli(['--config', cfg, '--json', 'partitions', 'status', '--at', '2026-05-20T12:00:00Z']);
    assert.equal(low.code, 1, low.stderr);
    const status = (JSON.parse(low.stdout) as { results: { tables: { table: string; coverage: number; oldest: string; missing: string[] }[] }[] }).results[0]!.tables[0]!;
    assert.deepEqual([status.coverage, status.oldest, status.missing], [0, 'calls_2026_01', ['calls_2026_06', 'calls_2026_07', 'calls_2026_08']]);
    const ensure = await runCli(['--config', cfg, 'partitions', 'ensure', '--at', '2026-05-20T12:00:00Z']);
    assert.equal(ensure.code, 0, ensure.stderr);
    const ok = await runCli(['--config', cfg, 'partitions', 'status', '--at', '2026-05-20T12:00:00Z']);
    assert.equal(ok.code, 0, ok.stdout);
    assert.match(ok.stdout, /public\.calls\s+OK\s+3\/2/);
    const statuses = await partitionStatus(db.url, dbConfig(db.url), 'UTC', new Date('2026-05-20T12:00:00Z'));
    assert.deepEqual(statuses.map((s) => s.rowsInDefault), [null, null, null]);
  });

  it('status with rows in the default partition: DEGRADED, and the detail says which rows, why, and what to run; every child listed with its bounds', async () => {
    const db = await fresh(['2026_05']);
    await query(db.name, `CREATE TABLE public.call_turns_default PARTITION OF public.call_turns DEFAULT`);
    await query(
      db.name,
      `INSERT INTO public.call_turns SELECT g, 1, '2026-06-02 10:00+00'::timestamptz + g * interval '1 minute', 'caller', 'next month' FROM generate_series(1, 2) g;
       INSERT INTO public.call_turns SELECT 100 + g, 1, '2026-07-02 10:00+00'::timestamptz + g * interval '1 minute', 'caller', 'too many' FROM generate_series(1, 5) g;
       INSERT INTO public.call_turns VALUES (200, 1, '2024-01-10 10:00+00', 'caller', 'older than retention')`,
    );
    const dir = await tempDir();
    const cfg = await writeConfig(dir, postgresConfig('callcenter', db.url, `file://${dir}/repo`, { partitions: { tables: [{ table: 'public.call_turns', retention: 12 }], moveDefaultRowsLimit: 3 } }));
    const r = await runCli(['--config', cfg, 'partitions', 'status', '--at', '2026-05-20T12:00:00Z']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /public\.call_turns\s+DEGRADED/);
    assert.match(r.stdout, /default partition public\.call_turns_default holds rows of periods without a partition \(2 for call_turns_2026_06\): opsctl partitions ensure creates them and moves the rows in/);
    assert.match(r.stdout, /holds more rows than moveDefaultRowsLimit 3 \(5 for call_turns_2026_07\): ensure will not move them under its lock; in a maintenance window run opsctl partitions ensure --move-limit N/);
    assert.match(r.stdout, /1 row\(s\) in public\.call_turns_default are older than the retention cutoff 2025-05-01 00:00:00\+00: kept there/);
    // pg_partman's show_partitions: every child, its bounds, the default last.
    assert.match(r.stdout, /PARTITION +FROM +TO/);
    assert.match(r.stdout, /public\.call_turns +call_turns_2026_05 +2026-05-01 00:00:00\+00 +2026-06-01 00:00:00\+00/);
    assert.match(r.stdout, /public\.call_turns +call_turns_default +DEFAULT/);
    const json = JSON.parse((await runCli(['--config', cfg, '--json', 'partitions', 'status', '--at', '2026-05-20T12:00:00Z'])).stdout) as { results: { tables: { children: { name: string; from: string | null; isDefault: boolean }[] }[] }[] };
    assert.deepEqual(json.results[0]!.tables[0]!.children.map((c) => [c.name, c.isDefault]), [['call_turns_2026_05', false], ['call_turns_default', true]]);
    // What the detail says to run: every period's rows move, each in its own transaction; the old row stays.
    const moved = await runCli(['--config', cfg, '--json', 'partitions', 'ensure', '--at', '2026-05-20T12:00:00Z', '--move-limit', '5']);
    assert.equal(moved.code, 1, moved.stdout + moved.stderr);
    const t = (JSON.parse(moved.stdout) as { results: { tables: { moved: Record<string, number>; problems: string[] }[] }[] }).results[0]!.tables[0]!;
    assert.deepEqual(t.moved, { call_turns_2026_06: 2, call_turns_2026_07: 5 });
    assert.deepEqual(t.problems, []);
    assert.deepEqual((await query(db.name, 'SELECT id FROM ONLY public.call_turns_default')).rows, [{ id: '200' }]);
  });

  after(async () => {
    while (dbs.length) await dbs.pop()!.drop();
  });
});
