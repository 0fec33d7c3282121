import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as z from 'zod';
import { manifestSchema, manifestTableSchema } from '../../src/backup/manifest.js';

// The manifest's tables are checked where JSON.parse left them (a copy of each of 50,000 entries
// cost 30 ms and 10 MiB of peak RSS in every verify). What it accepts and refuses, and the
// words of each refusal, must stay those of z.array(manifestTableSchema).
const base = {
  formatVersion: 1,
  id: '20261206T000000Z',
  component: 'postgres',
  name: 'db',
  payload: { key: 'postgres/db/20261206T000000Z/db.dump.zst', bytes: 1, sha256: 'a'.repeat(64), streamCodec: 'zstd', compression: 'zstd -1', format: 'pg_dump-custom' },
  startedAt: '2026-12-06T00:00:00.000Z',
  finishedAt: '2026-12-06T00:00:01.000Z',
  durationSeconds: 1,
  tools: {},
  source: {},
};
const good = { schema: 'public', name: 'calls', kind: 'partitioned', parent: null, estimatedRows: 3 };
const copying = z.object({ tables: z.array(manifestTableSchema).optional() });
const problems = (r: { success: boolean; error?: z.ZodError }) => (r.success ? [] : r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`));

describe('manifest tables', () => {
  it('keeps the parsed entries themselves, not copies', () => {
    const json = JSON.parse(JSON.stringify({ ...base, tables: [good, { ...good, name: 'calls_2026_12', kind: 'partition', parent: 'public.calls' }] }));
    const parsed = manifestSchema.parse(json);
    assert.equal(parsed.tables![0], json.tables[0]);
    assert.equal(parsed.tables![1], json.tables[1]);
    assert.deepEqual(parsed.tables, copying.parse(json).tables);
  });

  it('refuses what the copying schema refuses, with the same problems at the same paths', () => {
    const cases: unknown[] = [
      'not a list',
      [null],
      [42],
      [{ ...good, name: 7 }],
      [{ ...good, kind: 'view' }],
      [{ ...good, parent: 3 }],
      [good, { ...good, estimatedRows: '3' }, { schema: 'public' }],
      [{ ...good, schema: undefined, estimatedRows: null }],
    ];
    for (const tables of cases) {
      const ours = problems(manifestSchema.safeParse({ ...base, tables }));
      const theirs = problems(copying.safeParse({ tables }));
      assert.notEqual(theirs.length, 0, JSON.stringify(tables));
      assert.deepEqual(ours, theirs, JSON.stringify(tables));
    }
    assert.deepEqual(problems(manifestSchema.safeParse({ ...base, tables: [] })), []);
    assert.deepEqual(problems(manifestSchema.safeParse(base)), [], 'a manifest without tables (redis, knowledge)');
  });
});
