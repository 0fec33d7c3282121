import { createAwkwardDatabase, differentialTable, majorFixtures, runDifferential } from '../test/helpers/archive-differential.js';

/** The differential run quoted in doc/archive-reader.md: the test suite's four archives, more mutations of each. */
export async function benchArchiveDifferential(): Promise<string> {
  const perKind = Number(process.env.OPS_DIFFERENTIAL_PER_KIND ?? 300);
  const db = await createAwkwardDatabase();
  try {
    const fixtures = await majorFixtures(db.url);
    const started = Date.now();
    const results = await runDifferential(fixtures, perKind, 20261201);
    const hung = results.filter((r) => r.detail.includes('pg_restore hung')).length;
    return [
      `### Native reader vs pg_restore -f - on ${results.length} mutations of four real dumps, each judged by pg_restore of its pg_dump's major (${fixtures.map((f) => `${f.name}: ${f.bytes.length} bytes`).join(', ')}; ${perKind} per random kind; ${((Date.now() - started) / 1000).toFixed(0)} s)\n`,
      differentialTable(results),
      '',
      `- pg_restore hung on ${hung} of them (killed after 3 s, counted as refusing); the native reader refused each at once.`,
    ].join('\n');
  } finally {
    await db.drop();
  }
}
