import type { PartitionTableConfig } from '../config/schema.js';
import type { ChildPartition, ParentState } from './catalog.js';
import { DEFAULT_NAMING, boundLiteral, localDateIn, namingProblem, partitionName, periodContaining, shiftPeriod, type KeyType, type Period } from './periods.js';

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
  /**
   * What stops the run doing its job (exit 2): a period from now to `ahead` that cannot be
   * covered, an unusable table. Reported, never silently skipped.
   */
  problems: string[];
  /** Done, but a person should look (exit 1): a past gap that cannot be filled, a pending detach. */
  warnings: string[];
  /** Start of the oldest period retention keeps (rows in the default partition before it stay there). */
  retentionCutoff?: string;
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
    warnings: [],
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

  const { back, cutoffPeriod } = periodsToHave(config, parent, current, keyType, tz);
  if (cutoffPeriod) plan.retentionCutoff = boundLiteral(cutoffPeriod.start, keyType, tz);
  const covered: boolean[] = [];
  for (let i = -back; i <= config.ahead; i += 1) {
    const period = shiftPeriod(current, config.interval, i);
    // A period that cannot be covered is the run failing its job only from now on.
    const report = (message: string) => (i >= 0 ? plan.problems : plan.warnings).push(message);
    const cover = (ok: boolean) => {
      if (i >= 0) covered.push(ok);
    };
    const from = boundLiteral(period.start, keyType, tz);
    const to = boundLiteral(period.end, keyType, tz);
    const name = partitionName(naming, parent.name, period);
    const existing = byName.get(name);
    if (existing) {
      if (existing.from === from && existing.to === to) cover(true);
      else {
        report(`partition ${name} exists with bounds [${existing.from}, ${existing.to}), expected [${from}, ${to})`);
        cover(false);
      }
      continue;
    }
    if (Buffer.byteLength(name) > 63) {
      report(`partition name ${name} is longer than PostgreSQL's 63 bytes: shorten the naming pattern`);
      cover(false);
      continue;
    }
    const clash = overlapping(from, to);
    if (clash.length > 0) {
      // Exactly the same range under another name still covers the period.
      const same = clash.find((c) => c.from === from && c.to === to);
      if (same) {
        cover(true);
        continue;
      }
      report(`range [${from}, ${to}) for ${name} overlaps ${clash.map((c) => `${c.name} [${c.from}, ${c.to})`).join(', ')}`);
      cover(false);
      continue;
    }
    if (takenNames.has(`${parent.schema}.${name}`)) {
      report(`a table named ${parent.schema}.${name} exists but is not a partition of ${parent.schema}.${parent.name}`);
      cover(false);
      continue;
    }
    plan.create.push({ name, from, to });
    cover(false);
  }
  const created = new Set(plan.create.map((c) => c.name));
  plan.coverageBefore = countAhead(covered);
  plan.coverageAfter = countAhead(
    covered.map((ok, i) => ok || created.has(partitionName(naming, parent.name, shiftPeriod(current, config.interval, i)))),
  );

  // Gaps between consecutive partitions, counting those this run creates: rows there
  // would go to the default partition, or fail to insert. Gaps wholly before the
  // retention cutoff do not matter (their neighbours are being retired).
  const ranges = [...parent.children.map((c) => ({ name: c.name, from: c.from, to: c.to })), ...plan.create].sort((a, b) => ((a.from ?? '') < (b.from ?? '') ? -1 : 1));
  const currentFrom = boundLiteral(current.start, keyType, tz);
  const aheadEnd = boundLiteral(shiftPeriod(current, config.interval, config.ahead).end, keyType, tz);
  for (let i = 1; i < ranges.length; i += 1) {
    const a = ranges[i - 1]!;
    const b = ranges[i]!;
    if (a.to === null || b.from === null || a.to >= b.from) continue;
    if (plan.retentionCutoff && b.from <= plan.retentionCutoff) continue;
    const gap = `gap between ${a.name} (to ${a.to}) and ${b.name} (from ${b.from})${config.fillGaps ? '' : ' (fillGaps is off)'}`;
    // A hole in the periods that must exist (now to `ahead`) is a failure; any other is reported.
    (a.to < aheadEnd && b.from > currentFrom ? plan.problems : plan.warnings).push(gap);
  }

  if (plan.retentionCutoff) {
    const live = boundLiteral(periodContaining(localDateIn(settings.realNow ?? settings.now, tz), config.interval).start, keyType, tz);
    const cutoff = plan.retentionCutoff < live ? plan.retentionCutoff : live;
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
        plan.warnings.push(`partition ${child.name} has a pending detach but is within retention: finish it by hand (ALTER TABLE ... DETACH PARTITION ... FINALIZE)`);
      }
    }
  }
  return plan;
}

/**
 * The periods a table must have, as offsets from the current one: up to `ahead` past it
 * and, with fillGaps, back to the oldest existing partition (missed runs are caught up, as
 * pg_partman's maintenance does), never before the retention cutoff.
 */
export function periodsToHave(config: PartitionTableConfig, parent: ParentState, current: Period, keyType: KeyType, tz: string): { back: number; cutoffPeriod: Period | undefined } {
  const cutoffPeriod = config.retention !== null ? shiftPeriod(current, config.interval, -config.retention) : undefined;
  let back = 0;
  const oldestFrom = parent.children.find((c) => c.from !== null)?.from ?? null;
  if (config.fillGaps && oldestFrom !== null) {
    const limit = config.retention ?? 100_000;
    while (back < limit && boundLiteral(shiftPeriod(current, config.interval, -(back + 1)).start, keyType, tz) >= oldestFrom) back += 1;
  }
  return { back, cutoffPeriod };
}

/** Periods after the current one (index 0) that exist without a gap. */
function countAhead(covered: boolean[]): number {
  let n = 0;
  for (let i = 1; i < covered.length && covered[i]; i += 1) n += 1;
  return n;
}
