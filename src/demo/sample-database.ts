import type pg from 'pg';
import { withPostgres, withDatabase } from '../postgres/connect.js';
import { quoteIdent } from '../postgres/identifiers.js';

/** The seeds' initial partitions (migration 001): 2026-01 .. 2026-05. */
export const SEED_MONTHS = ['2026_01', '2026_02', '2026_03', '2026_04', '2026_05'] as const;
export const SEED_TABLES = ['calls', 'call_turns', 'call_tool_calls'] as const;

/** The seeds' call-centre schema: three tables range-partitioned by month. */
export function seedSchemaSql(schema = 'public', months: readonly string[] = SEED_MONTHS): string {
  const s = quoteIdent(schema);
  const parents = `
    create table ${s}.calls (
      id bigint not null,
      started_at timestamptz not null,
      ended_at timestamptz,
      caller_number text not null,
      status text not null,
      primary key (id, started_at)
    ) partition by range (started_at);
    create table ${s}.call_turns (
      id bigint not null,
      call_id bigint not null,
      created_at timestamptz not null,
      speaker text not null,
      content text not null,
      primary key (id, created_at)
    ) partition by range (created_at);
    create table ${s}.call_tool_calls (
      id bigint not null,
      call_id bigint not null,
      created_at timestamptz not null,
      tool_name text not null,
      arguments jsonb not null,
      primary key (id, created_at)
    ) partition by range (created_at);`;
  const parts = SEED_TABLES.flatMap((t) =>
    months.map((m) => {
      const [y, mo] = m.split('_').map(Number) as [number, number];
      const from = `${y}-${String(mo).padStart(2, '0')}-01`;
      const to = mo === 12 ? `${y + 1}-01-01` : `${y}-${String(mo + 1).padStart(2, '0')}-01`;
      return `create table ${s}.${quoteIdent(`${t}_${m}`)} partition of ${s}.${t} for values from ('${from} 00:00:00+00') to ('${to} 00:00:00+00');`;
    }),
  );
  return [parents, ...parts].join('\n');
}

/**
 * Rows for the seeds' schema, spread over 2026-01..2026-05: `calls` calls, 10 turns and
 * 2 tool calls each. Deterministic, generated inside the server (fast, no client memory).
 */
export async function fillSeedTables(client: pg.Client, calls: number, schema = 'public', firstId = 1): Promise<void> {
  const s = quoteIdent(schema);
  const batch = 50_000;
  for (let start = firstId; start < firstId + calls; start += batch) {
    const end = Math.min(firstId + calls - 1, start + batch - 1);
    await client.query(
      `insert into ${s}.calls (id, started_at, ended_at, caller_number, status)
       select g, timestamptz '2026-01-01 00:00:00+00' + (g % 150) * interval '1 day' + (g % 86400) * interval '1 second',
              timestamptz '2026-01-01 00:05:00+00' + (g % 150) * interval '1 day' + (g % 86400) * interval '1 second',
              '+38067' || lpad((g * 7919 % 10000000)::text, 7, '0'),
              (array['completed','transferred','abandoned'])[1 + g % 3]
         from generate_series($1::bigint, $2::bigint) g`,
      [start, end],
    );
    await client.query(
      `insert into ${s}.call_turns (id, call_id, created_at, speaker, content)
       select g * 10 + t, g, timestamptz '2026-01-01 00:00:00+00' + (g % 150) * interval '1 day' + (g % 86400 + t * 5) * interval '1 second',
              (array['caller','agent'])[1 + t % 2],
              'turn ' || t || ' of call ' || g || ': ' || md5((g * 10 + t)::text) || ' ' || md5((g * 31 + t)::text)
         from generate_series($1::bigint, $2::bigint) g, generate_series(0, 9) t`,
      [start, end],
    );
    await client.query(
      `insert into ${s}.call_tool_calls (id, call_id, created_at, tool_name, arguments)
       select g * 2 + t, g, timestamptz '2026-01-01 00:00:00+00' + (g % 150) * interval '1 day' + (g % 86400 + t) * interval '1 second',
              (array['lookup_order','create_ticket'])[1 + t],
              jsonb_build_object('call', g, 'step', t, 'query', md5(g::text))
         from generate_series($1::bigint, $2::bigint) g, generate_series(0, 1) t`,
      [start, end],
    );
  }
  await client.query(`analyze ${s}.calls, ${s}.call_turns, ${s}.call_tool_calls`);
}

export interface SampleDatabaseResult {
  database: string;
  created: boolean;
}

/** Create `database` with the seeds' schema and `calls` generated calls, unless it already exists. */
/** `2026_01` .. the month of `now` (at least the seeds' five). */
export function monthsFrom(first: string, now: Date): string[] {
  const [y, m] = first.split('_').map(Number) as [number, number];
  const end = Math.max(now.getUTCFullYear() * 12 + now.getUTCMonth(), y * 12 + m - 1 + SEED_MONTHS.length - 1);
  const out: string[] = [];
  for (let i = y * 12 + m - 1; i <= end; i += 1) out.push(`${Math.floor(i / 12)}_${String((i % 12) + 1).padStart(2, '0')}`);
  return out;
}

export async function ensureSampleDatabase(serverUrl: string, database: string, calls: number, now = new Date()): Promise<SampleDatabaseResult> {
  const exists = await withPostgres(serverUrl, async (c) => (await c.query('select 1 from pg_database where datname = $1', [database])).rowCount === 1);
  if (exists) return { database, created: false };
  await withPostgres(serverUrl, (c) => c.query(`create database ${quoteIdent(database)}`));
  try {
    await withPostgres(withDatabase(serverUrl, database), async (c) => {
      // Like a system that has been running since the seeds' first month: partitions up to now.
      await c.query(seedSchemaSql('public', monthsFrom(SEED_MONTHS[0], now)));
      await fillSeedTables(c, calls);
    });
  } catch (error) {
    // Half a sample database would be mistaken for a good one on the next run.
    await withPostgres(serverUrl, (c) => c.query(`drop database if exists ${quoteIdent(database)} with (force)`)).catch(() => undefined);
    throw error;
  }
  return { database, created: true };
}
