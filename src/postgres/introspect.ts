import type pg from 'pg';
import type { ManifestTable } from '../backup/manifest.js';

export interface ServerInfo {
  version: string;
  /** pg_database_size: the dump is smaller, so it bounds the payload. */
  databaseBytes: number;
  versionNum: number;
  major: number;
  database: string;
  inRecovery: boolean;
}

export async function serverInfo(client: pg.Client): Promise<ServerInfo> {
  const { rows } = await client.query<{ v: string; n: string; db: string; rec: boolean; size: string }>(
    `select current_setting('server_version') as v, current_setting('server_version_num') as n,
            current_database() as db, pg_is_in_recovery() as rec, pg_database_size(current_database())::text as size`,
  );
  const row = rows[0]!;
  const versionNum = Number(row.n);
  return { version: row.v.split(' ')[0] ?? row.v, databaseBytes: Number(row.size), versionNum, major: Math.floor(versionNum / 10000), database: row.db, inRecovery: row.rec };
}

/** Ordinary and partitioned tables outside system schemas, with the planner's row estimate. */
export async function listTables(client: pg.Client): Promise<ManifestTable[]> {
  const { rows } = await client.query<{ schema: string; name: string; relkind: string; est: number; parent: string | null; ispartition: boolean }>(
    `select n.nspname as schema, c.relname as name, c.relkind, c.reltuples::float8 as est, c.relispartition as ispartition,
            case when p.oid is null then null else quote_ident(pn.nspname) || '.' || quote_ident(p.relname) end as parent
       from pg_class c
       join pg_namespace n on n.oid = c.relnamespace
       -- One row per table: with multiple inheritance, the first parent (inhseqno 1) only.
       left join pg_inherits i on i.inhrelid = c.oid and i.inhseqno = 1
       left join pg_class p on p.oid = i.inhparent
       left join pg_namespace pn on pn.oid = p.relnamespace
      where c.relkind in ('r', 'p')
        and n.nspname not in ('pg_catalog', 'information_schema')
        and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp%'
      order by 1, 2`,
  );
  return rows.map((r) => ({
    schema: r.schema,
    name: r.name,
    kind: r.relkind === 'p' ? 'partitioned' : r.ispartition ? 'partition' : 'table',
    parent: r.parent,
    estimatedRows: Math.max(0, Math.round(r.est)),
  }));
}

export function qualifiedName(t: { schema: string; name: string }): string {
  return `${t.schema}.${t.name}`;
}
