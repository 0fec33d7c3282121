import * as z from 'zod';
import { configSchema } from './schema.js';

/**
 * The configuration file's JSON Schema, for editors (`"$schema": "doc/ops.config.schema.json"`).
 * Generated from the one zod schema; what JSON Schema cannot say (a valid time zone, a
 * cron expression, no password in a URL) is still checked by `opsctl config validate`.
 */
export function configJsonSchema(): Record<string, unknown> {
  return {
    ...(z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>),
    $id: 'https://github.com/example/ops-automation/doc/ops.config.schema.json',
    title: 'ops-automation configuration',
  };
}
