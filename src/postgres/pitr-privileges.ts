import type pg from 'pg';
import { quoteIdent } from './identifiers.js';

/** One privilege point-in-time recovery needs of the backup role, and the statement that grants it. */
export interface MissingPrivilege {
  what: string;
  /** Who needs it. */
  neededBy: string;
  grant: string;
}

/**
 * What the role the jobs connect as lacks for point-in-time recovery: REPLICATION for
 * pg_basebackup, and EXECUTE on pg_create_restore_point() and pg_switch_wal(), which the
 * PITR drill calls on the live server and which PostgreSQL grants to superusers only by
 * default (a LOGIN REPLICATION role gets "permission denied" on the drill's first run).
 */
export async function missingPitrPrivileges(c: pg.Client): Promise<MissingPrivilege[]> {
  const { rows } = await c.query<{ role: string; repl: boolean; rp: boolean; sw: boolean }>(
    `select current_user::text as role,
            (select rolreplication or rolsuper from pg_roles where rolname = current_user) as repl,
            has_function_privilege('pg_catalog.pg_create_restore_point(text)', 'execute') as rp,
            has_function_privilege('pg_catalog.pg_switch_wal()', 'execute') as sw`,
  );
  const r = rows[0]!;
  const role = quoteIdent(r.role);
  const missing: MissingPrivilege[] = [];
  if (!r.repl) missing.push({ what: 'the REPLICATION attribute', neededBy: 'base backups (pg_basebackup)', grant: `ALTER ROLE ${role} REPLICATION` });
  if (!r.rp) missing.push({ what: 'EXECUTE on pg_create_restore_point(text)', neededBy: 'the point-in-time drill', grant: `GRANT EXECUTE ON FUNCTION pg_catalog.pg_create_restore_point(text) TO ${role}` });
  if (!r.sw) missing.push({ what: 'EXECUTE on pg_switch_wal()', neededBy: 'the point-in-time drill', grant: `GRANT EXECUTE ON FUNCTION pg_catalog.pg_switch_wal() TO ${role}` });
  // The drill reads every user table of the database from a snapshot (SELECT) and holds
  // writers off with LOCK TABLE … IN SHARE MODE for the instant of the restore point, which
  // PostgreSQL allows with UPDATE, DELETE or TRUNCATE (MAINTAIN from 17, which pg_maintain grants).
  const { rows: v } = await c.query<{ n: number }>(`select current_setting('server_version_num')::int as n`);
  const maintain = v[0]!.n >= 170000;
  const { rows: t } = await c.query<{ unreadable: string[]; unlockable: string[]; schemas: string[] }>(
    `select coalesce(array_agg(format('%I.%I', n.nspname, c.relname)) filter (where not has_table_privilege(c.oid, 'SELECT')), '{}') as unreadable,
            coalesce(array_agg(format('%I.%I', n.nspname, c.relname)) filter (where not (has_table_privilege(c.oid, 'UPDATE') or has_table_privilege(c.oid, 'DELETE') or has_table_privilege(c.oid, 'TRUNCATE')${maintain ? ` or has_table_privilege(c.oid, 'MAINTAIN')` : ''})), '{}') as unlockable,
            coalesce(array_agg(distinct format('%I', n.nspname)), '{}') as schemas
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%'`,
  );
  const tables = t[0]!;
  const some = (names: string[]) => `${names.length} table${names.length === 1 ? '' : 's'}, e.g. ${names[0]}`;
  if (tables.unreadable.length > 0) missing.push({ what: `SELECT on ${some(tables.unreadable)}`, neededBy: "the point-in-time drill's comparison", grant: `GRANT pg_read_all_data TO ${role}` });
  if (tables.unlockable.length > 0) {
    missing.push({
      what: `LOCK TABLE … IN SHARE MODE on ${some(tables.unlockable)}`,
      neededBy: 'the point-in-time drill, which holds writers off for the instant of its restore point and writes nothing',
      grant: maintain ? `GRANT pg_maintain TO ${role}` : tables.schemas.map((sc) => `GRANT UPDATE ON ALL TABLES IN SCHEMA ${sc} TO ${role}`).join('; '),
    });
  }
  return missing;
}

/** `role lacks X (needed by Y): run GRANT …; …` */
export function describeMissing(missing: MissingPrivilege[]): string {
  return missing.map((m) => `lacks ${m.what} (needed by ${m.neededBy}): ${m.grant}`).join('; ');
}
