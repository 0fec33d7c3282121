import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  createAwkwardDatabase,
  differentialTable,
  majorFixtures,
  MUTATION_KINDS,
  pgRestoreVerdict,
  readerVerdict,
  runCollect,
  runDifferential,
  STRICTER_CODES,
  type CaseResult,
} from '../helpers/archive-differential.js';
import { pgMajorBindirs } from '../helpers/pg-majors.js';
import type { TestDatabase } from '../helpers/postgres.js';

/*
 * The native reader must be as strict as pg_restore: every mutation pg_restore refuses,
 * it refuses; every one pg_restore accepts, it accepts with the rows pg_restore prints.
 * The larger run whose table is in doc/verification.md: npm run bench -- archive-differential.
 */
describe('native archive reader vs pg_restore -f - on mutated real dumps (differential)', () => {
  let db: TestDatabase;
  let results: CaseResult[];
  let dump18: Buffer;
  before(async () => {
    db = await createAwkwardDatabase();
    const fixtures = await majorFixtures(db.url);
    dump18 = fixtures.find((f) => f.name === 'pg_dump 18 gzip:6')!.bytes;
    results = await runDifferential(fixtures, Number(process.env.OPS_DIFFERENTIAL_PER_KIND ?? 60), 20261201);
  });
  after(async () => db?.drop());

  it('no mutation is accepted by one reader and refused by the other, or counted differently', (t) => {
    t.diagnostic(`\n${differentialTable(results)}`);
    const violations = results.filter((r) => r.outcome === 'VIOLATION');
    assert.deepEqual(violations.slice(0, 10), [], `${violations.length} violations`);
  });

  it('where ours is stricter it is only for bytes no pg_dump writes and pg_restore skips unread: after the archive, a block written twice, a dependency that is no number', () => {
    const stricter = results.filter((r) => r.outcome === 'ours stricter');
    assert.ok(stricter.length > 0, 'appended garbage is refused');
    for (const r of stricter) assert.match(r.detail, /bytes after the end of the archive|second data block for|dependency ID ".*" out of range/, r.detail);
    assert.deepEqual([...STRICTER_CODES], ['ARCHIVE_TRAILING_BYTES', 'ARCHIVE_DUPLICATE_BLOCK', 'ARCHIVE_BAD_DEPENDENCY']);
  });

  it('the oracle reads with restore\'s options: an entry type no pg_restore knows is refused only when owners are set, which restore never asks (CI met it as a flipped byte)', async () => {
    const pgRestore18 = path.join(pgMajorBindirs()[18]!, 'pg_restore');
    // An entry's desc field: sign byte, length 10 as 4 bytes LSB first, then the text.
    const at = dump18.indexOf(Buffer.concat([Buffer.from([0, 10, 0, 0, 0]), Buffer.from('CONSTRAINT')]));
    assert.ok(at > 0, 'the dump has a constraint entry');
    const mutated = Buffer.from(dump18);
    mutated[at + 5 + 3] = 0x05;
    const owners = await runCollect(pgRestore18, ['--file=-'], mutated, 10_000);
    assert.notEqual(owners.code, 0);
    assert.match(owners.stderr, /don't know how to set owner for object type "CON\x05TRAINT"/);
    const oracle = await pgRestoreVerdict(mutated, pgRestore18);
    assert.equal(oracle.ok, true, oracle.detail);
    const ours = await readerVerdict(mutated);
    assert.equal(ours.ok, true, ours.detail);
    assert.deepEqual([...ours.counts].sort(), [...oracle.counts].sort());
  });

  it('reordered data blocks are refused by both, as opsctl restore (pg_restore from a pipe) refuses them', () => {
    const reordered = results.filter((r) => r.kind === 'reorder data blocks');
    assert.ok(reordered.length > 0);
    for (const r of reordered) assert.equal(r.outcome, 'both reject', r.detail);
  });

  it('every kind of mutation ran, and both verdicts occurred (a test that cannot fail would not)', () => {
    assert.ok(results.length >= 2000, `${results.length} cases`);
    for (const f of ['pg_dump 17 -Z0', 'pg_dump 18 gzip:6']) assert.ok(results.filter((r) => r.fixture === f && r.outcome === 'both accept, same rows').length > 10, f);
    for (const kind of MUTATION_KINDS) assert.ok(results.some((r) => r.kind === kind), kind);
    assert.ok(results.filter((r) => r.outcome === 'both reject').length > 300);
    assert.ok(results.filter((r) => r.outcome === 'both accept, same rows').length > 50);
  });
});
