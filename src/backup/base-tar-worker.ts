import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { baseTarScan, type BaseTarFacts } from './base-tar-facts.js';

/**
 * The thread of base-tar.ts's FIFO reader: reads a decoded base backup tar from the FIFO
 * `workerData.fifo` with blocking reads into one buffer it keeps, and walks its headers
 * (base-tar-facts.ts). The event loop's way (a Buffer per 64 KiB read of a pipe) left a gigabyte of
 * garbage per gigabyte of database: 41 full collections, 0.56 s of the backup's main thread.
 *
 * It reads to the end whatever happens (a tar that fails the scan included): the zstd
 * writing into the FIFO must never block on a reader that stopped, or the backup would stall.
 */
export interface BaseTarWorkerData {
  fifo: string;
}

/** `drained`: the FIFO was read to its end (its writer is not left waiting on this thread). */
export type BaseTarWorkerResult = ({ ok: true } & BaseTarFacts) | { ok: false; name: string; message: string; drained: boolean };

const { fifo } = workerData as BaseTarWorkerData;
const scan = baseTarScan();
let drained = false;
let result: BaseTarWorkerResult;
try {
  // Blocks until the writer opens its end (or base-tar.ts opens it to release us).
  const fd = openSync(fifo, 'r');
  try {
    const buffer = Buffer.allocUnsafe(1 << 20);
    // A tar that fails the scan is read on all the same (scan.push ignores what follows a failure).
    for (let n; (n = readSync(fd, buffer, 0, buffer.length, null)) > 0; ) scan.push(buffer.subarray(0, n));
    drained = true;
  } finally {
    closeSync(fd);
  }
  scan.end();
  result = { ok: true, ...(await scan.facts) };
} catch (error) {
  const e = error instanceof Error ? error : new Error(String(error));
  result = { ok: false, name: e.name, message: e.message, drained };
}
parentPort!.postMessage(result);
