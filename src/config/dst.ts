import type { OpsConfig } from './load.js';
import { offsetAt } from '../util/zone.js';

/**
 * EventBridge Scheduler runs a cron schedule in its time zone's wall clock: a time that
 * does not exist on a spring-forward day is skipped, one that repeats on a fall-back day
 * runs once. The seeds' weekly knowledge backup at Sunday 01:00 in Europe/London skips a
 * week every March (two weeks without a backup against an 8-day alarm). This finds every
 * such run in the next months, from the expression and the zone alone.
 */
export interface DstWarning {
  schedule: string;
  expression: string;
  timezone: string;
  date: string;
  kind: 'skipped' | 'ambiguous';
  message: string;
}

interface Cron {
  minutes: number[];
  hours: number[];
  dom: number[] | null;
  months: number[] | null;
  dow: number[] | null;
}

const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];
const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];

/** Values of one cron field; null for "any"; undefined when the field is too fancy to judge (L, W, #, steps). */
function field(text: string, min: number, max: number, names?: string[], base = 0): number[] | null | undefined {
  if (text === '*' || text === '?') return null;
  const out: number[] = [];
  for (const part of text.split(',')) {
    const value = (s: string) => {
      const i = names?.indexOf(s.toUpperCase()) ?? -1;
      return i >= 0 ? i + base : Number(s);
    };
    const m = /^([A-Za-z0-9]+)(?:-([A-Za-z0-9]+))?$/.exec(part);
    if (!m) return undefined;
    const from = value(m[1]!);
    const to = m[2] ? value(m[2]) : from;
    if (!Number.isInteger(from) || !Number.isInteger(to) || from < min || to > max) return undefined;
    for (let v = from; v <= to; v += 1) out.push(v);
  }
  return out;
}

function parseCron(expression: string): Cron | undefined {
  const m = /^cron\((.+)\)$/.exec(expression.trim());
  if (!m) return undefined;
  const [mi, h, dom, mo, dow] = m[1]!.trim().split(/\s+/);
  const minutes = field(mi!, 0, 59);
  const hours = field(h!, 0, 23);
  // A schedule every hour or minute loses or repeats one run of many: not worth a warning.
  if (!minutes || !hours) return undefined;
  const d = field(dom!, 1, 31);
  const months = field(mo!, 1, 12, MONTHS, 1);
  // EventBridge numbers days 1 (SUN) to 7 (SAT).
  const w = field(dow!, 1, 7, DAYS, 1);
  if (d === undefined || months === undefined || w === undefined) return undefined;
  return { minutes, hours, dom: d, months, dow: w ? w.map((x) => x - 1) : null };
}

const offsetMinutes = (at: number, timeZone: string) => Math.round(offsetAt(at, timeZone) / 60_000);

/** Instants (to the minute) where the zone's UTC offset changes, within [from, to). */
function transitions(timeZone: string, from: number, to: number): { at: number; before: number; after: number }[] {
  const out: { at: number; before: number; after: number }[] = [];
  const hour = 3_600_000;
  let prev = offsetMinutes(from, timeZone);
  for (let t = from + hour; t < to; t += hour) {
    const cur = offsetMinutes(t, timeZone);
    if (cur === prev) continue;
    let lo = t - hour;
    let hi = t;
    while (hi - lo > 60_000) {
      const mid = Math.floor((lo + hi) / 2 / 60_000) * 60_000;
      if (offsetMinutes(mid, timeZone) === prev) lo = mid;
      else hi = mid;
    }
    out.push({ at: hi, before: prev, after: cur });
    prev = cur;
  }
  return out;
}

const pad = (n: number) => String(n).padStart(2, '0');

export function dstWarnings(schedule: string, expression: string, timeZone: string, from: Date, months = 12): DstWarning[] {
  const cron = parseCron(expression);
  if (!cron) return [];
  const end = new Date(from);
  end.setUTCMonth(end.getUTCMonth() + months);
  const out: DstWarning[] = [];
  for (const tr of transitions(timeZone, from.getTime(), end.getTime())) {
    const skipped = tr.after > tr.before;
    // The affected wall-clock window, as minutes of that local day.
    const windowStart = new Date(tr.at + (skipped ? tr.before : tr.after) * 60_000);
    const length = Math.abs(tr.after - tr.before);
    const y = windowStart.getUTCFullYear();
    const mo = windowStart.getUTCMonth() + 1;
    const d = windowStart.getUTCDate();
    const weekday = new Date(Date.UTC(y, mo - 1, d)).getUTCDay();
    if (cron.months && !cron.months.includes(mo)) continue;
    if (cron.dom && !cron.dom.includes(d)) continue;
    if (cron.dow && !cron.dow.includes(weekday)) continue;
    const startMin = windowStart.getUTCHours() * 60 + windowStart.getUTCMinutes();
    for (const h of cron.hours) {
      for (const m of cron.minutes) {
        const at = h * 60 + m;
        if (at < startMin || at >= startMin + length) continue;
        const date = `${y}-${pad(mo)}-${pad(d)}`;
        const time = `${pad(h)}:${pad(m)}`;
        const clock = (minutes: number) => `${pad(Math.floor(minutes / 60) % 24)}:${pad(minutes % 60)}`;
        const [a, b] = [clock(startMin), clock(startMin + length)];
        out.push({
          schedule,
          expression,
          timezone: timeZone,
          date,
          kind: skipped ? 'skipped' : 'ambiguous',
          message: skipped
            ? `${schedule} ${expression} in ${timeZone}: ${date} ${time} does not exist (clocks go forward ${a} -> ${b}); EventBridge Scheduler skips that run. Move it out of ${a}-${b} or use UTC`
            : `${schedule} ${expression} in ${timeZone}: ${date} ${time} happens twice (clocks go back from ${b} to ${a}); EventBridge Scheduler runs it once`,
        });
      }
    }
  }
  return out;
}

/** Every schedule of the configuration, by the job it starts. */
export function configSchedules(config: OpsConfig): { schedule: string; expression: string; timezone: string }[] {
  const tz = config.timezone;
  return [
    ...config.postgres.flatMap((d) => [
      { schedule: `backup postgres ${d.name}`, expression: d.backup.schedule, timezone: tz },
      { schedule: `verify postgres ${d.name}`, expression: d.verify.schedule, timezone: tz },
      { schedule: `drill postgres ${d.name}`, expression: d.drill.schedule, timezone: tz },
      ...(d.partitions && d.partitions.tables.length > 0 ? [{ schedule: `partitions ${d.name}`, expression: d.partitions.schedule, timezone: tz }] : []),
    ]),
    ...config.redis.map((r) => ({ schedule: `backup redis ${r.name}`, expression: r.backup.schedule, timezone: tz })),
    ...config.knowledge.map((k) => ({ schedule: `backup knowledge ${k.name}`, expression: k.backup.schedule, timezone: tz })),
  ];
}

export function configDstWarnings(config: OpsConfig, from = new Date()): DstWarning[] {
  return configSchedules(config).flatMap((s) => dstWarnings(s.schedule, s.expression, s.timezone, from));
}
