import pg from 'pg';
import { configSchema } from '../src/config/schema.js';
import { silentLog } from '../src/log.js';
import { ensurePartitions, type TableResult } from '../src/partitions/run.js';
import { table } from './lib.js';

/**
 * The same scenarios through pg_partman 4.7 (Debian postgresql-15-partman) and through
 * `partitions ensure`, on the same schema and the same clock (now: pg_partman reads
 * CURRENT_TIMESTAMP, so both run at the real time). Prints the side-by-side table of
 * doc/partitions.md. `npm run bench -- partman` (installs nothing: apt-get install
 * postgresql-15-partman first).
 */
const SERVER = process.env.OPS_BENCH_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const url = (db: string) => Object.assign(new URL(SERVER), { pathname: `/${db}` }).toString();

async function withClient<T>(u: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: u });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const month = (offset: number): { y: number; m: number } => {
  const now = new Date();
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1));
  return { y: d.getUTCFullYear(), m: d.getUTCMonth() + 1 };
};
const ym = (offset: number) => {
  const { y, m } = month(offset);
  return `${y}_${String(m).padStart(2, '0')}`;
};
const start = (offset: number) => {
  const { y, m } = month(offset);
  return `${y}-${String(m).padStart(2, '0')}-01 00:00:00+00`;
};

const PARENT = `CREATE TABLE public.calls (id bigint NOT NULL, started_at timestamptz NOT NULL) PARTITION BY RANGE (started_at)`;

