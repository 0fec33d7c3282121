import { formatterFor, offsetAt } from '../util/zone.js';

/** A calendar date with no time zone: the unit partitions are cut in. */
export interface LocalDate {
  y: number;
  m: number; // 1-12
  d: number;
}

export type Interval = 'day' | 'week' | 'month';
export type KeyType = 'timestamp with time zone' | 'timestamp without time zone' | 'date';

export interface Period {
  start: LocalDate;
  end: LocalDate; // exclusive
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

export function formatLocalDate(d: LocalDate): string {
  return `${pad(d.y, 4)}-${pad(d.m)}-${pad(d.d)}`;
}

function toUtcDay(d: LocalDate): number {
  return Date.UTC(d.y, d.m - 1, d.d);
}

function fromUtcDay(ms: number): LocalDate {
  const t = new Date(ms);
  return { y: t.getUTCFullYear(), m: t.getUTCMonth() + 1, d: t.getUTCDate() };
}

export function addDays(d: LocalDate, n: number): LocalDate {
  return fromUtcDay(toUtcDay(d) + n * 86_400_000);
}

export function addMonths(d: LocalDate, n: number): LocalDate {
  const index = d.y * 12 + (d.m - 1) + n;
  return { y: Math.floor(index / 12), m: (index % 12) + 1, d: 1 };
}

/** The wall-clock date of an instant in an IANA time zone. */
export function localDateIn(instant: Date, timeZone: string): LocalDate {
  const parts = formatterFor(timeZone).formatToParts(instant);
  const get = (t: string) => Number(parts.find((p) => p.type === t)?.value);
  return { y: get('year'), m: get('month'), d: get('day') };
}

/** The instant local midnight of `date` happens in `timeZone` (DST-aware). */
export function zonedMidnight(date: LocalDate, timeZone: string): Date {
  const guess = toUtcDay(date);
  const first = guess - offsetAt(guess, timeZone);
  const second = guess - offsetAt(first, timeZone);
  return new Date(second);
}

/** The period that contains `date`: months start on the 1st, weeks on Monday (ISO). */
export function periodContaining(date: LocalDate, interval: Interval): Period {
  switch (interval) {
    case 'month': {
      const start = { y: date.y, m: date.m, d: 1 };
      return { start, end: addMonths(start, 1) };
    }
    case 'week': {
      const weekday = (new Date(toUtcDay(date)).getUTCDay() + 6) % 7; // Monday = 0
      const start = addDays(date, -weekday);
      return { start, end: addDays(start, 7) };
    }
    case 'day':
      return { start: date, end: addDays(date, 1) };
  }
}

export function shiftPeriod(period: Period, interval: Interval, n: number): Period {
  switch (interval) {
    case 'month':
      return periodContaining(addMonths(period.start, n), 'month');
    case 'week':
      return { start: addDays(period.start, 7 * n), end: addDays(period.end, 7 * n) };
    case 'day':
      return { start: addDays(period.start, n), end: addDays(period.end, n) };
  }
}

/** ISO-8601 week-numbering year and week. */
export function isoWeek(date: LocalDate): { year: number; week: number } {
  const t = new Date(toUtcDay(date));
  const weekday = (t.getUTCDay() + 6) % 7;
  const thursday = new Date(t.getTime() + (3 - weekday) * 86_400_000);
  const year = thursday.getUTCFullYear();
  const jan4 = new Date(Date.UTC(year, 0, 4));
  const week = 1 + Math.round((thursday.getTime() - jan4.getTime()) / 86_400_000 / 7 - ((jan4.getUTCDay() + 6) % 7) / 7 + 3 / 7);
  return { year, week: Math.floor(week) };
}

export const DEFAULT_NAMING: Record<Interval, string> = {
  month: '{table}_{YYYY}_{MM}',
  week: '{table}_{IYYY}_w{IW}',
  day: '{table}_{YYYY}_{MM}_{DD}',
};

/** Tokens a pattern needs so that no two periods share a name. */
export function namingProblem(pattern: string, interval: Interval): string | undefined {
  if (!pattern.includes('{table}')) return 'must contain {table}';
  const has = (t: string) => pattern.includes(`{${t}}`);
  const ok =
    interval === 'month'
      ? has('YYYY') && has('MM')
      : interval === 'week'
        ? (has('IYYY') && has('IW')) || (has('YYYY') && has('MM') && has('DD'))
        : has('YYYY') && has('MM') && has('DD');
  return ok ? undefined : `does not tell ${interval}s apart (month: {YYYY} {MM}; week: {IYYY} {IW}; day: {YYYY} {MM} {DD})`;
}

export function partitionName(pattern: string, table: string, period: Period): string {
  const s = period.start;
  const iso = isoWeek(s);
  return pattern
    .replaceAll('{table}', table)
    .replaceAll('{YYYY}', pad(s.y, 4))
    .replaceAll('{MM}', pad(s.m))
    .replaceAll('{DD}', pad(s.d))
    .replaceAll('{IYYY}', pad(iso.year, 4))
    .replaceAll('{IW}', pad(iso.week));
}

/**
 * A bound as PostgreSQL prints it with TimeZone=UTC and DateStyle=ISO, so bounds we
 * compute compare as strings with bounds read from the catalog (and sort in time order).
 */
export function boundLiteral(date: LocalDate, keyType: KeyType, timeZone: string): string {
  switch (keyType) {
    case 'date':
      return formatLocalDate(date);
    case 'timestamp without time zone':
      return `${formatLocalDate(date)} 00:00:00`;
    case 'timestamp with time zone': {
      const iso = zonedMidnight(date, timeZone).toISOString(); // 2025-12-31T22:00:00.000Z
      return `${iso.slice(0, 10)} ${iso.slice(11, 19)}+00`;
    }
  }
}
