import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { fillSeedTables, seedSchemaSql } from '../../src/demo/sample-database.js';

/** The machine's PostgreSQL; tests only ever touch databases they create here. */
export const ADMIN_URL = process.env.OPS_TEST_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

export function dbUrl(database: string): string {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${database}`;
  return u.toString();
}

export async function adminQuery(sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    return await c.query(sql, params);
  } finally {
    await c.end();
  }
}

export async function query(database: string, sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: dbUrl(database) });
  await c.connect();
  try {
    return await c.query(sql, params);
  } finally {
    await c.end();
  }
}

export interface TestDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** A fresh, uniquely named database; `drop` removes it (and is safe to call twice). */
export async function createTestDatabase(prefix = 'ops_test'): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  await adminQuery(`create database "${name}"`);
  return { name, url: dbUrl(name), drop: () => dropDatabase(name) };
}

export async function dropDatabase(name: string): Promise<void> {
  await adminQuery(`drop database if exists "${name.replace(/"/g, '""')}" with (force)`);
}

/** A fresh database with the seeds' partitioned schema and `calls` generated calls. */
export async function createSeedDatabase(calls = 2_000, prefix = 'ops_test'): Promise<TestDatabase> {
  const db = await createTestDatabase(prefix);
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    await c.query(seedSchemaSql());
    await fillSeedTables(c, calls);
  } finally {
    await c.end();
  }
  return db;
}

/** Per-table row count and content digest of every ordinary table: equal digests = equal contents. */
export async function tableDigests(database: string): Promise<Record<string, string>> {
  const c = new pg.Client({ connectionString: dbUrl(database) });
  await c.connect();
  try {
    const { rows: tables } = await c.query<{ s: string; t: string }>(
      `select n.nspname as s, c.relname as t from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where c.relkind = 'r' and n.nspname not in ('pg_catalog','information_schema') order by 1, 2`,
    );
    const out: Record<string, string> = {};
    for (const { s, t } of tables) {
      const ident = `"${s.replace(/"/g, '""')}"."${t.replace(/"/g, '""')}"`;
      const { rows } = await c.query<{ n: string; d: string | null }>(
        `select count(*) as n, md5(string_agg(x::text, E'\\n' order by x::text)) as d from ${ident} x`,
      );
      out[`${s}.${t}`] = `${rows[0]?.n}:${rows[0]?.d ?? ''}`;
    }
    return out;
  } finally {
    await c.end();
  }
}
