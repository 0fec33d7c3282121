import net from 'node:net';
import tls from 'node:tls';
import { maskUrl } from '../util/mask.js';
import { parseRedisUrl } from './endpoint.js';
import { RedisAuthError, RedisBackupError, RedisConnectionError, isAuthFailure } from './errors.js';
import { RespParser, RespReplyError, encodeCommands, type RespArg, type RespValue } from './resp.js';

/** A TCP or TLS socket to the URL's host, connected within `timeoutMs`. */
export function connectSocket(url: string, timeoutMs: number): Promise<net.Socket> {
  const ep = parseRedisUrl(url);
  return new Promise((resolve, reject) => {
    // SNI carries host names only; the certificate is still checked against an address.
    const socket = ep.tls ? tls.connect({ host: ep.host, port: ep.port, ...(net.isIP(ep.host) ? {} : { servername: ep.host }) }) : net.connect({ host: ep.host, port: ep.port });
    const timer = setTimeout(() => socket.destroy(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs);
    socket.once(ep.tls ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (e) => {
      clearTimeout(timer);
      reject(new RedisConnectionError(url, e));
    });
  });
}

export interface RespConnectionOptions {
  /** Database to SELECT; the URL's path otherwise. */
  db?: number;
  connectTimeoutMs?: number;
  /** A pending reply with no byte from the server for this long fails the connection. */
  replyTimeoutMs?: number;
}

/**
 * One pipelined connection, failing fast: no reconnects and no offline queue, so an
 * unreachable or vanished server surfaces as an error instead of a stalled backup.
 */
export class RespConnection {
  private readonly waiting: ((value: RespValue) => void)[] = [];
  private readonly failed: ((error: Error) => void)[] = [];
  private failure: Error | undefined;

  private constructor(
    private readonly socket: net.Socket,
    readonly url: string,
    replyTimeoutMs: number,
  ) {
    const parser = new RespParser((value) => {
      this.failed.shift();
      const next = this.waiting.shift();
      if (next) next(value);
      else this.fail(new RedisBackupError('REDIS_PROTOCOL', `${maskUrl(url)} sent a reply nobody asked for`));
    });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      try {
        parser.feed(chunk);
      } catch (error) {
        this.fail(new RedisBackupError('REDIS_PROTOCOL', `${maskUrl(url)}: ${(error as Error).message}`, { cause: error }));
      }
    });
    socket.on('error', (e) => this.fail(new RedisConnectionError(url, e)));
    socket.on('close', () => this.fail(new RedisBackupError('REDIS_CONNECTION_CLOSED', `${maskUrl(url)} closed the connection`)));
    socket.setTimeout(replyTimeoutMs, () => {
      if (this.waiting.length > 0) this.fail(new RedisBackupError('REDIS_TIMEOUT', `no reply from ${maskUrl(url)} for ${replyTimeoutMs / 1000} s`));
    });
  }

  /** Connects, authenticates (the URL's user and password) and selects the database. */
  static async open(url: string, options: RespConnectionOptions = {}): Promise<RespConnection> {
    const ep = parseRedisUrl(url);
    const socket = await connectSocket(url, options.connectTimeoutMs ?? 10_000);
    const connection = new RespConnection(socket, url, options.replyTimeoutMs ?? 60_000);
    try {
      if (ep.password) await connection.command(ep.username ? ['AUTH', ep.username, ep.password] : ['AUTH', ep.password]);
      const db = options.db ?? ep.db;
      // PING as well: a server that wants a password says NOAUTH to the first command.
      await connection.command(db ? ['SELECT', db] : ['PING']);
    } catch (error) {
      connection.close();
      if (error instanceof RespReplyError && isAuthFailure(error.message)) throw new RedisAuthError(url, error.message);
      throw error;
    }
    return connection;
  }

  /** One command; an error reply rejects. */
  async command(args: readonly RespArg[]): Promise<RespValue> {
    const [reply] = await this.pipeline([args]);
    if (reply instanceof RespReplyError) throw reply;
    return reply ?? null;
  }

  /** Several commands in one write; their replies in order, error replies as values. */
  pipeline(commands: readonly (readonly RespArg[])[]): Promise<RespValue[]> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const replies: RespValue[] = [];
      let rejected = false;
      for (let i = 0; i < commands.length; i += 1) {
        this.waiting.push((value) => {
          replies.push(value);
          if (replies.length === commands.length) resolve(replies);
        });
        this.failed.push((error) => {
          if (!rejected) reject(error);
          rejected = true;
        });
      }
      const buffers = encodeCommands(commands);
      if (buffers.length === 1) this.socket.write(buffers[0]!);
      else {
        this.socket.cork();
        for (const b of buffers) this.socket.write(b);
        process.nextTick(() => this.socket.uncork());
      }
    });
  }

  /** A command's reply as text (INFO, CLUSTER NODES, SCRIPT LOAD). */
  async text(args: readonly RespArg[]): Promise<string> {
    const reply = await this.command(args);
    return Buffer.isBuffer(reply) ? reply.toString('utf8') : String(reply);
  }

  close(): void {
    this.failure ??= new RedisBackupError('REDIS_CONNECTION_CLOSED', 'connection closed by the client');
    this.socket.destroy();
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.socket.destroy();
    this.waiting.length = 0;
    for (const f of this.failed.splice(0)) f(error);
  }
}
