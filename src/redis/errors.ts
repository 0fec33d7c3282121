import { OpsError } from '../errors.js';
import { maskUrl } from '../util/mask.js';

export class RedisBackupError extends OpsError {
  constructor(code: string, message: string, options: { context?: Record<string, unknown>; cause?: unknown; exitCode?: 2 | 64 } = {}) {
    super(code, message, options);
    this.name = 'RedisBackupError';
  }
}

export class RedisConnectionError extends RedisBackupError {
  constructor(url: string, cause: unknown) {
    const code = (cause as { code?: string })?.code;
    const hint = code === 'ECONNREFUSED' ? ' (nothing listens there: check host, port and that Redis runs)' : '';
    super('REDIS_CONNECT_FAILED', `cannot connect to ${maskUrl(url)}: ${(cause as Error)?.message ?? cause}${hint}`, { context: { url: maskUrl(url) }, cause });
    this.name = 'RedisConnectionError';
  }
}

export class RedisAuthError extends RedisBackupError {
  constructor(url: string, readonly reply: string) {
    super('REDIS_AUTH_FAILED', `Redis at ${maskUrl(url)} refused the credentials (${reply}): check the password in REDIS_URL or the secret`, { context: { url: maskUrl(url) } });
    this.name = 'RedisAuthError';
  }
}

/** Managed services (ElastiCache, MemoryDB) and hardened servers refuse SYNC. */
export class SyncRefusedError extends RedisBackupError {
  constructor(url: string, reply: string) {
    super('REDIS_SYNC_REFUSED', `Redis at ${maskUrl(url)} refused SYNC (${reply}): set "mode": "logical" for this instance (SCAN + DUMP, works on ElastiCache/MemoryDB)`, {
      context: { url: maskUrl(url), reply },
    });
    this.name = 'SyncRefusedError';
  }
}

/** Whether a Redis error reply means the credentials were missing or wrong. */
export function isAuthFailure(message: string): boolean {
  return /NOAUTH|WRONGPASS|invalid password|invalid username-password/i.test(message);
}
