import { execFileSync } from 'node:child_process';
import { closeSync, constants, existsSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { decoder } from './codec.js';
import type { StreamCodec } from './manifest.js';
import { TarScanError } from './tar-scan.js';
import { baseTarScan, type BaseTarFacts } from './base-tar-facts.js';
import type { BaseTarWorkerData, BaseTarWorkerResult } from './base-tar-worker.js';
import { startTool } from '../process/tool.js';
import { toolPath } from '../process/tools.js';

export type { BaseTarFacts } from './base-tar-facts.js';

export interface BaseTarReader {
  /** The payload's bytes, as stored (compressed). */
  input: Writable;
  /** Settles once the tar was read to its end (rejected on a decoder or tar failure). */
  facts: Promise<BaseTarFacts>;
  kill(): void;
}

/**
 * A reader of a base backup's compressed tar. Headers are read and members skipped by size
 * (tar-scan.ts, checked against GNU tar): a stream per member (tar-stream) cost more than
 * the decompression of the whole backup.
 *
 * A zstd payload is decoded by the zstd binary into a FIFO that a worker thread reads
 * (base-tar-worker.ts), so the decoded gigabytes never pass the event loop; where that
 * cannot be set up (no mkfifo, no worker file beside this one: another bundle) it is read
 * on the event loop, as every other codec is.
 */
export function baseTarReader(codec: StreamCodec, options: { thread?: boolean; workerFile?: string } = {}): BaseTarReader {
  if (codec === 'zstd' && options.thread !== false) {
    const threaded = threadReader(options.workerFile ?? workerFile());
    if (threaded) return threaded;
  }
  return loopReader(codec);
}

function loopReader(codec: StreamCodec): BaseTarReader {
  const scan = baseTarScan();
  const dec = decoder(codec)!;
  dec.output.on('data', (chunk: Buffer) => scan.push(chunk));
  const ended = new Promise<void>((resolve, reject) => {
    dec.output.once('end', () => (scan.end(), resolve()));
    dec.output.once('error', reject);
  });
  const facts = Promise.all([ended, dec.done, scan.facts]).then(([, , f]) => f);
  facts.catch(() => undefined);
  return { input: dec.input, facts, kill: () => dec.kill() };
}

/** The worker's file beside this module's: .ts from source (tsx), .js in dist/ and in the bundle (scripts/bundle-cli.mjs). */
function workerFile(): string {
  const here = fileURLToPath(import.meta.url);
  return path.join(path.dirname(here), `base-tar-worker${path.extname(here)}`);
}

function threadReader(file: string): BaseTarReader | undefined {
  if (process.platform !== 'linux' || !existsSync(file)) return undefined;
  // A directory of our own (mkdtemp: 0700, a name nobody could guess): the FIFO in it can be
  // neither replaced nor opened by another local user.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ops-base-tar-'));
  const fifo = path.join(dir, 'tar');
  const remove = () => rmSync(dir, { recursive: true, force: true });
  try {
    execFileSync('mkfifo', ['-m', '600', fifo], { stdio: 'ignore' });
  } catch {
    remove();
    return undefined;
  }
  // The shell opens the FIFO for zstd's output: the open waits for the thread's, in the child.
  const tool = startTool('zstd', 'sh', ['-c', 'exec "$0" -d -c -q > "$1"', toolPath('zstd'), fifo], { stdin: 'pipe', stdout: 'ignore' });
  const data: BaseTarWorkerData = { fifo };
  const worker = new Worker(file, { workerData: data });
  let settled = false;
  const read = new Promise<BaseTarWorkerResult>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the tar reading thread exited (${code}) without a result`)));
  }).finally(() => (settled = true));
  // Once zstd is gone (done, failed or killed), a thread still in its open of the FIFO (it
  // waits there for a writer) or in a read would wait forever, and a thread waiting in a
  // system call cannot be terminated. Our own open for writing releases it: the open
  // succeeds once the thread has the FIFO open or is opening it (ENXIO before that: the
  // thread has not got there yet, so again shortly), and our close is its end of file.
  const release = () => {
    if (settled) return;
    try {
      closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENXIO') setTimeout(release, 10);
    }
  };
  tool.done.then(release, release);
  // A thread that stopped reading (it died, or its read failed): the zstd writing into the
  // FIFO must not wait for it forever, nor the backup feeding zstd.
  read.then((r) => !r.ok && !r.drained && tool.kill(), () => tool.kill());
  const facts = (async (): Promise<BaseTarFacts> => {
    try {
      const [thread, decoded] = await Promise.allSettled([read, tool.done]);
      if (thread.status === 'rejected') throw thread.reason;
      const r = thread.value;
      if (r.ok) {
        if (decoded.status === 'rejected') throw decoded.reason;
        return { sizes: r.sizes, texts: r.texts };
      }
      // The first cause: the decoder's failure (a cut or foreign stream, which the tar's
      // reading sees only as a cut tar), unless the thread stopped reading (then zstd was
      // killed for it).
      if (r.drained && decoded.status === 'rejected') throw decoded.reason;
      throw r.name === 'TarScanError' ? new TarScanError(r.message) : new Error(`reading the tar: ${r.message}`);
    } finally {
      remove();
      void worker.terminate();
    }
  })();
  facts.catch(() => undefined);
  return {
    input: tool.child.stdin!,
    facts,
    // zstd's exit releases the thread (above).
    kill: () => tool.kill(),
  };
}
