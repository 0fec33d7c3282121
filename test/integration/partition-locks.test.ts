import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { seedSchemaSql } from '../../src/demo/sample-database.js';
import { createStatements, dropStatements } from '../../src/partitions/sql.js';
import type { TablePlan } from '../../src/partitions/plan.js';
import { createTestDatabase, query, type TestDatabase } from '../helpers/postgres.js';

/** Lock modes this backend holds, by relation name, inside the current transaction. */
async function heldLocks(c: pg.Client): Promise<Record<string, string[]>> {
  const { rows } = await c.query<{ rel: string; mode: string }>(
    `SELECT c.relname AS rel, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
      WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND c.relnamespace = 'public'::regnamespace ORDER BY 1, 2`,
  );
  const out: Record<string, string[]> = {};
  for (const r of rows) (out[r.rel] ??= []).push(r.mode);
  return out;
}

const plan = (defaultPartition?: string): TablePlan => ({
  table: 'public.calls',
  schema: 'public',
  name: 'calls',
  keyColumn: 'started_at',
  keyType: 'timestamp with time zone',
  ...(defaultPartition ? { defaultPartition } : {}),
  create: [],
  drop: [],
  problems: [],
    warnings: [],
  coverageBefore: 0,
  coverageAfter: 0,
  existing: [],
});

describe('locks taken by partition maintenance (measured from pg_locks)', () => {
  let db: TestDatabase;
  let c: pg.Client;
  before(async () => {
    db = await createTestDatabase('ops_test_locks');
    await query(db.name, seedSchemaSql());
    c = new pg.Client({ connectionString: db.url });
    await c.connect();
  });
  after(async () => {
    await c?.end();
    await db?.drop();
  });

  it('standalone CREATE + CHECK + ATTACH: SHARE UPDATE EXCLUSIVE on the parent, which reads and writes do not wait for', async () => {
    await c.query('BEGIN');
    for (const s of createStatements(plan(), { name: 'calls_2026_06', from: '2026-06-01 00:00:00+00', to: '2026-07-01 00:00:00+00' })) await c.query(s);
    const locks = await heldLocks(c);
    await c.query('ROLLBACK');
    assert.deepEqual(locks.calls, ['AccessShareLock', 'ShareUpdateExclusiveLock']);
    assert.ok(locks.calls_2026_06?.includes('AccessExclusiveLock'), 'only the new, empty table is locked exclusively');
  });

  it('for comparison, CREATE TABLE … PARTITION OF takes ACCESS EXCLUSIVE on the parent (blocks all traffic)', async () => {
    await c.query('BEGIN');
    await c.query(`CREATE TABLE public.calls_2026_07 PARTITION OF public.calls FOR VALUES FROM ('2026-07-01 00:00+00') TO ('2026-08-01 00:00+00')`);
    const locks = await heldLocks(c);
    await c.query('ROLLBACK');
    assert.ok(locks.calls?.includes('AccessExclusiveLock'));
  });

  it('plain DETACH (used when a default partition exists) takes ACCESS EXCLUSIVE on the parent; that is why CONCURRENTLY is preferred', async () => {
    await c.query('BEGIN');
    const [detach] = dropStatements(plan('calls_default'), { name: 'calls_2026_01', from: null, to: null, mode: 'detach' });
    await c.query(detach!);
    const locks = await heldLocks(c);
    await c.query('ROLLBACK');
    assert.ok(locks.calls?.includes('AccessExclusiveLock'));
  });
});
