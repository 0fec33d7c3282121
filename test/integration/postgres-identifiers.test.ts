import assert from 'node:assert/strict';
import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { postgresConfig, runCli, tempDir, writeConfig } from '../helpers/cli.js';
import { createTestDatabase, query, type TestDatabase } from '../helpers/postgres.js';

// pg_restore --list prints identifiers raw: "TABLE Other Schema my table postgres". A
// verifier that split that line on spaces failed level 2 on legal names, and paged at 04:30.
describe('every legal identifier backs up and verifies; a table with two parents is listed once', () => {
  let db: TestDatabase;
  let work: string;
  const tables = ['"Other Schema"."calls"', 'public."my table"', 'public."таблица"', 'public."a.b"', 'public."we""ird"', 'public."UPPER"', '"Other Schema"."x y z"', 'public."new\nline"'];
  before(async () => {
    db = await createTestDatabase('ops_test_idents');
    work = await tempDir('ops-idents-');
    await query(db.name, `CREATE SCHEMA "Other Schema"; CREATE SCHEMA "a b"; CREATE TABLE "a b"."c" (id int)`);
    for (const [i, t] of tables.entries()) await query(db.name, `CREATE TABLE ${t} (id int); INSERT INTO ${t} SELECT generate_series(1, ${i + 1})`);
    await query(db.name, `CREATE TABLE pa (a int); CREATE TABLE pb (b int); CREATE TABLE child () INHERITS (pa, pb); INSERT INTO child VALUES (1, 2)`);
  });
  after(async () => {
    await db?.drop();
    await rm(work, { recursive: true, force: true });
  });

  it('verify levels 1-3 pass and count every table', async () => {
    const cfg = await writeConfig(work, postgresConfig('idents', db.url, `file://${work}/repo`));
    const b = await runCli(['--config', cfg, 'backup', 'postgres']);
    assert.equal(b.code, 0, b.stderr);
    const dir = path.join(work, 'repo', 'postgres', 'idents');
    const [id] = await readdir(dir);
    const manifest = JSON.parse(await readFile(path.join(dir, id!, 'manifest.json'), 'utf8')) as { tables: { schema: string; name: string; parent: string | null }[] };
    const names = manifest.tables.map((t) => `${t.schema}.${t.name}`);
    assert.equal(names.filter((n) => n === 'public.child').length, 1, 'child of two parents listed once');
    assert.equal(new Set(names).size, names.length, names.join(', '));
    for (const expected of ['Other Schema.calls', 'public.my table', 'public.таблица', 'public.a.b', 'public.we"ird', 'public.UPPER', 'Other Schema.x y z']) assert.ok(names.includes(expected), `${expected} in ${names.join(', ')}`);
    const v = await runCli(['--config', cfg, '--json', 'verify', 'postgres']);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    const verification = (JSON.parse(v.stdout) as { results: { verification: { levelPassed: number; rowCounts: Record<string, number> } }[] }).results[0]!.verification;
    assert.equal(verification.levelPassed, 3);
    assert.equal(Object.keys(verification.rowCounts).length >= tables.length, true, JSON.stringify(verification.rowCounts));
    assert.equal(verification.rowCounts['public."new\nline"'], tables.length, 'rows of the table whose name holds a line break');
    // The table of contents lists "Other Schema".calls before "Other Schema"."x y z" (by name),
    // the record the other way round (by key): the counts are sorted, not taken in the order read.
    const keys = Object.keys(verification.rowCounts);
    assert.deepEqual(keys, [...keys].sort(), 'rowCounts in code-unit order of their keys');
    const stored = JSON.parse(await readFile(path.join(dir, id!, 'verification.json'), 'utf8')) as { rowCounts: Record<string, number> };
    assert.deepEqual(Object.keys(stored.rowCounts), [...keys].sort(), 'and so in verification.json');
  });

  // "TABLE a b c postgres" is what --list prints for ("a b", "c") and for ("a", "b c"):
  // only the table of contents' own fields tell them apart.
  it('level 2 is exact: ("a b", "c") does not stand in for an expected ("a", "b c"), and the readers are seen to disagree', async () => {
    const cfg = await writeConfig(work, {
      ...postgresConfig('idents', db.url, `file://${work}/repo`),
      postgres: [{ name: 'idents', url: db.url, partitions: { tables: [{ table: 'a."b c"' }] } }],
    } as Record<string, unknown>);
    const v = await runCli(['--config', cfg, '--json', 'verify', 'postgres']);
    assert.equal(v.code, 2, v.stdout + v.stderr);
    const verification = (JSON.parse(v.stdout) as { results: { verification: { levelPassed: number; failure: string } }[] }).results[0]!.verification;
    assert.equal(verification.levelPassed, 1);
    assert.match(verification.failure, /the two readers disagree: the table of contents lacks \[a\.b c\], pg_restore --list lacks \[\]/);
  });
});