async function fresh(name: string, partman: boolean): Promise<string> {
  await withClient(SERVER, async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${name}`);
  });
  await withClient(url(name), async (c) => {
    await c.query(PARENT);
    if (partman) await c.query(`CREATE SCHEMA partman; CREATE EXTENSION pg_partman SCHEMA partman`);
  });
  return url(name);
}

async function children(u: string): Promise<string[]> {
  return withClient(u, async (c) => {
    await c.query(`SET TimeZone = 'UTC'`);
    const { rows } = await c.query<{ n: string; b: string }>(
      `SELECT c.relname AS n, pg_get_expr(c.relpartbound, c.oid) AS b FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'public.calls'::regclass ORDER BY 1`,
    );
    return rows.map((r) => r.n);
  });
}

async function createMonths(u: string, offsets: number[], prefix: string): Promise<void> {
  await withClient(u, async (c) => {
    for (const o of offsets) await c.query(`CREATE TABLE public.${prefix}${ym(o)} PARTITION OF public.calls FOR VALUES FROM ('${start(o)}') TO ('${start(o + 1)}')`);
  });
}

/** pg_partman: a parent under its control with exactly the given monthly children. */
async function partmanWith(name: string, offsets: number[], options: { premake?: number; withDefault?: boolean; retention?: string } = {}): Promise<string> {
  const u = await fresh(name, true);
  await withClient(u, async (c) => {
    const first = Math.min(...offsets, 0);
    await c.query(`SELECT partman.create_parent('public.calls', 'started_at', 'native', 'monthly', p_premake := $1, p_start_partition := $2)`, [options.premake ?? 3, start(first).slice(0, 10)]);
    // Keep exactly `offsets`: create_parent made a contiguous run from `first`.
    for (const n of await children(u)) {
      const m = /^calls_p(\d{4})_(\d{2})$/.exec(n);
      if (!m) continue;
      const now = new Date();
      const offset = (Number(m[1]) - now.getUTCFullYear()) * 12 + (Number(m[2]) - 1 - now.getUTCMonth());
      if (!offsets.includes(offset)) await c.query(`DROP TABLE public.${n}`);
    }
    if (options.withDefault === false) await c.query(`DROP TABLE public.calls_default`);
    // Without it pg_partman makes no new partition while the newest ones hold no data
    // (its documented guard against endless empty tables); on for a like-for-like run.
    await c.query(`UPDATE partman.part_config SET infinite_time_partitions = true WHERE parent_table = 'public.calls'`);
    if (options.retention) await c.query(`UPDATE partman.part_config SET retention = $1, retention_keep_table = false WHERE parent_table = 'public.calls'`, [options.retention]);
  });
  return u;
}

async function partmanMaintenance(u: string): Promise<string> {
  return withClient(u, async (c) => {
    try {
      await c.query(`SELECT partman.run_maintenance('public.calls')`);
      return 'ok';
    } catch (error) {
      return `ERROR: ${(error as Error).message.split('\n')[0]}`;
    }
  });
}

async function ours(u: string, tables: Record<string, unknown> = {}, timezone = 'UTC'): Promise<{ t: TableResult; status: string }> {
  const cfg = configSchema.parse({ postgres: [{ name: 'cmp', url: u, partitions: { tables: [{ table: 'public.calls', ahead: 3, ...tables }] } }] }).postgres[0]!;
  const r = await ensurePartitions(u, cfg, timezone, { dryRun: false, now: new Date(), log: silentLog });
  return { t: r.tables[0]!, status: r.status };
}

const diff = (before: string[], after: string[]) => after.filter((n) => !before.includes(n) && !n.endsWith('_default'));
const range = (names: string[]) => (names.length === 0 ? 'none' : names.length <= 2 ? names.join(', ') : `${names[0]} … ${names.at(-1)} (${names.length})`);
const rowsIn = (u: string, rel: string) => withClient(u, async (c) => Number((await c.query<{ n: string }>(`SELECT count(*) AS n FROM ONLY public.${rel}`)).rows[0]?.n));

export async function benchPartman(): Promise<string> {
  const rows: string[][] = [];

  // 1. From empty.
  {
    const p = await fresh('ops_cmp_pm_empty', true);
    await withClient(p, (c) => c.query(`SELECT partman.create_parent('public.calls', 'started_at', 'native', 'monthly', p_premake := 3)`));
    const o = await fresh('ops_cmp_ours_empty', false);
    const r = await ours(o);
    rows.push(['creation from empty', `${range((await children(p)).filter((n) => !n.endsWith('_default')))} and calls_default: 3 before now, now, 3 ahead`, `${range(r.t.created)}: now and 3 ahead, no default partition (status ${r.status})`]);
  }

  // 2. Missed runs: the seeds' migration created 2026_01..2026_05 (here: 7 to 11 months ago).
  {
    const have = [-11, -10, -9, -8, -7];
    const p = await partmanWith('ops_cmp_pm_missed', have);
    const before = await children(p);
    const m = await partmanMaintenance(p);
    const o = await fresh('ops_cmp_ours_missed', false);
    await createMonths(o, have, 'calls_');
    const r = await ours(o);
    rows.push(['missed runs (partitions stop 7 months ago)', `run_maintenance ${m}: created ${range(diff(before, await children(p)))}`, `created ${range(r.t.created)}; status ${r.status}`]);
  }

  // 3. A future gap: now, +1 and +5 exist.
  {
    const have = [0, 1, 5];
    const p = await partmanWith('ops_cmp_pm_gap', have);
    const before = await children(p);
    const m = await partmanMaintenance(p);
    const o = await fresh('ops_cmp_ours_gap', false);
    await createMonths(o, have, 'calls_');
    const r = await ours(o);
    rows.push(['a future gap (now, +1, +5 exist)', `run_maintenance ${m}: created ${range(diff(before, await children(p)))}; the gap +2..+4 is left (partition_gap_fill() exists, by hand)`, `created ${range(r.t.created)} (to ahead = 3); ${r.t.warnings.join('; ') || r.t.problems.join('; ') || 'nothing reported'}; status ${r.status}`]);
  }

  // 4 and 5. One row in the default partition for a period the run creates: a new one (+3)
  // and a missing past one (-2).
  const defaultRow = async (key: string, label: string, have: number[], rowAt: number, partmanNote: string) => {
    const row = `INSERT INTO public.calls VALUES (1, '${start(rowAt).slice(0, 10)} 12:00+00')`;
    const p = await partmanWith(`ops_cmp_pm_${key}`, have);
    await withClient(p, (c) => c.query(row));
    const before = await children(p);
    const m = await partmanMaintenance(p);
    const o = await fresh(`ops_cmp_ours_${key}`, false);
    await createMonths(o, have, 'calls_');
    await withClient(o, (c) => c.query(`CREATE TABLE public.calls_default PARTITION OF public.calls DEFAULT; ${row}`));
    const r = await ours(o);
    rows.push([
      label,
      `run_maintenance ${m}: created ${range(diff(before, await children(p)))}; rows left in default: ${await rowsIn(p, 'calls_default')}${partmanNote}`,
      `created ${range(r.t.created)}, moved ${JSON.stringify(r.t.moved)}; rows left in default: ${await rowsIn(o, 'calls_default')}; status ${r.status}`,
    ]);
  };
  await defaultRow('defnew', 'default-partition rows for a new period (+3)', [0, 1, 2], 3, '');
  await defaultRow('defpast', 'default-partition rows for a missing past period (-2)', [-4, -3, -1, 0, 1, 2, 3], -2, ' (partition_data_time() moves them, by hand)');

  // 6. Session time zone: the same call from a session in Asia/Tokyo.
  {
    const p = await fresh('ops_cmp_pm_tz', true);
    const bounds = await withClient(p, async (c) => {
      await c.query(`SET TimeZone = 'Asia/Tokyo'`);
      await c.query(`SELECT partman.create_parent('public.calls', 'started_at', 'native', 'monthly', p_premake := 1)`);
      await c.query(`SET TimeZone = 'UTC'`);
      const { rows } = await c.query<{ b: string }>(`SELECT pg_get_expr(c.relpartbound, c.oid) AS b FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'public.calls'::regclass AND c.relname NOT LIKE '%default' ORDER BY 1 LIMIT 1`);
      return rows[0]?.b ?? '';
    });
    const o = await fresh('ops_cmp_ours_tz', false);
    await withClient(o, (c) => c.query(`ALTER DATABASE ops_cmp_ours_tz SET TimeZone = 'Asia/Tokyo'`));
    await ours(o, { ahead: 1 });
    const ourBound = await withClient(o, async (c) => {
      await c.query(`SET TimeZone = 'UTC'`);
      const { rows } = await c.query<{ b: string }>(`SELECT pg_get_expr(c.relpartbound, c.oid) AS b FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'public.calls'::regclass ORDER BY 1 LIMIT 1`);
      return rows[0]?.b ?? '';
    });
    rows.push(['session time zone Asia/Tokyo, configured zone UTC', `bounds follow the session: ${bounds.replace(/FOR VALUES /, '')} (in UTC)`, `bounds follow the configured zone: ${ourBound.replace(/FOR VALUES /, '')}`]);
  }

  // 7. Retention 12 months with partitions from 14 months ago.
  {
    const have = Array.from({ length: 18 }, (_, i) => i - 14);
    const p = await partmanWith('ops_cmp_pm_ret', have, { retention: '12 months' });
    const before = await children(p);
    const m = await partmanMaintenance(p);
    const after = await children(p);
    const o = await fresh('ops_cmp_ours_ret', false);
    await createMonths(o, have, 'calls_');
    const r = await ours(o, { retention: 12 });
    rows.push(['retention 12 months (partitions from -14)', `run_maintenance ${m}: dropped ${range(before.filter((n) => !after.includes(n)))}`, `dropped ${range(r.t.dropped)} (upper bound at or before the start of now - 12 months)`]);
  }

  for (const n of ['empty', 'missed', 'gap', 'defnew', 'defpast', 'tz', 'ret']) {
    await withClient(SERVER, async (c) => {
      await c.query(`DROP DATABASE IF EXISTS ops_cmp_pm_${n} WITH (FORCE)`);
      await c.query(`DROP DATABASE IF EXISTS ops_cmp_ours_${n} WITH (FORCE)`);
    });
  }
  const version = await withClient(SERVER, async (c) => (await c.query<{ v: string }>(`SELECT default_version AS v FROM pg_available_extensions WHERE name = 'pg_partman'`)).rows[0]?.v ?? '?');
  return [`### Partition maintenance beside pg_partman ${version} (run ${new Date().toISOString().slice(0, 10)}, monthly, premake/ahead 3, infinite_time_partitions on)`, '', table(rows, ['case', 'pg_partman', 'partitions ensure'])].join('\n');
}
