import net from 'node:net';
import tls from 'node:tls';
import { parseRedisUrl, resp } from './endpoint.js';

/**
 * One command on a plain socket (AUTH first when the URL has a password), returning the
 * reply of a simple or bulk string: for health and status probes, where a client library
 * with reconnect loops and offline queues would only hide the failure.
 */
export function redisRequest(url: string, args: string[], timeoutMs: number): Promise<string> {
  const ep = parseRedisUrl(url);
  return new Promise((resolve, reject) => {
    const socket = ep.tls ? tls.connect({ host: ep.host, port: ep.port, servername: ep.host }) : net.connect({ host: ep.host, port: ep.port });
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    let buffer = Buffer.alloc(0);
    let authPending = Boolean(ep.password);
    let settled = false;
    const done = (error: Error | null, value?: string) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (error) reject(error);
      else resolve(value ?? '');
    };
    socket.on('error', (error) => done(error));
    socket.on('close', () => done(new Error('connection closed before a reply')));
    socket.on(ep.tls ? 'secureConnect' : 'connect', () => {
      const auth = ep.password ? (ep.username ? resp('AUTH', ep.username, ep.password) : resp('AUTH', ep.password)) : Buffer.alloc(0);
      socket.write(Buffer.concat([auth, resp(...args)]));
    });
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const reply = parseReply(buffer);
        if (!reply) return;
        buffer = buffer.subarray(reply.length);
        if (reply.error) return done(new Error(`Redis refused: ${reply.error}`));
        if (authPending) {
          authPending = false;
          continue;
        }
        return done(null, reply.value);
      }
    });
  });
}

function parseReply(b: Buffer): { value?: string; error?: string; length: number } | undefined {
  const eol = b.indexOf('\r\n');
  if (eol < 0) return undefined;
  const head = b.toString('latin1', 1, eol);
  switch (b[0]) {
    case 0x2b: // +simple
      return { value: head, length: eol + 2 };
    case 0x2d: // -error
      return { error: head, length: eol + 2 };
    case 0x3a: // :integer
      return { value: head, length: eol + 2 };
    case 0x24: {
      // $bulk
      const n = Number(head);
      if (n < 0) return { value: '', length: eol + 2 };
      if (b.length < eol + 2 + n + 2) return undefined;
      return { value: b.toString('utf8', eol + 2, eol + 2 + n), length: eol + 2 + n + 2 };
    }
    default:
      return { error: `unexpected reply type ${String.fromCharCode(b[0] ?? 0)}`, length: b.length };
  }
}

/** `INFO` text as a flat record. */
export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}
