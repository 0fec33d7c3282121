import { Redis } from 'ioredis';
import { RedisAuthError, RedisConnectionError, isAuthFailure } from './errors.js';

/** An ioredis client that fails fast (no reconnect loop, no offline queue) with our errors. */
export async function openRedis(url: string, db?: number): Promise<Redis> {
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    connectTimeout: 10_000,
    ...(db !== undefined ? { db } : {}),
  });
  // ioredis reports the reason (WRONGPASS, ECONNREFUSED) through 'error'; the rejected
  // connect() only says "Connection is closed".
  let lastError: Error | undefined;
  client.on('error', (e: Error) => (lastError = e));
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    client.disconnect();
    const reason = lastError ?? (error as Error);
    const msg = `${reason.message ?? ''} ${(error as Error).message ?? ''}`;
    if (isAuthFailure(msg)) throw new RedisAuthError(url, reason.message);
    throw new RedisConnectionError(url, reason);
  }
  return client;
}
