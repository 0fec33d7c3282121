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
export async function createTestDatabase(prefix = 'ops_test', adminUrl = ADMIN_URL): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  const on = (sql: string) => (adminUrl === ADMIN_URL ? adminQuery(sql) : queryUrl(adminUrl, sql));
  await on(`create database "${name}"`);
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return { name, url: u.toString(), drop: () => on(`drop database if exists "${name}" with (force)`).then(() => undefined) };
}

/** One statement on any server by URL (a test server of its own, another major). */
export async function queryUrl(url: string, sql: string): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await c.query(sql);
  } finally {
    await c.end();
  }
}

export async function dropDatabase(name: string): Promise<void> {
  await adminQuery(`drop database if exists "${name.replace(/"/g, '""')}" with (force)`);
}

/** A fresh database with the seeds' partitioned schema and `calls` generated calls. */
export async function createSeedDatabase(calls = 2_000, prefix = 'ops_test', adminUrl = ADMIN_URL): Promise<TestDatabase> {
  const db = await createTestDatabase(prefix, adminUrl);
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    await c.query(seedSchemaSql());
    await fillSeedTables(c, calls);
    await addEmbeddings(c);
  } finally {
    await c.end();
  }
  return db;
}

/**
 * The knowledge base's embeddings as production holds them (pgvector: `vector(1536)` and
 * an HNSW index), where the server offers the extension: the matrix on PostgreSQL 17
 * (scripts/test-pg-majors.sh sets OPS_TEST_REQUIRE_VECTOR) fails rather than skip it.
 */
export async function addEmbeddings(c: pg.Client, rows = 200): Promise<boolean> {
  const { rows: avail } = await c.query(`select 1 from pg_available_extensions where name = 'vector'`);
  if (avail.length === 0) {
    if (process.env.OPS_TEST_REQUIRE_VECTOR) throw new Error('OPS_TEST_REQUIRE_VECTOR is set but this server has no pgvector (the matrix runs on PostgreSQL 17 with postgresql-17-pgvector)');
    return false;
  }
  await c.query('create extension if not exists vector');
  await c.query(`create table knowledge_chunks (id bigint primary key, source text not null, embedding vector(1536) not null)`);
  // Deterministic vectors generated in the server: 1536 floats each, different per row.
  await c.query(
    `insert into knowledge_chunks (id, source, embedding)
     select g, 'doc-' || (g % 17), (select array_agg(((g * 7919 + i * 104729) % 1000) / 1000.0)::vector(1536) from generate_series(1, 1536) i)
       from generate_series(1, $1) g`,
    [rows],
  );
  await c.query('create index knowledge_chunks_embedding on knowledge_chunks using hnsw (embedding vector_cosine_ops)');
  return true;
}

/** Per-table row count and content digest of every ordinary table: equal digests = equal contents. */
export async function tableDigests(database: string, url = dbUrl(database)): Promise<Record<string, string>> {
  const c = new pg.Client({ connectionString: url });
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
