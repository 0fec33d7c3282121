import type * as z from 'zod';
import { OpsError } from '../../src/errors.js';

/** Validation at the edge: every problem at once, each with its path. */
export function parseOrThrow<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
  throw new OpsError('INVALID_INPUT', `invalid ${what}: ${problems.join('; ')}`, { context: { problems }, exitCode: 64 });
}
