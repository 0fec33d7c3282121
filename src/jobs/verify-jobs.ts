import type { FullReader } from '../verify/postgres-verify.js';
import type { JobContext } from './context.js';
import { runVerifications, type VerifyJobResult } from './runner.js';

/*
 * Verification of every component, apart from the backup and restore engines: the verify
 * Lambda imports only this, so its bundle carries no Redis client or tar writer. Each
 * component's verifier loads when it runs: a PostgreSQL verify loaded tar-stream and the
 * RDB checker too (about 5 ms of every nightly verify's start).
 */

export async function verifyPostgresJob(ctx: JobContext, name: string | undefined, idOrLatest = 'latest', fullReader?: FullReader): Promise<VerifyJobResult[]> {
  const { verifyPostgresBackup } = await import('../verify/postgres-verify.js');
  return runVerifications(ctx, 'postgres', ctx.config.postgres, name, idOrLatest, (entry, db) =>
    verifyPostgresBackup(
      entry,
      {
        repo: ctx.repo,
        log: ctx.log,
        env: ctx.env,
        now: ctx.now,
        fullReader,
        signal: ctx.signal,
        onProgress: ctx.progress ? (bytes) => ctx.progress?.(`verify postgres/${db.name}`, bytes, entry.manifest?.payload.bytes) : undefined,
      },
      { extraTables: db.partitions?.tables.map((t) => t.table) ?? [] },
    ),
  );
}

export async function verifyRedisJob(ctx: JobContext, name: string | undefined, idOrLatest = 'latest'): Promise<VerifyJobResult[]> {
  const { verifyRedisBackup } = await import('../verify/redis-verify.js');
  return runVerifications(ctx, 'redis', ctx.config.redis, name, idOrLatest, (entry, r) =>
    verifyRedisBackup(entry, { repo: ctx.repo, log: ctx.log, now: ctx.now, signal: ctx.signal, onProgress: ctx.progress ? (bytes) => ctx.progress?.(`verify redis/${r.name}`, bytes, entry.manifest?.payload.bytes) : undefined }),
  );
}

export async function verifyKnowledgeJob(ctx: JobContext, name: string | undefined, idOrLatest = 'latest'): Promise<VerifyJobResult[]> {
  const { verifyKnowledgeBackup } = await import('../verify/knowledge-verify.js');
  return runVerifications(ctx, 'knowledge', ctx.config.knowledge, name, idOrLatest, (entry, k) =>
    verifyKnowledgeBackup(entry, { repo: ctx.repo, log: ctx.log, now: ctx.now, signal: ctx.signal, onProgress: ctx.progress ? (bytes) => ctx.progress?.(`verify knowledge/${k.name}`, bytes, entry.manifest?.payload.bytes) : undefined }),
  );
}
