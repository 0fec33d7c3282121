import { Worker } from 'node:worker_threads';

/**
 * Worker threads for the CPU-heavy part of pushing a WAL backlog. Where Node has zstd (24+),
 * a thread encodes a whole file: it reads the 16 MiB once into a buffer it keeps, takes the
 * sha256 and compresses it (level 1) where it is, and hands back only the compressed frame.
 * Done on the event loop with streams, the same work read each file twice (once for the
 * hash, once for zstd), passed it in 1 MiB chunks through the thread pool and held four
 * zstd contexts and four hashing threads: 14.6 segments/s and 192 MiB on this 2-core machine
 * (doc/performance.md). Where Node has no zstd, a thread takes only the sha256 and the
 * binary compresses (batch.ts).
 */
const WORKER = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const crypto = require('node:crypto');
const zlib = require('node:zlib');
let buf = Buffer.allocUnsafe(1 << 20);
// object.ts identityOf, again: this source runs in the thread and imports nothing of ours.
const identity = (st) => st.ino + ' ' + st.size + ' ' + st.mtimeNs + ' ' + st.ctimeNs;
function readWhole(file) {
  const fd = fs.openSync(file, 'r');
  try {
    const st = fs.fstatSync(fd, { bigint: true });
    const size = Number(st.size);
    if (buf.length < size) buf = Buffer.allocUnsafe(size);
    let read = 0;
    for (let n; read < size && (n = fs.readSync(fd, buf, read, size - read, read)) > 0; ) read += n;
    if (read !== size) throw new Error(file + ' changed while it was being archived (' + read + ' of ' + size + ' bytes read)');
    return { content: buf.subarray(0, size), before: identity(st) };
  } finally {
    fs.closeSync(fd);
  }
}
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
function encodeFile(file) {
  const { content, before } = readWhole(file);
  const sha256 = crypto.createHash('sha256').update(content).digest('hex');
  const out = zlib.zstdCompressSync(content, { params: { [zlib.constants.ZSTD_c_compressionLevel]: 1 }, chunkSize: Math.max(64 << 10, Math.min(8 << 20, content.length)) });
  // The file must not have changed between the stat before the read and now (PostgreSQL never
  // rewrites a file it handed to archive_command; this is the proof).
  if (identity(fs.statSync(file, { bigint: true })) !== before) throw new Error(file + ' changed while it was being archived');
  // Handed over, not copied: the output has an ArrayBuffer of its own (a chunk of at least
  // 64 KiB, never Node's shared pool), so it moves to the main thread and leaves no garbage
  // here. A copy for every 6 MB frame cost 5-9 ms of CPU per segment and 160 MiB more peak RSS.
  const frame = out.byteOffset === 0 ? new Uint8Array(out.buffer, 0, out.length) : new Uint8Array(out);
  const head = new Uint8Array(Math.min(40, content.length));
  head.set(content.subarray(0, head.length));
  return { value: { sha256, bytes: content.length, head, frame }, transfer: [frame.buffer] };
}
parentPort.on('message', (m) => {
  try {
    if (m.op === 'encode') {
      const { value, transfer } = encodeFile(m.file);
      parentPort.postMessage({ id: m.id, ...value }, transfer);
    } else parentPort.postMessage({ id: m.id, ...hashFile(m.file) });
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: String((e && e.message) || e) });
  }
});`;

interface Reply {
  id: number;
  sha256?: string;
  bytes?: number;
  head?: Uint8Array;
  frame?: Uint8Array;
  error?: string;
}

export interface EncodedFile {
  sha256: string;
  bytes: number;
  /** The file's first bytes (up to 40: a segment's long page header, for its system identifier). */
  head: Buffer;
  /** One zstd frame of the whole file, level 1. */
  frame: Buffer;
}

interface Slot {
  worker: Worker;
  pending: number;
}

export class EncodePool {
  private readonly slots: Slot[] = [];
  private readonly waiting = new Map<number, { slot: Slot; resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private next = 0;

  /**
   * At most `size` threads, each started when the work first needs it: a thread is an
   * isolate of its own (about 95 ms of CPU to start here), and the resident pusher, which
   * PostgreSQL hands one file at a time, seldom needs more than one.
   */
  private readonly size: number;

  constructor(size: number) {
    this.size = Math.max(1, size);
  }

  private start(): Slot {
    const slot: Slot = { worker: new Worker(WORKER, { eval: true }), pending: 0 };
    slot.worker.on('message', (m: Reply) => {
      const p = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      slot.pending -= 1;
      if (m.error !== undefined) p?.reject(new Error(m.error));
      else p?.resolve(m);
    });
    // A thread that died is dropped, its files failed, and the next file starts another: the
    // resident pusher lives for hours, and a file sent to a dead thread would never answer.
    const lost = (e: Error) => {
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      for (const [id, p] of this.waiting) {
        if (p.slot !== slot) continue;
        this.waiting.delete(id);
        p.reject(e);
      }
      slot.pending = 0;
    };
    slot.worker.on('error', lost);
    slot.worker.on('exit', (code) => lost(new Error(`the encoding thread ended (exit code ${code})`)));
    this.slots.push(slot);
    return slot;
  }

  /** Threads started so far. */
  get threads(): number {
    return this.slots.length;
  }

  /** The sha256 and size of a file, read in a thread. */
  async hash(file: string): Promise<{ sha256: string; bytes: number }> {
    const r = await this.send('hash', file);
    return { sha256: r.sha256!, bytes: r.bytes! };
  }

  /** The file read once, hashed and compressed in a thread (Node 24+: zlib's zstd). */
  async encode(file: string): Promise<EncodedFile> {
    const r = await this.send('encode', file);
    const view = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
    return { sha256: r.sha256!, bytes: r.bytes!, head: view(r.head!), frame: view(r.frame!) };
  }

  /** To an idle thread, else a new one while there are fewer than `size`, else the one with the least to do (files differ in cost; round-robin would queue behind a slow one). */
  private send(op: 'hash' | 'encode', file: string): Promise<Reply> {
    const id = this.next++;
    const least = this.slots.reduce<Slot | undefined>((a, b) => (a === undefined || b.pending < a.pending ? b : a), undefined);
    const slot = least && (least.pending === 0 || this.slots.length >= this.size) ? least : this.start();
    slot.pending += 1;
    return new Promise<Reply>((resolve, reject) => {
      this.waiting.set(id, { slot, resolve, reject });
      slot.worker.postMessage({ id, op, file });
    });
  }

  async close(): Promise<void> {
    await Promise.all([...this.slots].map((s) => s.worker.terminate()));
  }
}
