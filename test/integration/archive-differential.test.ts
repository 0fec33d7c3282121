import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  createAwkwardDatabase,
  differentialTable,
  dumpFixture,
  MUTATION_KINDS,
  runDifferential,
  STRICTER_CODES,
  type CaseResult,
} from '../helpers/archive-differential.js';
import type { TestDatabase } from '../helpers/postgres.js';

/*
 * The native reader must be as strict as pg_restore: every mutation pg_restore refuses,
 * it refuses; every one pg_restore accepts, it accepts with the rows pg_restore prints.
 * The larger run whose table is in doc/verification.md: npm run bench -- archive-differential.
 */
describe('native archive reader vs pg_restore -f - on mutated real dumps (differential)', () => {
  let db: TestDatabase;
  let results: CaseResult[];
  before(async () => {
    db = await createAwkwardDatabase();
    const fixtures = [
      { name: 'pg_dump -Z0', bytes: await dumpFixture(db.url, 0) },
      { name: 'pg_dump -Z6 (zlib blocks)', bytes: await dumpFixture(db.url, 6) },
    ];
    results = await runDifferential(fixtures, Number(process.env.OPS_DIFFERENTIAL_PER_KIND ?? 60), 20261201);
  });
  after(async () => db?.drop());

  it('no mutation is accepted by one reader and refused by the other, or counted differently', (t) => {
    t.diagnostic(`\n${differentialTable(results)}`);
    const violations = results.filter((r) => r.outcome === 'VIOLATION');
    assert.deepEqual(violations.slice(0, 10), [], `${violations.length} violations`);
  });

  it('where ours is stricter it is only for bytes no pg_dump writes and pg_restore skips unread: after the archive, or a block written twice', () => {
    const stricter = results.filter((r) => r.outcome === 'ours stricter');
    assert.ok(stricter.length > 0, 'appended garbage is refused');
    for (const r of stricter) assert.match(r.detail, /bytes after the end of the archive|second data block for/, r.detail);
    assert.deepEqual([...STRICTER_CODES], ['ARCHIVE_TRAILING_BYTES', 'ARCHIVE_DUPLICATE_BLOCK']);
  });

  it('reordered data blocks are refused by both, as opsctl restore (pg_restore from a pipe) refuses them', () => {
    const reordered = results.filter((r) => r.kind === 'reorder data blocks');
    assert.ok(reordered.length > 0);
    for (const r of reordered) assert.equal(r.outcome, 'both reject', r.detail);
  });

  it('every kind of mutation ran, and both verdicts occurred (a test that cannot fail would not)', () => {
    assert.ok(results.length >= 1000, `${results.length} cases`);
    for (const kind of MUTATION_KINDS) assert.ok(results.some((r) => r.kind === kind), kind);
    assert.ok(results.filter((r) => r.outcome === 'both reject').length > 300);
    assert.ok(results.filter((r) => r.outcome === 'both accept, same rows').length > 50);
  });
});
