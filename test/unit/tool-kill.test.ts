import assert from 'node:assert/strict';
import { PassThrough, pipeline } from 'node:stream';
import { describe, it } from 'node:test';
import { startTool } from '../../src/process/tool.js';
import { ToolFailedError } from '../../src/process/errors.js';

// A killed tool's `done` must settle even when its stdout is piped into a consumer that has
// stopped reading (a backup's upload aborted by SIGTERM: the body is no longer read). Node
// resumes a child's stdout when the child exits; the full consumer pauses it again; without
// the stream destroyed, 'close' never came and the cleanup waited for the 90 s backstop.

describe('a killed tool', () => {
  it('settles `done` while its stdout is piped into a consumer nobody reads', async () => {
    // Output that does not compress, more than the pipes and buffers between hold.
    const noise = Buffer.alloc(16 << 20);
    for (let i = 0; i < noise.length; i += 1) noise[i] = ((i * 2654435761) >>> 24) ^ (i >> 7);
    const tool = startTool('zstd', 'zstd', ['-c', '-q', '-1'], { stdin: 'pipe' });
    tool.child.stdin!.on('error', () => undefined);
    tool.child.stdin!.write(noise);
    const stalled = new PassThrough({ highWaterMark: 1 << 20 });
    pipeline(tool.child.stdout!, stalled, () => undefined);
    // Until the consumer is full and the tool's stdout holds output of its own, paused: the
    // state of a backed-up encoder, in which the kill used to leave `done` pending for good.
    const stdout = tool.child.stdout!;
    // In about 1 run in 10 here the consumer fills and then nothing more arrives in stdout
    // (the loop waited forever: a hung suite). Then, 2 s after the consumer is full, the kill
    // goes ahead from that state: its `done` must settle all the same.
    let fullSince: number | undefined;
    for (;;) {
      if (stalled.readableLength >= 1 << 20) fullSince ??= Date.now();
      if (fullSince !== undefined && ((stdout.readableLength > 0 && stdout.readableFlowing === false) || Date.now() - fullSince > 2_000)) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    tool.kill();
    const outcome = await Promise.race([
      tool.done.then(
        () => 'exited 0',
        (error: unknown) => error,
      ),
      new Promise((r) => setTimeout(() => r('still waiting after 5 s'), 5_000)),
    ]);
    assert.ok(outcome instanceof ToolFailedError, String(outcome));
    assert.match(outcome.message, /killed by SIGTERM/);
  });
});
