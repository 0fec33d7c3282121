import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { PNG } from 'pngjs';
import { STATE_COLOURS } from '../../src/status/html.js';
import { ROOT, runCli, tempDir, writeConfig } from '../helpers/cli.js';
import { createSeedDatabase, type TestDatabase } from '../helpers/postgres.js';

const CHROMIUM = process.env.OPS_TEST_CHROMIUM ?? '/usr/bin/chromium';

/** Headless Chromium (Debian's) renders the page; the screenshot is read back pixel by pixel. */
function screenshot(htmlFile: string, pngFile: string, profile: string): PNG {
  const r = spawnSync(
    CHROMIUM,
    ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, '--window-size=1000,700', `--screenshot=${pngFile}`, `file://${htmlFile}`],
    { encoding: 'utf8', timeout: 60_000 },
  );
  assert.equal(r.status, 0, `chromium failed: ${r.stderr}`);
  return PNG.sync.read(readFileSync(pngFile));
}

function hex(png: PNG, x: number, y: number): string {
  const i = (png.width * y + x) * 4;
  return `#${[png.data[i]!, png.data[i + 1]!, png.data[i + 2]!].map((v) => v.toString(16).padStart(2, '0')).join('')}`;
}

/** Share of the screenshot's pixels in a colour: the banner and the per-check cells. */
function share(png: PNG, colour: string): number {
  let n = 0;
  for (let y = 0; y < png.height; y += 2) for (let x = 0; x < png.width; x += 2) if (hex(png, x, y) === colour) n += 1;
  return n / ((png.width / 2) * (png.height / 2));
}

describe('status page in headless Chromium: green, yellow, red', () => {
  let db: TestDatabase;
  let work: string;
  let cfg: string;

  before(async () => {
    [db, work] = await Promise.all([createSeedDatabase(200), tempDir()]);
    cfg = await writeConfig(work, { repository: { url: `file://${path.join(work, 'repo')}` }, postgres: [{ name: 'callcenter', url: db.url }] });
  });
  after(async () => Promise.all([db.drop(), rm(work, { recursive: true, force: true })]));

  const page = async (state: 'OK' | 'DEGRADED' | 'DOWN', expectedExit: number) => {
    const html = path.join(work, `status-${state}.html`);
    const r = await runCli(['--config', cfg, 'status', '--html', html]);
    assert.equal(r.code, expectedExit, r.stdout + r.stderr);
    const text = await readFile(html, 'utf8');
    assert.match(text, new RegExp(`id="state" style="background:${STATE_COLOURS[state]}">${state}<`));
    const png = screenshot(html, path.join(work, `status-${state}.png`), path.join(work, `profile-${state}`));
    assert.equal(hex(png, 10, 10), STATE_COLOURS[state], 'the banner is painted in the state colour');
    // The banner spans the page: a row through it is the state colour from edge to edge (text aside).
    const row = Array.from({ length: png.width }, (_, x) => hex(png, x, 6));
    assert.ok(row.filter((c) => c === STATE_COLOURS[state]).length > png.width * 0.95, 'banner row in the state colour');
    assert.ok(share(png, STATE_COLOURS[state]) > 0.02, 'banner and cells visible');
    return text;
  };

  it('DOWN (no backup yet): red, naming the missing backup with its runbook, linked absolutely (the page is written outside the checkout, and the link still opens the runbook)', async () => {
    const text = await page('DOWN', 2);
    const href = /no complete backup in the repository <a href="([^"]+)">runbook<\/a>/.exec(text)?.[1];
    assert.equal(href, pathToFileURL(path.join(ROOT, 'doc', 'runbooks', 'postgres-backup-stale.md')).href);
    assert.match(readFileSync(fileURLToPath(href), 'utf8'), /^# PostgresBackupStale/);
    // Published elsewhere (the team's wiki, the repository's web view): one setting.
    await mkdir(path.join(work, 'published'), { recursive: true });
    const published = await writeConfig(path.join(work, 'published'), { repository: { url: `file://${path.join(work, 'repo')}` }, postgres: [{ name: 'callcenter', url: db.url }], alerts: { runbookBaseUrl: 'https://git.example.com/ops/doc/runbooks' } });
    const html = path.join(work, 'published.html');
    assert.equal((await runCli(['--config', published, 'status', '--html', html])).code, 2);
    assert.match(await readFile(html, 'utf8'), /<a href="https:\/\/git\.example\.com\/ops\/doc\/runbooks\/postgres-backup-stale\.md">runbook<\/a>/);
  });

  it('DEGRADED (newest backup not verified): yellow', async () => {
    assert.equal((await runCli(['--config', cfg, 'backup', 'postgres'])).code, 0);
    const text = await page('DEGRADED', 1);
    assert.match(text, /not yet/);
  });

  it('OK (verified): green, with size and verification level', async () => {
    assert.equal((await runCli(['--config', cfg, 'verify', 'postgres'])).code, 0);
    const text = await page('OK', 0);
    assert.match(text, /<td>level 3<\/td>/);
    assert.match(text, /\d+(\.\d+)? (KiB|MiB)/);
  });
});
