import { once } from 'node:events';
import { Readable, Writable } from 'node:stream';

/** The parts of a streamx stream (tar-stream 3) that the bridges use. */
interface StreamxWritable {
  write(chunk: Buffer): boolean;
  end(): void;
  destroy(error?: Error): void;
  on(event: string, fn: (...args: unknown[]) => void): unknown;
  once(event: string, fn: (...args: unknown[]) => void): unknown;
}

/** A Node Writable feeding a streamx writable, with its backpressure and errors. */
export function toNodeWritable(target: StreamxWritable): Writable {
  let failure: Error | undefined;
  target.on('error', (e) => (failure ??= e as Error));
  return new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _e, cb) {
      if (failure) return cb(failure);
      if (target.write(chunk)) return cb();
      once(target as never, 'drain').then(() => cb(failure), cb);
    },
    final(cb) {
      if (failure) return cb(failure);
      // streamx emits both 'finish' and 'close' (which one first depends on the stream): answer once.
      let answered = false;
      const answer = () => {
        if (answered) return;
        answered = true;
        cb(failure);
      };
      target.once('finish', answer);
      target.once('close', answer);
      target.end();
    },
    destroy(error, cb) {
      target.destroy(error ?? undefined);
      cb(error);
    },
  });
}

/** A streamx readable as a Node byte stream (it is async-iterable). */
export function toNodeReadable(source: AsyncIterable<Buffer>): Readable {
  return Readable.from(source, { objectMode: false, highWaterMark: 1 << 20 });
}

/** Write a Node stream's bytes into a streamx writable entry and end it. */
export async function copyInto(source: AsyncIterable<Buffer>, target: StreamxWritable): Promise<void> {
  let failure: Error | undefined;
  target.on('error', (e) => (failure ??= e as Error));
  for await (const chunk of source) {
    if (failure) throw failure;
    if (!target.write(chunk)) await once(target as never, 'drain');
  }
  const finished = new Promise<void>((resolve, reject) => {
    target.once('finish', () => (failure ? reject(failure) : resolve()));
    target.once('error', (e) => reject(e as Error));
  });
  target.end();
  await finished;
}
