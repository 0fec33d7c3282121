import type { PartitionTableConfig } from '../config/schema.js';
import type { ChildPartition, ParentState } from './catalog.js';
import { DEFAULT_NAMING, boundLiteral, localDateIn, namingProblem, partitionName, periodContaining, shiftPeriod, type KeyType } from './periods.js';

export interface CreateAction {
  name: string;
  from: string;
  to: string;
}

export interface DropAction {
  name: string;
  from: string | null;
  to: string | null;
  /** How the partition leaves its parent (DESIGN: CONCURRENTLY when there is no default partition). */
  mode: 'detach-concurrently' | 'detach' | 'finalize';
}

export interface TablePlan {
  table: string;
  schema: string;
  name: string;
  keyColumn?: string;
  keyType?: KeyType;
  defaultPartition?: string;
  create: CreateAction[];
  drop: DropAction[];
  /** Reported, never silently skipped: wrong bounds, overlaps, gaps, unusable tables. */
  problems: string[];
  /** Periods after the current one that exist now, without a gap. */
  coverageBefore: number;
  /** ...and once `create` has run. */
  coverageAfter: number;
  oldest?: string;
  existing: ChildPartition[];
}

export interface PlanSettings {
  timezone: string;
  /** The time the plan is made for (`--at` may move it). */
  now: Date;
  /**
   * The wall clock. Retention never drops a partition whose range reaches the period that
   * holds this instant, whatever `now` says: `--at` in the future must not empty live tables.
   */
  realNow?: Date;
}

/**
 * Decide what one table needs, from the catalog alone. Pure: the same state and clock
 * give the same plan, which is what dry-run prints and what the run executes.
 */
export function planTable(
  config: PartitionTableConfig,
  parent: ParentState,
  settings: PlanSettings,
  takenNames: Set<string>,
): TablePlan {
  const plan: TablePlan = {
    table: config.table,
    schema: parent.schema,
    name: parent.name,
    create: [],
    drop: [],
    problems: [],
    coverageBefore: 0,
    coverageAfter: 0,
    existing: parent.children,
  };
  if (parent.unusable || !parent.keyType || !parent.keyColumn) {
    plan.problems.push(parent.unusable ?? `table ${config.table} cannot be managed`);
    return plan;
  }
  plan.keyColumn = parent.keyColumn;
  plan.keyType = parent.keyType;
  if (parent.defaultPartition) plan.defaultPartition = parent.defaultPartition.name;
  plan.oldest = parent.children[0]?.name;
  const keyType = parent.keyType;
  const tz = config.timezone ?? settings.timezone;
  const naming = config.naming ?? DEFAULT_NAMING[config.interval];
  const namingIssue = namingProblem(naming, config.interval);
  if (namingIssue) {
    plan.problems.push(`naming "${naming}" ${namingIssue}`);
    return plan;
  }

  const current = periodContaining(localDateIn(settings.now, tz), config.interval);
  const byName = new Map(parent.children.map((c) => [c.name, c]));
  const overlapping = (from: string, to: string) => parent.children.filter((c) => c.from !== null && c.to !== null && c.from < to && from < c.to);

  const covered: boolean[] = [];
  for (let i = 0; i <= config.ahead; i += 1) {
    const period = shiftPeriod(current, config.interval, i);
    const from = boundLiteral(period.start, keyType, tz);
    const to = boundLiteral(period.end, keyType, tz);
    const name = partitionName(naming, parent.name, period);
    const existing = byName.get(name);
    if (existing) {
      if (existing.from === from && existing.to === to) covered.push(true);
      else {
        plan.problems.push(`partition ${name} exists with bounds [${existing.from}, ${existing.to}), expected [${from}, ${to})`);
        covered.push(false);
      }
      continue;
    }
    if (Buffer.byteLength(name) > 63) {
      plan.problems.push(`partition name ${name} is longer than PostgreSQL's 63 bytes: shorten the naming pattern`);
      covered.push(false);
      continue;
    }
    const clash = overlapping(from, to);
    if (clash.length > 0) {
      // Exactly the same range under another name still covers the period.
      const same = clash.find((c) => c.from === from && c.to === to);
      if (same) {
        covered.push(true);
        continue;
      }
      plan.problems.push(`range [${from}, ${to}) for ${name} overlaps ${clash.map((c) => `${c.name} [${c.from}, ${c.to})`).join(', ')}`);
      covered.push(false);
      continue;
    }
    if (takenNames.has(`${parent.schema}.${name}`)) {
      plan.problems.push(`a table named ${parent.schema}.${name} exists but is not a partition of ${parent.schema}.${parent.name}`);
      covered.push(false);
      continue;
    }
    plan.create.push({ name, from, to });
    covered.push(false);
  }
  const created = new Set(plan.create.map((c) => c.name));
  plan.coverageBefore = countAhead(covered);
  plan.coverageAfter = countAhead(
    covered.map((ok, i) => ok || created.has(partitionName(naming, parent.name, shiftPeriod(current, config.interval, i)))),
  );

  // Gaps between consecutive partitions, counting those this run creates: rows there
  // would go to the default partition, or fail to insert.
  const ranges = [...parent.children.map((c) => ({ name: c.name, from: c.from, to: c.to })), ...plan.create].sort((a, b) => ((a.from ?? '') < (b.from ?? '') ? -1 : 1));
  for (let i = 1; i < ranges.length; i += 1) {
    const a = ranges[i - 1]!;
    const b = ranges[i]!;
    if (a.to !== null && b.from !== null && a.to < b.from) plan.problems.push(`gap between ${a.name} (to ${a.to}) and ${b.name} (from ${b.from})`);
  }

  if (config.retention !== null) {
    const cutoffPeriod = shiftPeriod(current, config.interval, -config.retention);
    const byPlan = boundLiteral(cutoffPeriod.start, keyType, tz);
    const live = boundLiteral(periodContaining(localDateIn(settings.realNow ?? settings.now, tz), config.interval).start, keyType, tz);
    const cutoff = byPlan < live ? byPlan : live;
    for (const child of parent.children) {
      // Upper bound from the catalog, at or before the cutoff: never the current or a future period.
      if (child.to === null || child.to > cutoff) continue;
      plan.drop.push({
        name: child.name,
        from: child.from,
        to: child.to,
        mode: child.detachPending ? 'finalize' : parent.defaultPartition ? 'detach' : 'detach-concurrently',
      });
    }
    // A detach left pending by a failed run is finished whatever its age.
    for (const child of parent.children) {
      if (child.detachPending && !plan.drop.some((d) => d.name === child.name)) {
        plan.problems.push(`partition ${child.name} has a pending detach but is within retention: finish it by hand (ALTER TABLE ... DETACH PARTITION ... FINALIZE)`);
      }
    }
  }
  return plan;
}

/** Periods after the current one (index 0) that exist without a gap. */
function countAhead(covered: boolean[]): number {
  let n = 0;
  for (let i = 1; i < covered.length && covered[i]; i += 1) n += 1;
  return n;
}
