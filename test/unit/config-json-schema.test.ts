import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { configJsonSchema } from '../../src/config/json-schema.js';
import { ROOT } from '../helpers/cli.js';

describe('doc/ops.config.schema.json', () => {
  it('is what the zod schema generates (npm run gen:schema), and every config\'s $schema points at it', () => {
    const file = path.join(ROOT, 'doc', 'ops.config.schema.json');
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), configJsonSchema(), 'stale: run npm run gen:schema');
    for (const config of ['ops.config.json', 'cdk/stages/example.ops.config.json']) {
      const ref = (JSON.parse(readFileSync(path.join(ROOT, config), 'utf8')) as { $schema?: string }).$schema!;
      assert.ok(existsSync(path.resolve(path.dirname(path.join(ROOT, config)), ref)), `${config}: $schema ${ref} exists`);
    }
    const props = (configJsonSchema().properties ?? {}) as Record<string, unknown>;
    for (const key of ['timezone', 'repository', 'postgres', 'redis', 'knowledge', 'metrics']) assert.ok(props[key], key);
  });
});
