import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { configSchema, type PostgresDatabaseConfig } from '../../src/config/schema.js';
import { seedSchemaSql } from '../../src/demo/sample-database.js';
import { silentLog } from '../../src/log.js';
import { ensurePartitions } from '../../src/partitions/run.js';
import { postgresConfig, runCli, tempDir, writeConfig } from '../helpers/cli.js';
import { monthsBetween } from '../helpers/months.js';
import { createTestDatabase, query, type TestDatabase } from '../helpers/postgres.js';

const TABLES = [{ table: 'public.call_turns', retention: 12, ahead: 1 }];
const dbConfig = (url: string, tables: Record<string, unknown>[] = TABLES): PostgresDatabaseConfig =>
  configSchema.parse({ postgres: [{ name: 'callcenter', url, partitions: { tables, lockTimeoutMs: 2_000, lockRetries: 5 } }] }).postgres[0]!;

describe('partition maintenance under concurrent writers and a moved clock', () => {
  const dbs: TestDatabase[] = [];
  after(async () => {
    while (dbs.length) await dbs.pop()!.drop();
  });

  // The race: the move copied the default partition's rows for the new range, then deleted
  // them in a second statement; a row an application committed in between was deleted
  // without a copy. Here an application commits a row every few milliseconds, for the
  // new range, while the run moves 30,000 rows; every committed row must survive, and the
  // reported count must be what actually moved.
  it('a default-partition move loses no row committed during it, in any of 6 rounds (2 of them starting with an empty default partition)', async () => {
    for (let round = 0; round < 6; round += 1) {
      const preload = round % 3 === 2 ? 0 : 30_000;
      const db = await createTestDatabase('ops_test_race');
      dbs.push(db);
      await query(db.name, seedSchemaSql('public', ['2026_05']));
      await query(db.name, `CREATE TABLE public.call_turns_default PARTITION OF public.call_turns DEFAULT`);
      await query(db.name, `INSERT INTO public.call_turns SELECT g, 1, '2026-06-01 00:00+00'::timestamptz + g * interval '1 second', 'caller', 'preloaded' FROM generate_series(1, ${preload}) g`);
      const writer = new pg.Client({ connectionString: db.url });
      await writer.connect();
      let committed = 0;
      let stop = false;
      const writing = (async () => {
        for (let id = 1_000_000; !stop; id += 1) {
          // Autocommit: each INSERT is its own committed transaction, routed to the default
          // partition until the new partition is attached, to the new partition after.
          await writer.query(`INSERT INTO public.call_turns VALUES ($1, 1, '2026-06-15 12:00+00', 'caller', 'live')`, [id]);
          committed += 1;
        }
      })();
      await new Promise((r) => setTimeout(r, 30));
      const result = await ensurePartitions(db.url, dbConfig(db.url), 'UTC', { dryRun: false, now: new Date('2026-05-20T12:00:00Z'), realNow: new Date('2026-05-20T12:00:00Z'), log: silentLog });
      await new Promise((r) => setTimeout(r, 30));
      stop = true;
      await writing;
      await writer.end();
      const table = result.tables[0]!;
      assert.deepEqual(table.problems, [], `round ${round}`);
      assert.ok(table.created.includes('call_turns_2026_06'), `round ${round}: ${table.created.join(' ')}`);
      const live = Number((await query(db.name, `SELECT count(*) AS n FROM public.call_turns WHERE content = 'live'`)).rows[0]?.n);
      const preloaded = Number((await query(db.name, `SELECT count(*) AS n FROM public.call_turns WHERE content = 'preloaded'`)).rows[0]?.n);
      assert.equal(live, committed, `round ${round}: ${committed} rows committed by the application, ${live} left`);
      assert.equal(preloaded, preload, `round ${round}`);
      const inDefault = Number((await query(db.name, `SELECT count(*) AS n FROM ONLY public.call_turns_default`)).rows[0]?.n);
      assert.equal(inDefault, 0, `round ${round}: nothing for June left in the default partition`);
      // Reported: exactly the rows this run took out of the default partition.
      const movedReported = table.moved.call_turns_2026_06 ?? 0;
      assert.ok(movedReported >= preload && movedReported <= preload + committed, `round ${round}: moved ${movedReported}`);
      await db.drop();
      dbs.pop();
    }
  });

  it('--at in the future never drops the real current period, and drops nothing without --confirm-drop', async () => {
    const db = await createTestDatabase('ops_test_at');
    dbs.push(db);
    const now = new Date();
    const ym = (d: Date) => `${d.getUTCFullYear()}_${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
    const first = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 14, 1));
    const last = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 3, 1));
    await query(db.name, seedSchemaSql('public', monthsBetween(ym(first), ym(last))));
    const current = `call_turns_${ym(now)}`;
    await query(db.name, `INSERT INTO public.call_turns VALUES (1, 1, now(), 'caller', 'live row')`);
    const dir = await tempDir();
    const cfg = await writeConfig(dir, postgresConfig('callcenter', db.url, `file://${dir}/repo`, { partitions: { tables: [{ table: 'public.call_turns', retention: 12 }] } }));
    const partitions = async () => (await query(db.name, `SELECT c.relname AS n FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'public.call_turns'::regclass ORDER BY 1`)).rows.map((r) => r.n as string);
    const before = await partitions();

    const refused = await runCli(['--config', cfg, 'partitions', 'ensure', '--at', '2031-01-15T00:00:00Z']);
    assert.equal(refused.code, 64, refused.stderr + refused.stdout);
    assert.match(refused.stdout + refused.stderr, /would drop \d+ partition\(s\).*--dry-run.*--confirm-drop/s);
    assert.deepEqual(await partitions(), before, 'nothing changed');

    const preview = await runCli(['--config', cfg, '--json', 'partitions', 'ensure', '--at', '2031-01-15T00:00:00Z', '--dry-run']);
    assert.notEqual(preview.code, 64, preview.stderr); // 2 while a gap to 2031 is reported
    const wouldDrop = (JSON.parse(preview.stdout) as { results: { tables: { dropped: string[] }[] }[] }).results[0]!.tables[0]!.dropped;
    assert.ok(wouldDrop.length > 0 && !wouldDrop.includes(current), `the dry run lists past partitions only: ${wouldDrop.join(' ')}`);
    assert.ok(wouldDrop.every((n) => n < current), wouldDrop.join(' '));

    const confirmed = await runCli(['--config', cfg, '--json', 'partitions', 'ensure', '--at', '2031-01-15T00:00:00Z', '--confirm-drop']);
    const after = await partitions();
    assert.ok(after.includes(current), `${current} kept: ${after.join(' ')}`);
    assert.ok(after.filter((n) => n > current).length >= 3, 'future partitions kept');
    assert.equal(Number((await query(db.name, `SELECT count(*) AS n FROM public.call_turns`)).rows[0]?.n), 1, 'the live row is still there');
    assert.ok(confirmed.code === 0 || confirmed.code === 2, confirmed.stderr);
  });
});
