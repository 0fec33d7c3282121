import type pg from 'pg';
import { errorMessage } from '../errors.js';

/** What amcheck found in a restored database, and how much it looked at. */
export interface AmcheckResult {
  indexes: number;
  tables: number;
  /** One sentence per finding (at most 20): the relation and PostgreSQL's own words. */
  findings: string[];
  /** Why nothing was checked (the extension is not installed, or the role may not create it). */
  skipped?: string;
}

const MAX_FINDINGS = 20;
const USER_SCHEMAS = `n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp%'`;

/**
 * The restored data itself, page by page, as PostgreSQL's amcheck reads it: every valid
 * B-tree index with bt_index_check(heapallindexed => true) (every heap tuple must be in
 * its index), and every table with verify_heapam (14+). A row-count and content comparison
 * reads tables by sequential scan and never sees an index that lost entries, which the
 * application's queries would then silently miss. Creating the extension writes to the
 * restored (scratch) database only; where it cannot be created, the drill says so.
 */
export async function amcheck(c: pg.Client): Promise<AmcheckResult> {
  try {
    await c.query('create extension if not exists amcheck');
  } catch (error) {
    return { indexes: 0, tables: 0, findings: [], skipped: `amcheck not available here: ${errorMessage(error)}` };
  }
  const findings: string[] = [];
  const note = (s: string) => void (findings.length < MAX_FINDINGS && findings.push(s));
  const { rows: indexes } = await c.query<{ oid: number; name: string }>(
    `select c.oid::int as oid, format('%I.%I', n.nspname, c.relname) as name
       from pg_index i join pg_class c on c.oid = i.indexrelid join pg_am a on a.oid = c.relam join pg_namespace n on n.oid = c.relnamespace
      where a.amname = 'btree' and c.relkind = 'i' and i.indisvalid and i.indisready and c.relpersistence <> 't' and ${USER_SCHEMAS}
      order by 2`,
  );
  for (const ix of indexes) {
    try {
      await c.query('select bt_index_check(index => $1::oid::regclass, heapallindexed => true)', [ix.oid]);
    } catch (error) {
      note(`amcheck: index ${ix.name}: ${errorMessage(error)}`);
    }
  }
  const { rows: hasHeap } = await c.query(`select 1 from pg_proc where proname = 'verify_heapam'`);
  let tables: { oid: number; name: string }[] = [];
  if (hasHeap.length > 0) {
    ({ rows: tables } = await c.query<{ oid: number; name: string }>(
      `select c.oid::int as oid, format('%I.%I', n.nspname, c.relname) as name
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where c.relkind in ('r', 'm') and c.relpersistence <> 't' and ${USER_SCHEMAS}
        order by 2`,
    ));
    for (const t of tables) {
      try {
        const { rows } = await c.query<{ blkno: string; offnum: number | null; msg: string }>('select blkno::text, offnum, msg from verify_heapam(relation => $1::oid::regclass, check_toast => true) limit 5', [t.oid]);
        for (const r of rows) note(`amcheck: table ${t.name}, block ${r.blkno}${r.offnum === null ? '' : `, item ${r.offnum}`}: ${r.msg}`);
      } catch (error) {
        note(`amcheck: table ${t.name}: ${errorMessage(error)}`);
      }
    }
  }
  return { indexes: indexes.length, tables: tables.length, findings };
}
