import type pg from 'pg';
import type { KeyType } from './periods.js';

export interface ChildPartition {
  schema: string;
  name: string;
  /** Bounds as printed with TimeZone=UTC, DateStyle=ISO; null for DEFAULT. */
  from: string | null;
  to: string | null;
  isDefault: boolean;
  detachPending: boolean;
}

export interface ParentState {
  schema: string;
  name: string;
  /** Why this table cannot be managed, if it cannot. */
  unusable?: string;
  keyColumn?: string;
  keyType?: KeyType;
  children: ChildPartition[];
  defaultPartition?: ChildPartition;
}

const BOUND = /^FOR VALUES FROM \((.+)\) TO \((.+)\)$/;
const KEY_TYPES: KeyType[] = ['timestamp with time zone', 'timestamp without time zone', 'date'];

/** `'2026-01-01 00:00:00+00'` -> the text; MINVALUE/MAXVALUE sort before/after everything. */
function boundValue(expr: string): string {
  if (expr === 'MINVALUE') return '';
  if (expr === 'MAXVALUE') return '\uffff';
  return expr.replace(/^'(.*)'$/, '$1').replace(/''/g, "'");
}

/**
 * Everything about the configured parents in one catalog query (not one per partition):
 * kind, strategy, key column and type, every child with its bounds, the default
 * partition, and detaches left pending by an interrupted run. Needs the session at
 * TimeZone=UTC and DateStyle=ISO so bounds print canonically.
 */
export async function readParents(client: pg.Client, tables: { schema: string; name: string }[]): Promise<Map<string, ParentState>> {
  const { rows } = await client.query<{
    schema_name: string;
    table_name: string;
    relkind: string | null;
    partstrat: string | null;
    partnatts: number | null;
    key_column: string | null;
    key_type: string | null;
    default_oid: string | null;
    child_schema: string | null;
    child: string | null;
    child_oid: string | null;
    bound: string | null;
    detach_pending: boolean | null;
  }>(
    `with wanted as (select * from unnest($1::text[], $2::text[]) as w(schema_name, table_name))
     select w.schema_name, w.table_name, p.relkind::text, pt.partstrat::text, pt.partnatts::int,
            ka.attname as key_column, format_type(ka.atttypid, null) as key_type, pt.partdefid::text as default_oid,
            cn.nspname as child_schema, c.relname as child, c.oid::text as child_oid,
            pg_get_expr(c.relpartbound, c.oid) as bound, i.inhdetachpending as detach_pending
       from wanted w
       left join pg_namespace n on n.nspname = w.schema_name
       left join pg_class p on p.relnamespace = n.oid and p.relname = w.table_name and p.relkind in ('r', 'p', 'v', 'm', 'f')
       left join pg_partitioned_table pt on pt.partrelid = p.oid
       left join pg_attribute ka on ka.attrelid = p.oid and ka.attnum = pt.partattrs[0] and pt.partattrs[0] <> 0
       left join pg_inherits i on i.inhparent = p.oid
       left join pg_class c on c.oid = i.inhrelid
       left join pg_namespace cn on cn.oid = c.relnamespace
      order by 1, 2, c.relname`,
    [tables.map((t) => t.schema), tables.map((t) => t.name)],
  );

  const out = new Map<string, ParentState>();
  for (const r of rows) {
    const key = `${r.schema_name}.${r.table_name}`;
    let state = out.get(key);
    if (!state) {
      state = { schema: r.schema_name, name: r.table_name, children: [] };
      if (r.relkind === null) state.unusable = `table ${key} does not exist`;
      else if (r.relkind !== 'p') state.unusable = `table ${key} is not partitioned (declare it PARTITION BY RANGE on a date/timestamp column)`;
      else if (r.partstrat !== 'r') state.unusable = `table ${key} is partitioned by ${r.partstrat === 'l' ? 'LIST' : 'HASH'}, not RANGE`;
      else if (r.partnatts !== 1 || !r.key_column) state.unusable = `table ${key} is range-partitioned on ${r.partnatts === 1 ? 'an expression' : 'several columns'}, not one date/timestamp column`;
      else if (!KEY_TYPES.includes(r.key_type as KeyType)) state.unusable = `table ${key} is range-partitioned on ${r.key_column} of type ${r.key_type}, not a date/timestamp column`;
      else {
        state.keyColumn = r.key_column;
        state.keyType = r.key_type as KeyType;
      }
      out.set(key, state);
    }
    if (r.child && r.child_schema && r.bound) {
      const m = BOUND.exec(r.bound);
      const child: ChildPartition = {
        schema: r.child_schema,
        name: r.child,
        from: m ? boundValue(m[1]!) : null,
        to: m ? boundValue(m[2]!) : null,
        isDefault: r.bound === 'DEFAULT',
        detachPending: r.detach_pending === true,
      };
      if (child.isDefault) state.defaultPartition = child;
      else state.children.push(child);
    }
  }
  for (const state of out.values()) state.children.sort((a, b) => ((a.from ?? '') < (b.from ?? '') ? -1 : 1));
  return out;
}

/** Which of these names already exist as relations (partition or not): one query. */
export async function existingRelations(client: pg.Client, names: { schema: string; name: string }[]): Promise<Set<string>> {
  if (names.length === 0) return new Set();
  const { rows } = await client.query<{ k: string }>(
    `select n.nspname || '.' || c.relname as k
       from unnest($1::text[], $2::text[]) as w(s, t)
       join pg_namespace n on n.nspname = w.s
       join pg_class c on c.relnamespace = n.oid and c.relname = w.t`,
    [names.map((n) => n.schema), names.map((n) => n.name)],
  );
  return new Set(rows.map((r) => r.k));
}
