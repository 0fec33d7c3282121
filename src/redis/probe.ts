import { RedisAuthError } from './errors.js';
import { RespConnection } from './resp-connection.js';
import { RespReplyError } from './resp.js';

/**
 * One command on its own connection (AUTH first when the URL has a password), the reply
 * as text: for health and status probes, where a client library with reconnect loops and
 * offline queues would only hide the failure. The whole exchange is bounded by `timeoutMs`.
 */
export async function redisRequest(url: string, args: string[], timeoutMs: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  const exchange = (async () => {
    const connection = await RespConnection.open(url, { connectTimeoutMs: timeoutMs, replyTimeoutMs: timeoutMs, db: 0 });
    try {
      return await connection.text(args);
    } finally {
      connection.close(); // also when the deadline has already answered
    }
  })();
  exchange.catch(() => undefined);
  try {
    return await Promise.race([exchange, deadline]);
  } catch (error) {
    const reply = error instanceof RespReplyError ? error.message : error instanceof RedisAuthError ? error.reply : undefined;
    throw reply ? new Error(`Redis refused: ${reply}`) : error;
  } finally {
    clearTimeout(timer);
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
