import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { progressText } from '../../src/cli/stderr-log.js';

const MiB = 1 << 20;

describe('progress line: done of total, percentage, rate, time left, the same for every long command', () => {
  it('a known total: exact percentage and time left', () => {
    assert.equal(progressText('verify postgres/db', 16 * MiB, 2, 64 * MiB), 'verify postgres/db: 16.0 MiB of 64.0 MiB (25%), 8.0 MiB/s, 6.0s left');
    assert.equal(progressText('restore postgres/db', 64 * MiB, 8, 64 * MiB), 'restore postgres/db: 64.0 MiB of 64.0 MiB (100%), 8.0 MiB/s, done');
  });

  it("an estimated total (a backup: its previous one's size): marked ~, never 100 % before the end, even past the estimate", () => {
    assert.equal(progressText('backup postgres/db', 32 * MiB, 4, 64 * MiB, true), 'backup postgres/db: 32.0 MiB of ~64.0 MiB (50%), 8.0 MiB/s, ~4.0s left');
    assert.equal(progressText('backup postgres/db', 70 * MiB, 7, 64 * MiB, true), 'backup postgres/db: 70.0 MiB of ~64.0 MiB (99%), 10.0 MiB/s, about done');
  });

  it('no total (a first backup): bytes and rate', () => {
    assert.equal(progressText('backup redis/cache', 3 * MiB, 1), 'backup redis/cache: 3.0 MiB, 3.0 MiB/s');
  });
});
