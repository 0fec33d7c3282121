import * as zlib from 'node:zlib';
import { createGunzip, createGzip } from 'node:zlib';
import { Transform, type Readable, type Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { runTool, startTool } from '../process/tool.js';
import { toolPath } from '../process/tools.js';
import type { StreamCodec } from './manifest.js';

/**
 * One step of a streaming pipeline: write into `input`, read from `output`; `done`
 * rejects if it failed. A stage built with `from` (a child's stdout) reads it at the OS
 * level and has no `input`: the bytes never pass through JavaScript.
 */
export interface CodecStage {
  input: Writable | null;
  output: Readable;
  done: Promise<void>;
  kill(): void;
  /** True when `output` is a child's stdout, which the next process can take over at the OS level. */
  processOutput?: boolean;
}

/** A child process's stdout: its file descriptor can be handed to the next process directly. */
export type ProcessOutput = Readable & { readonly _handle?: unknown };

export interface EncodeOptions {
  level?: number | undefined;
  threads?: number | undefined;
}

/** A compressor for the whole stream; `null` for `none`. */
export function encoder(codec: StreamCodec, options: EncodeOptions = {}, from?: ProcessOutput): CodecStage | null {
  switch (codec) {
    case 'none':
      return null;
    case 'gzip': {
      const z = createGzip({ level: options.level ?? 6 });
      if (from) from.pipe(z);
      return { input: from ? null : z, output: z, done: finished(z), kill: () => z.destroy() };
    }
    case 'zstd': {
      const tool = startTool('zstd', toolPath('zstd'), ['-c', '-q', `-${options.level ?? 1}`, `-T${options.threads ?? 2}`], { stdin: from ?? 'pipe' });
      return { input: from ? null : tool.child.stdin!, output: tool.child.stdout!, done: tool.done, kill: () => tool.kill() };
    }
  }
}

type ZstdFactory = () => import('node:stream').Transform;

/**
 * Output chunks of the in-process decoder: zlib's default of 16 KiB meant 2,233 callbacks,
 * each through every stream after it, for a 36 MB table of contents; 256 KiB decoded the
 * same in 36-145 ms instead of 144-238 (Node 24, this machine).
 */
const ZSTD_CHUNK = 256 << 10;

/**
 * Node's own zstd (node:zlib from 22.15 and 23.8; Lambda's nodejs24.x has it): where
 * present, a zstd payload is decoded in-process and needs no binary. Node 20 has none.
 */
export function inProcessZstd(): ZstdFactory | undefined {
  const factory = (zlib as unknown as { createZstdDecompress?: (options: { chunkSize: number }) => import('node:stream').Transform }).createZstdDecompress;
  return typeof factory === 'function' ? () => factory({ chunkSize: ZSTD_CHUNK }) : undefined;
}

/**
 * A decompressor; write into `input` (never null here). `inProcess` prefers Node's own
 * zstd when it has one (its bytes pass through JavaScript anyway, e.g. into the archive
 * reader); otherwise the zstd binary runs beside.
 */
export function decoder(codec: StreamCodec, options: { inProcess?: boolean } = {}): (CodecStage & { input: Writable }) | null {
  switch (codec) {
    case 'none':
      return null;
    case 'gzip': {
      const z = createGunzip();
      return { input: z, output: z, done: finished(z), kill: () => z.destroy() };
    }
    case 'zstd': {
      const own = options.inProcess ? inProcessZstd() : undefined;
      if (own) {
        // Node's decoder stops at the end of the last frame and drops what follows it; the
        // zstd binary (what restore runs) refuses it. So do we: every byte fed must be consumed.
        const z = own() as Transform & { bytesWritten: number };
        let fed = 0;
        const input = new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            fed += chunk.length;
            callback(null, chunk);
          },
        });
        input.on('error', (error) => z.destroy(error));
        // A decoder that fails must fail its input too: left open, it would take writes with
        // nobody reading them, and a tee feeding it (verify's) would stall every other branch.
        z.on('error', (error) => input.destroy(error));
        input.pipe(z);
        const done = finished(z).then(() => {
          if (z.bytesWritten !== fed) throw new Error(`${fed - z.bytesWritten} bytes after the end of the zstd stream (unsupported format)`);
        });
        return { input, output: z, done, kill: () => (input.destroy(), z.destroy()) };
      }
      const tool = startTool('zstd', toolPath('zstd'), ['-d', '-c', '-q'], { stdin: 'pipe' });
      return { input: tool.child.stdin!, output: tool.child.stdout!, done: tool.done, kill: () => tool.kill(), processOutput: true };
    }
  }
}

export function codecSuffix(codec: StreamCodec): string {
  return codec === 'zstd' ? '.zst' : codec === 'gzip' ? '.gz' : '';
}

export async function zstdVersion(): Promise<string> {
  const out = await runTool('zstd', toolPath('zstd'), ['--version']);
  return /v(\d+\.\d+\.\d+)/.exec(out)?.[1] ?? out.trim();
}
