import pg from 'pg';
import { configSchema } from '../src/config/schema.js';
import { seedSchemaSql } from '../src/demo/sample-database.js';
import { silentLog } from '../src/log.js';
import { ensurePartitions } from '../src/partitions/run.js';
import { fixed, table } from './lib.js';

const SERVER = process.env.OPS_BENCH_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const url = (db: string) => Object.assign(new URL(SERVER), { pathname: `/${db}` }).toString();

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: SERVER });
  await c.connect();
  await c.query(sql).finally(() => c.end());
}

async function timed(db: string, tables: { table: string; retention: number | null; ahead: number }[], at: string): Promise<{ ms: number; created: number }> {
  const cfg = configSchema.parse({ postgres: [{ name: 'bench', url: url(db), partitions: { tables } }] }).postgres[0]!;
  const started = process.hrtime.bigint();
  const r = await ensurePartitions(url(db), cfg, 'UTC', { dryRun: false, now: new Date(at), log: silentLog });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (r.status !== 'ok') throw new Error(`run not ok: ${JSON.stringify(r.tables.flatMap((t) => t.problems)).slice(0, 500)}`);
  return { ms, created: r.tables.reduce((n, t) => n + t.created.length, 0) };
}

/** First run and no-op run: the seeds' 3 tables, then 200 tables x 15 partitions. */
export async function benchPartitions(): Promise<string> {
  const rows: (string | number)[][] = [];
  const seeds = 'ops_bench_parts_seeds';
  await admin(`DROP DATABASE IF EXISTS ${seeds} WITH (FORCE)`);
  await admin(`CREATE DATABASE ${seeds}`);
  const c = new pg.Client({ connectionString: url(seeds) });
  await c.connect();
  await c.query(seedSchemaSql());
  await c.end();
  const seedTables = [
    { table: 'public.calls', retention: null, ahead: 3 },
    { table: 'public.call_turns', retention: 12, ahead: 3 },
    { table: 'public.call_tool_calls', retention: 12, ahead: 3 },
  ];
  const first = await timed(seeds, seedTables, '2026-05-20T00:00:00Z');
  const noop = await timed(seeds, seedTables, '2026-05-20T00:00:00Z');
  rows.push(['seeds: 3 tables', 'first run', first.created, fixed(first.ms, 0)], ['seeds: 3 tables', 'no-op run', noop.created, fixed(noop.ms, 0)]);

  const many = 'ops_bench_parts_200';
  await admin(`DROP DATABASE IF EXISTS ${many} WITH (FORCE)`);
  await admin(`CREATE DATABASE ${many}`);
  const m = new pg.Client({ connectionString: url(many) });
  await m.connect();
  const tables: { table: string; retention: number | null; ahead: number }[] = [];
  for (let i = 0; i < 200; i += 1) {
    await m.query(`CREATE TABLE public.t${i} (id bigint, at timestamptz NOT NULL) PARTITION BY RANGE (at)`);
    tables.push({ table: `public.t${i}`, retention: 24, ahead: 14 });
  }
  await m.end();
  // ahead 14 = the current month + 14: 15 partitions per table, 3,000 in all.
  const first200 = await timed(many, tables, '2026-05-20T00:00:00Z');
  const noops: number[] = [];
  for (let i = 0; i < 3; i += 1) noops.push((await timed(many, tables, '2026-05-20T00:00:00Z')).ms);
  rows.push(['200 tables x 15 partitions', 'first run', first200.created, fixed(first200.ms, 0)], ['200 tables x 15 partitions', 'no-op run (median of 3)', 0, fixed(noops.sort((a, b) => a - b)[1]!, 0)]);
  // Issue 14: 30,000 rows waiting in the default partition move into the new June partition,
  // under the locks that make writes to the table wait (median of 3 fresh databases).
  const moves: number[] = [];
  for (let i = 0; i < 3; i += 1) {
    const db = 'ops_bench_parts_move';
    await admin(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    await admin(`CREATE DATABASE ${db}`);
    const c = new pg.Client({ connectionString: url(db) });
    await c.connect();
    await c.query(seedSchemaSql('public', ['2026_05', '2026_07']));
    await c.query(`CREATE TABLE public.call_turns_default PARTITION OF public.call_turns DEFAULT`);
    await c.query(`INSERT INTO public.call_turns SELECT g, 1, '2026-06-01 00:00+00'::timestamptz + g * interval '1 second', 'caller', 'waiting' FROM generate_series(1, 30000) g`);
    await c.end();
    moves.push((await timed(db, [{ table: 'public.call_turns', retention: 12, ahead: 1 }], '2026-06-10T00:00:00Z')).ms);
    await admin(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  }
  rows.push(['default partition holding 30,000 rows for the new month', 'create + move (whole run, median of 3)', 1, fixed(moves.sort((a, b) => a - b)[1]!, 0)]);
  await admin(`DROP DATABASE IF EXISTS ${seeds} WITH (FORCE)`);
  await admin(`DROP DATABASE IF EXISTS ${many} WITH (FORCE)`);
  return ['### Partition maintenance (`opsctl partitions ensure` core, in-process)\n', table(rows, ['database', 'run', 'partitions created', 'ms']), '', '- target: the no-op run for 200 tables under 2,000 ms (two catalogue queries in all, not one per partition)'].join('\n');
}
