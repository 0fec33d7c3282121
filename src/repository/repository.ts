import type { Readable } from 'node:stream';

export interface ObjectInfo {
  /** Key relative to the repository root, `/`-separated. */
  key: string;
  size: number;
  lastModified: Date;
}

export interface PutOptions {
  signal?: AbortSignal | undefined;
  sizeHint?: number | undefined;
}

export interface PutResult {
  bytes: number;
}

/**
 * The backup repository: a local directory or an S3 prefix. Writes stream (no whole
 * object in memory, no temporary file) and are atomic from a reader's view: an object
 * is either absent or complete. A failed or aborted `put` leaves nothing behind.
 */
export interface Repository {
  /** Display form, safe to log. */
  readonly url: string;
  /** `sizeHint`: an upper estimate of the size, so S3 can pick parts big enough for 10,000 of them to hold it. */
  put(key: string, body: Readable, options?: PutOptions): Promise<PutResult>;
  putBytes(key: string, body: Buffer | string): Promise<void>;
  /**
   * Create `key` only if no object has that name, atomically (file://: O_EXCL; s3://: a
   * conditional PUT, If-None-Match: *). `false`: another writer has it. How backup ids are
   * reserved, so two runs in the same second never share one.
   */
  createExclusive(key: string, body: Buffer | string | readonly Buffer[]): Promise<boolean>;
  get(key: string, options?: { signal?: AbortSignal }): Promise<Readable>;
  /** `undefined` when absent. For small objects (manifests). */
  getBytes(key: string): Promise<Buffer | undefined>;
  /** Every object under `prefix` (which should end with `/`), in key order. */
  list(prefix: string): Promise<ObjectInfo[]>;
  delete(keys: string[]): Promise<void>;
  /** Remove interrupted writes (multipart uploads, partial files) older than `olderThan`; returns how many. */
  cleanupIncomplete(olderThan: Date): Promise<number>;
  /** Cheap reachability probe for health checks. */
  probe(): Promise<void>;
}
