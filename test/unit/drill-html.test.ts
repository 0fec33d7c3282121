import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Drill } from '../../src/backup/manifest.js';
import { renderDrillHtml } from '../../src/drill/report-html.js';
import { STATE_COLOURS } from '../../src/status/html.js';

const drill = (ok: boolean): Drill => ({
  formatVersion: 1,
  backupId: '20261204T040000Z',
  component: 'postgres',
  name: 'main',
  drilledAt: '2026-12-04T05:00:00.000Z',
  ok,
  scratchDatabase: 'ops_drill_x',
  restoreSeconds: 3,
  compared: 3,
  mismatches: [],
  ...(ok ? {} : { failure: '1 tables differ, e.g. public.calls: expected 10, got 9' }),
});

describe('drill page', () => {
  it('a failed drill says FAILED, as the CLI does (not DOWN), in red, and links drill-failed.md at the configured runbooks', () => {
    const page = renderDrillHtml({ finishedAt: '2026-12-04T05:00:00Z', ok: false, rtoSeconds: 3, rpoSeconds: 3600, drills: [drill(false)], runbooks: 'https://git.example.com/ops/doc/runbooks/' });
    assert.match(page, new RegExp(`id="state" style="background:${STATE_COLOURS.DOWN}">FAILED<`));
    assert.doesNotMatch(page, />DOWN</);
    assert.match(page, /expected 10, got 9 <a href="https:\/\/git\.example\.com\/ops\/doc\/runbooks\/drill-failed\.md">runbook<\/a>/);
  });

  it('a passed drill: OK, no runbook link', () => {
    const page = renderDrillHtml({ finishedAt: '2026-12-04T05:00:00Z', ok: true, rtoSeconds: 3, rpoSeconds: 3600, drills: [drill(true)], runbooks: 'https://git.example.com/ops/doc/runbooks/' });
    assert.match(page, new RegExp(`id="state" style="background:${STATE_COLOURS.OK}">OK<`));
    assert.doesNotMatch(page, /runbook/);
  });
});
