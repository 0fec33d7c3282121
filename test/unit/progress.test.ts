import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { stderrProgress } from '../../src/cli/stderr-log.js';

describe('progress on stderr (not a terminal)', () => {
  it('writes its first line after 10 s, then one every 10 s, with the rate since the start', () => {
    mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    const lines: string[] = [];
    const write = mock.method(process.stderr, 'write', (s: string) => (lines.push(s), true));
    const tty = process.stderr.isTTY;
    process.stderr.isTTY = false;
    try {
      const progress = stderrProgress();
      progress('backup redis/main', 65_536);
      mock.timers.tick(9_000);
      progress('backup redis/main', 10 * 1048576);
      assert.deepEqual(lines, [], 'no line for the first chunk or within 10 s');
      mock.timers.tick(1_000);
      progress('backup redis/main', 20 * 1048576);
      mock.timers.tick(5_000);
      progress('backup redis/main', 30 * 1048576);
      assert.deepEqual(lines, ['backup redis/main: 20.0 MiB, 2.0 MiB/s\n']);
    } finally {
      process.stderr.isTTY = tty;
      write.mock.restore();
      mock.timers.reset();
    }
  });
});
