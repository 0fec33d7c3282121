import { Worker } from 'node:worker_threads';

/**
 * Worker threads for the CPU-heavy part of pushing a WAL backlog: the sha256 of each
 * 16 MiB file. On the event loop these run one at a time (1.6 s for 200 segments here);
 * in threads they use every core while zstd compresses.
 */
const WORKER = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const crypto = require('node:crypto');
const buf = Buffer.allocUnsafe(1 << 20);
function hashFile(file) {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  let bytes = 0;
  try {
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; bytes += n) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return { sha256: h.digest('hex'), bytes };
}
parentPort.on('message', (m) => {
  try {
    parentPort.postMessage({ id: m.id, ...hashFile(m.file) });
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: String((e && e.message) || e) });
  }
});`;

interface Reply {
  id: number;
  sha256?: string;
  bytes?: number;
  error?: string;
}

export class HashPool {
  private readonly workers: Worker[];
  private readonly waiting = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private next = 0;

  constructor(size: number) {
    this.workers = Array.from({ length: Math.max(1, size) }, () => {
      const w = new Worker(WORKER, { eval: true });
      w.on('message', (m: Reply) => {
        const p = this.waiting.get(m.id);
        this.waiting.delete(m.id);
        if (m.error !== undefined) p?.reject(new Error(m.error));
        else p?.resolve(m);
      });
      w.on('error', (e) => {
        for (const p of this.waiting.values()) p.reject(e);
        this.waiting.clear();
      });
      return w;
    });
  }

  /** The sha256 and size of a file, read in the thread. */
  hash(file: string): Promise<{ sha256: string; bytes: number }> {
    const id = this.next++;
    return new Promise<Reply>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.workers[id % this.workers.length]!.postMessage({ id, file });
    }).then((r) => ({ sha256: r.sha256!, bytes: r.bytes! }));
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
