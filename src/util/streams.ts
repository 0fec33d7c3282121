import { createHash, type Hash } from 'node:crypto';
import { Transform, Writable, type TransformCallback } from 'node:stream';

/** Passes bytes through, computing sha256 and size on the way; reports progress at most once a second, and once at the end. */
/** The sha256 and size of everything `content` yields. */
export async function sha256Of(content: AsyncIterable<Buffer>): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const c of content) {
    h.update(c);
    size += c.length;
  }
  return { sha256: h.digest('hex'), size };
}

export class HashingStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  bytes = 0;
  private lastReport = 0;

  constructor(private readonly onProgress?: (bytes: number) => void) {
    super({ highWaterMark: 1 << 20 });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    if (this.onProgress) {
      const now = Date.now();
      if (now - this.lastReport >= 1000) {
        this.lastReport = now;
        this.onProgress(this.bytes);
      }
    }
    callback(null, chunk);
  }

  /** The last report at the end: progress ends at what was read, not up to a second before it. */
  override _flush(callback: TransformCallback): void {
    if (this.onProgress && this.bytes > 0) this.onProgress(this.bytes);
    callback();
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

/**
 * Holds back the end of a stream until `wait` settles: the last bytes reach the
 * repository only once every producer has exited 0, so a dump whose tool failed is
 * never completed (the write is aborted instead).
 */
export function gateOn(wait: () => Promise<void>): Transform {
  return new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _encoding, callback) {
      callback(null, chunk);
    },
    flush(callback) {
      wait().then(() => callback(), (error: Error) => callback(error));
    },
  });
}

/** Settle all, then fail with the first failure in the given order (the upstream-most tool explains best). */
export async function allInOrder(promises: Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/**
 * Copies one stream into several writables with backpressure. A target that closes
 * early (e.g. `pg_restore --list`, which stops after the table of contents) is dropped
 * instead of failing the others.
 */
export class Tee extends Writable {
  private readonly live: Set<Writable>;

  constructor(targets: Writable[]) {
    super({ highWaterMark: 1 << 20 });
    this.live = new Set(targets);
    for (const target of targets) {
      target.on('error', () => this.live.delete(target));
      target.on('close', () => this.live.delete(target));
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const waits: Promise<void>[] = [];
    for (const target of this.live) {
      if (target.destroyed || target.writableEnded) {
        this.live.delete(target);
        continue;
      }
      if (!target.write(chunk)) waits.push(drained(target));
    }
    if (waits.length === 0) callback();
    else Promise.all(waits).then(() => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    for (const target of this.live) target.end();
    callback();
  }
}

/** A writable that drops what it is given: the end of a pipeline that only hashes. */
export function discard(): Writable {
  return new Writable({ write: (_chunk, _encoding, callback) => callback() });
}

/** Settles when `target` takes writes again, or will never (closed, failed). */
function drained(target: Writable): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      target.off('drain', done);
      target.off('close', done);
      target.off('error', done);
      resolve();
    };
    target.on('drain', done);
    target.on('close', done);
    target.on('error', done);
  });
}

/**
 * Passes bytes through and copies each into `side` with backpressure: a second reader of
 * exactly these bytes (a base backup's tar checked as it is written). A side that fails or
 * closes is dropped, never failing the stream; its owner reads its verdict.
 */
export function tapInto(side: Writable): Transform {
  let live = true;
  const drop = () => (live = false);
  side.on('error', drop);
  side.on('close', drop);
  return new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _encoding, callback) {
      if (!live || side.destroyed || side.writableEnded || side.write(chunk)) return callback(null, chunk);
      drained(side).then(() => callback(null, chunk));
    },
    flush(callback) {
      if (live && !side.destroyed && !side.writableEnded) side.end();
      callback();
    },
  });
}

/**
 * Passes bytes through but holds back the most recent chunk until `check` resolves at
 * the end. A consumer that commits on reaching the end of its input (pg_restore in one
 * transaction) therefore never sees a complete stream whose checksum is wrong.
 */
export function holdLastUntil(check: () => Promise<void>): Transform {
  let held: Buffer | undefined;
  return new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _encoding, callback) {
      const previous = held;
      held = chunk;
      callback(null, previous);
    },
    flush(callback) {
      check().then(
        () => callback(null, held),
        (error: Error) => callback(error),
      );
    },
  });
}
