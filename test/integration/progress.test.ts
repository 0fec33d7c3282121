import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { postgresConfig, runCli, tempDir, writeConfig } from '../helpers/cli.js';
import { createSeedDatabase, createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

/** One progress line (stderr_log.ts): done of total (~ when estimated), percentage, rate, time left. */
const LINE = (task: string, estimated: boolean) => new RegExp(`${task}: [\\d.]+ (B|KiB|MiB) of ${estimated ? '~' : ''}[\\d.]+ (B|KiB|MiB) \\(\\d+%\\), [\\d.]+ (B|KiB|MiB)/s, (${estimated ? '~' : ''}[\\d.]+(ms|s) left|done|about done)`);

/**
 * Long commands as a person watches them (OPS_PROGRESS_INTERVAL_MS=0 prints every update
 * to a pipe, as a terminal would see them rewritten): the same line everywhere.
 */
describe('progress: backup, verify and restore show done of total, percentage, rate and time left', () => {
  let db: TestDatabase;
  let target: TestDatabase;
  let work: string;
  let cfg: string;
  before(async () => {
    [db, target, work] = await Promise.all([createSeedDatabase(20_000), createTestDatabase('ops_test_progress'), tempDir('ops-progress-')]);
    cfg = await writeConfig(work, postgresConfig('db', db.url, `file://${path.join(work, 'repo')}`));
  });
  after(async () => Promise.all([db?.drop(), target?.drop(), work ? rm(work, { recursive: true, force: true }) : undefined]));

  const env = { OPS_PROGRESS_INTERVAL_MS: '0' };

  it("a first backup shows bytes and rate; the next one estimates its total from the previous backup's size (~, time left)", async () => {
    const first = await runCli(['--config', cfg, 'backup', 'postgres'], { env });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /backup postgres\/db: [\d.]+ (B|KiB|MiB), [\d.]+ (B|KiB|MiB)\/s/);
    assert.doesNotMatch(first.stderr, /backup postgres\/db: .* of /, 'no total to show without a previous backup');
    const second = await runCli(['--config', cfg, 'backup', 'postgres'], { env });
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, LINE('backup postgres/db', true));
  });

  it('verify and restore: an exact total, ending at 100 %', async () => {
    const v = await runCli(['--config', cfg, 'verify', 'postgres'], { env });
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stderr, LINE('verify postgres/db', false));
    assert.match(v.stderr, /verify postgres\/db: .* \(100%\), .*, done/);
    const r = await runCli(['--config', cfg, 'restore', 'postgres', 'latest', '--target', target.name, '--confirm', target.name], { env });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stderr, LINE('restore postgres/db', false));
  });
});

describe('progress: drills show the same line while they restore (knowledge)', () => {
  let work: string;
  let cfg: string;
  before(async () => {
    work = await tempDir('ops-progress-drill-');
    const kb = path.join(work, 'kb');
    await mkdir(kb);
    // Incompressible, so the payload is large enough for several progress updates.
    for (let i = 0; i < 8; i += 1) await writeFile(path.join(kb, `doc-${i}.bin`), randomBytes(512 * 1024));
    cfg = await writeConfig(work, { repository: { url: `file://${path.join(work, 'repo')}` }, knowledge: [{ name: 'kb', path: kb }] });
  });
  after(async () => (work ? rm(work, { recursive: true, force: true }) : undefined));

  it('drill knowledge: done of total, percentage, rate, ending at 100 %', async () => {
    const b = await runCli(['--config', cfg, 'backup', 'knowledge'], { env: { OPS_PROGRESS_INTERVAL_MS: '0' } });
    assert.equal(b.code, 0, b.stderr);
    const d = await runCli(['--config', cfg, 'drill', 'knowledge'], { env: { OPS_PROGRESS_INTERVAL_MS: '0' } });
    assert.equal(d.code, 0, d.stdout + d.stderr);
    assert.match(d.stderr, LINE('drill knowledge/kb', false));
    assert.match(d.stderr, /drill knowledge\/kb: .* \(100%\), .*, done/);
  });
});
