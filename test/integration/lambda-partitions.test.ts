import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Logger } from '@aws-lambda-powertools/logger';
import { runPartitions } from '../../lambdas/partitions/handler.js';
import { fileConfigSource } from '../../src/config/source.js';
import { monthsFrom, seedSchemaSql } from '../../src/demo/sample-database.js';
import { silentLog } from '../../src/log.js';
import { postgresConfig, tempDir, writeConfig } from '../helpers/cli.js';
import { createTestDatabase, query, type TestDatabase } from '../helpers/postgres.js';

describe('partitions Lambda handler', () => {
  let db: TestDatabase;
  let cfg: string;
  const logger = new Logger({ serviceName: 'test', logLevel: 'SILENT' });

  before(async () => {
    db = await createTestDatabase('ops_test_lambda_parts');
    // The handler uses the real clock: partitions up to this month, as in a running system.
    await query(db.name, seedSchemaSql('public', monthsFrom('2026_01', new Date())));
    const dir = await tempDir();
    cfg = await writeConfig(dir, postgresConfig('callcenter', db.url, `file://${dir}/repo`, {
      partitions: { tables: [{ table: 'public.calls' }, { table: 'public.call_turns', retention: 12 }, { table: 'public.missing_table' }] },
    }));
  });
  after(async () => {
    await db?.drop();
  });

  it('dry run with { dryRun, tables } returns the plan and changes nothing', async () => {
    const out = await runPartitions({ dryRun: true, tables: ['public.calls'] }, { source: fileConfigSource(cfg, silentLog), logger });
    const r = out.results[0]!;
    assert.ok('tables' in r);
    assert.equal(r.tables.length, 1);
    assert.ok((r.tables[0]?.sql ?? []).some((s) => s.startsWith('ALTER TABLE "public"."calls" ATTACH PARTITION')));
    const before = monthsFrom('2026_01', new Date()).length;
    assert.equal((await query(db.name, `SELECT count(*)::int AS n FROM pg_inherits WHERE inhparent = 'public.calls'::regclass`)).rows[0]?.n, before);
  });

  it('throws (failed invocation) naming the table that failed, after doing what it could', async () => {
    await assert.rejects(runPartitions({}, { source: fileConfigSource(cfg, silentLog), logger }), /partition maintenance failed: callcenter\/public\.missing_table: table public\.missing_table does not exist/);
    assert.equal((await query(db.name, `SELECT count(*)::int AS n FROM pg_inherits WHERE inhparent = 'public.calls'::regclass`)).rows[0]!.n, monthsFrom('2026_01', new Date()).length + 3, 'the other tables were still handled');
  });

  it('rejects an unknown event field before touching the database', async () => {
    await assert.rejects(runPartitions({ dryrun: true }, { source: fileConfigSource(cfg, silentLog), logger }), /invalid partitions request: \(root\): Unrecognized key/);
  });
});
