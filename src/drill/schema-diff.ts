import { libpqEnvironment } from '../postgres/connect.js';
import { runTool } from '../process/tool.js';
import { toolPath } from '../process/tools.js';

/**
 * `pg_dump --schema-only` as comparable statements, whitespace folded: comments, SET
 * statements and the `\restrict` keys pg_dump 15.14+ writes (random per run) dropped, so
 * two dumps of the same schema give the same multiset.
 */
export async function schemaStatements(url: string, env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  const { dbname, env: childEnv } = libpqEnvironment(url, env);
  const out = await runTool('pg_dump --schema-only', toolPath('pg_dump', env), ['--schema-only', '--no-owner', '--no-privileges', '--no-password', `--dbname=${dbname}`], childEnv);
  const statements: string[] = [];
  let current: string[] = [];
  for (const raw of out.split('\n')) {
    const line = raw.trim();
    if (current.length === 0 && (line === '' || line.startsWith('--') || /^\\(un)?restrict /.test(line))) continue;
    current.push(line);
    if (line.endsWith(';')) {
      const statement = current.join(' ').replace(/\s+/g, ' ');
      current = [];
      if (!/^(SET |SELECT pg_catalog\.set_config)/.test(statement)) statements.push(statement);
    }
  }
  return statements;
}

export interface SchemaDiff {
  /** `live: CREATE TABLE …` (a migration after the backup) or `backup: …` (something dropped since). */
  changes: string[];
  /** Partitions created or dropped since the backup (partition maintenance's work, not a migration). */
  partitions: string[];
}

/** The items of the list that opens at `start` (split at top-level commas), then what follows the list as one more item. */
function parenthesised(statement: string, start: number): string[] {
  const items: string[] = [];
  let depth = 0;
  let from = start;
  for (let i = start; i < statement.length; i += 1) {
    const c = statement[i];
    if (c === '(') depth += 1;
    else if (c === ')') {
      if (depth === 0) {
        items.push(statement.slice(from, i).trim());
        const tail = statement.slice(i + 1).replace(/;$/, '').trim();
        if (tail) items.push(tail);
        return items;
      }
      depth -= 1;
    } else if (c === ',' && depth === 0) {
      items.push(statement.slice(from, i).trim());
      from = i + 1;
    }
  }
  return [statement.slice(start)];
}

const shorten = (s: string) => (s.length > 160 ? `${s.slice(0, 157)}…` : s);

/**
 * Seed 003's "check backup compatibility when the schema changes": statements only the live
 * schema has, and only the restored one has. Statements about a partition that was
 * attached on one side only are listed apart, so a real migration is not lost among the
 * months partition maintenance added.
 */
export function schemaDifferences(live: string[], restored: string[], limit = 20): SchemaDiff {
  const count = (xs: string[]) => xs.reduce((m, x) => m.set(x, (m.get(x) ?? 0) + 1), new Map<string, number>());
  const a = count(live);
  const b = count(restored);
  const only: { side: 'live' | 'backup'; statement: string }[] = [];
  for (const [x, n] of a) for (let i = b.get(x) ?? 0; i < n; i += 1) only.push({ side: 'live', statement: x });
  for (const [x, n] of b) for (let i = a.get(x) ?? 0; i < n; i += 1) only.push({ side: 'backup', statement: x });
  const partitionNames = new Set(only.flatMap(({ statement }) => [...statement.matchAll(/ATTACH PARTITION (\S+)/g)].map((m) => m[1]!)));
  const mentionsPartition = (s: string) => [...partitionNames].some((p) => new RegExp(`(^|[\\s(,])${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}([\\s(),;]|$)`).test(s));
  const changes: string[] = [];
  const partitions = new Set<string>();
  const rest: typeof only = [];
  for (const o of only) {
    if (mentionsPartition(o.statement)) {
      const attached = /ATTACH PARTITION (\S+)/.exec(o.statement)?.[1];
      if (attached && /^ALTER TABLE/.test(o.statement)) partitions.add(`${o.side}: ${attached}`);
    } else rest.push(o);
  }
  // The same object on both sides (`CREATE TABLE public.calls (`): say what changed in it.
  const head = (x: string) => /^[^(]*\(/.exec(x)?.[0];
  const paired = new Set<string>();
  for (const l of rest.filter((o) => o.side === 'live')) {
    const h = head(l.statement);
    const b = h ? rest.find((o) => o.side === 'backup' && !paired.has(o.statement) && head(o.statement) === h) : undefined;
    if (!b) continue;
    paired.add(l.statement).add(b.statement);
    const [li, bi] = [parenthesised(l.statement, h!.length), parenthesised(b.statement, h!.length)];
    const added = li.filter((i) => !bi.includes(i));
    const removed = bi.filter((i) => !li.includes(i));
    changes.push(`changed: ${h!.slice(0, -2).trim()}: ${[...added.map((i) => `live adds "${i}"`), ...removed.map((i) => `live lacks "${i}"`)].join(', ') || 'reordered'}`);
  }
  for (const { side, statement } of rest) if (!paired.has(statement)) changes.push(`${side}: ${shorten(statement)}`);
  return {
    changes: changes.length > limit ? [...changes.slice(0, limit), `… ${changes.length - limit} more statements differ`] : changes,
    partitions: [...partitions].sort(),
  };
}
