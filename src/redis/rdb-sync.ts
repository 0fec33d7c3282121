import type net from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';
import { RedisAuthError, RedisBackupError, SyncRefusedError, isAuthFailure } from './errors.js';
import { connectSocket } from './resp-connection.js';
import { parseRedisUrl } from './endpoint.js';
import { encodeCommand } from './resp.js';

const EOF_MARK_LENGTH = 40;

/**
 * Reads the RDB that follows a `$<len>` header (exact length) or a diskless `$EOF:<mark>`
 * header (ends with the 40-byte mark, which is stripped), then ends.
 */
export class RdbPayload extends Transform {
  private remaining: number;
  private tail: Buffer = Buffer.alloc(0);
  complete = false;

  constructor(private readonly mark: Buffer | null, length: number) {
    super({ highWaterMark: 1 << 20 });
    this.remaining = length;
  }

  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    if (this.complete) return cb();
    if (!this.mark) {
      const take = chunk.subarray(0, this.remaining);
      this.remaining -= take.length;
      if (take.length) this.push(take);
      if (this.remaining === 0) this.finishPayload();
      return cb();
    }
    // Hold back the last 40 bytes: they may be the end mark. A chunk of 40 bytes or more
    // holds any mark whole and is passed on as a slice of itself; only a shorter one is
    // joined to the held-back bytes.
    let data = chunk;
    if (chunk.length < EOF_MARK_LENGTH) data = Buffer.concat([this.tail, chunk]);
    else if (this.tail.length) this.push(this.tail);
    this.tail = Buffer.alloc(0);
    const end = data.length - EOF_MARK_LENGTH;
    if (end >= 0 && data.subarray(end).equals(this.mark)) {
      if (end > 0) this.push(data.subarray(0, end));
      this.finishPayload();
      return cb();
    }
    const keep = Math.min(EOF_MARK_LENGTH, data.length);
    if (data.length > keep) this.push(data.subarray(0, data.length - keep));
    this.tail = Buffer.from(data.subarray(data.length - keep));
    cb();
  }

  private finishPayload(): void {
    this.complete = true;
    this.push(null);
    this.emit('payload-complete');
  }

  override _flush(cb: TransformCallback): void {
    if (!this.complete) {
      cb(new RedisBackupError('REDIS_SYNC_TRUNCATED', this.mark ? 'the server closed the connection before the end-of-RDB mark' : `the server closed the connection ${this.remaining} bytes short of the RDB`));
      return;
    }
    cb();
  }
}

/** Lines (RESP simple replies) from a socket, keeping whatever follows them. */
class Replies {
  private buf: Buffer = Buffer.alloc(0);
  private waiting: (() => void) | undefined;
  private failure: Error | undefined;

  constructor(private readonly socket: net.Socket) {
    socket.on('data', this.onData);
    socket.once('error', (e) => this.fail(e));
    socket.once('close', () => this.fail(new RedisBackupError('REDIS_SYNC_CLOSED', 'the server closed the connection during the handshake')));
  }

  private onData = (chunk: Buffer) => {
    this.buf = Buffer.concat([this.buf, chunk]);
    this.waiting?.();
  };

  private fail(e: Error) {
    this.failure ??= e;
    this.waiting?.();
  }

  /** The next line, skipping the bare newlines a master sends as keepalives. */
  async line(): Promise<string> {
    for (;;) {
      while (this.buf[0] === 0x0a) this.buf = this.buf.subarray(1);
      const end = this.buf.indexOf('\r\n');
      if (end >= 0) {
        const line = this.buf.toString('utf8', 0, end);
        this.buf = this.buf.subarray(end + 2);
        return line;
      }
      await this.more();
    }
  }

  /** Wait for the next chunk from the socket, or fail with what ended it. */
  private async more(): Promise<void> {
    if (this.failure) throw this.failure;
    await new Promise<void>((r) => (this.waiting = r));
    this.waiting = undefined;
  }

  /** A RESP bulk string (`$<len>` line, then the bytes). */
  async bulk(): Promise<string> {
    const header = await this.line();
    if (header.startsWith('-')) throw new RedisBackupError('REDIS_ERROR', header.slice(1));
    const len = Number(header.slice(1));
    for (;;) {
      if (this.buf.length >= len + 2) {
        const text = this.buf.toString('utf8', 0, len);
        this.buf = this.buf.subarray(len + 2);
        return text;
      }
      await this.more();
    }
  }

  /** Stop reading lines; the socket's further data belongs to someone else. */
  detach(): Buffer {
    this.socket.off('data', this.onData);
    this.socket.removeAllListeners('close');
    this.socket.removeAllListeners('error');
    return this.buf;
  }
}

export interface RdbSync {
  stream: Transform;
  /** From INFO server, read on the same connection before SYNC. */
  redisVersion: string;
  /** Resolves once the whole RDB was received; rejects on truncation or socket errors. */
  done: Promise<void>;
  stop(): void;
}

/**
 * A point-in-time RDB over the replication protocol, as `redis-cli --rdb` gets it:
 * AUTH, REPLCONF capa eof (diskless transfer allowed) and rdb-only (no command stream
 * afterwards), SYNC; newline keepalives skipped; `$<len>` or `$EOF:<mark>` framing.
 */
export async function syncRdb(url: string, options: { timeoutMs?: number } = {}): Promise<RdbSync> {
  const ep = parseRedisUrl(url);
  const socket = await connectSocket(url, options.timeoutMs ?? 10_000);
  const replies = new Replies(socket);
  try {
    if (ep.password) {
      socket.write(ep.username ? encodeCommand(['AUTH', ep.username, ep.password]) : encodeCommand(['AUTH', ep.password]));
      const r = await replies.line();
      if (r.startsWith('-')) throw new RedisAuthError(url, r.slice(1));
    }
    socket.write(encodeCommand(['INFO', 'server']));
    let info: string;
    try {
      info = await replies.bulk();
    } catch (error) {
      if (isAuthFailure((error as Error).message)) throw new RedisAuthError(url, (error as Error).message);
      throw error;
    }
    const redisVersion = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
    socket.write(encodeCommand(['REPLCONF', 'capa', 'eof', 'capa', 'psync2']));
    await replies.line();
    socket.write(encodeCommand(['REPLCONF', 'rdb-only', '1']));
    await replies.line(); // older servers answer -ERR: they then stream commands after the RDB, which we never read
    socket.write(encodeCommand(['SYNC']));
    const header = await replies.line();
    if (header.startsWith('-')) throw new SyncRefusedError(url, header.slice(1));
    let payload: RdbPayload;
    if (header.startsWith('$EOF:')) payload = new RdbPayload(Buffer.from(header.slice(5)), 0);
    else if (/^\$\d+$/.test(header)) payload = new RdbPayload(null, Number(header.slice(1)));
    else throw new RedisBackupError('REDIS_SYNC_PROTOCOL', `unexpected reply to SYNC: ${header.slice(0, 80)}`);
    const rest = replies.detach();
    const done = new Promise<void>((resolve, reject) => {
      payload.once('payload-complete', () => {
        socket.destroy();
        resolve();
      });
      payload.once('error', reject);
      socket.once('error', (e) => payload.destroy(e));
    });
    done.catch(() => undefined);
    socket.setTimeout(options.timeoutMs ?? 60_000, () => socket.destroy(new RedisBackupError('REDIS_SYNC_TIMEOUT', 'no data from the server for 60 s')));
    if (rest.length) payload.write(rest);
    socket.pipe(payload);
    return { stream: payload, redisVersion, done, stop: () => socket.destroy() };
  } catch (error) {
    socket.destroy();
    throw error;
  }
}
