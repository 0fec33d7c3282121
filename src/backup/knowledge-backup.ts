import { stat } from 'node:fs/promises';
import type { Log } from '../log.js';
import type { Repository } from '../repository/repository.js';
import { zstdVersion } from './codec.js';
import { writeBackup, writtenManifest } from './engine.js';
import type { Manifest } from './manifest.js';
import { packTree, type FileRecord } from '../knowledge/archive.js';
import { walkDirectory, walkS3Prefix } from '../knowledge/walk.js';
import { OpsError } from '../errors.js';

export const KNOWLEDGE_PAYLOAD = 'knowledge.tar';

/** A directory (EFS in AWS) or an S3 prefix as one compressed tar; the manifest lists every file with its sha256. */
export async function backupKnowledge(
  target: { name: string; path: string },
  deps: { repo: Repository; log: Log; now?: () => Date; signal?: AbortSignal | undefined; onProgress?: ((b: number) => void) | undefined; config?: Record<string, unknown> | undefined },
): Promise<Manifest> {
  const fromS3 = target.path.startsWith('s3://');
  if (!fromS3) {
    const st = await stat(target.path).catch((e: NodeJS.ErrnoException) => {
      throw new OpsError('KNOWLEDGE_SOURCE_MISSING', `knowledge source ${target.path} is not readable: ${e.code}`, { cause: e });
    });
    if (!st.isDirectory()) throw new OpsError('KNOWLEDGE_SOURCE_MISSING', `knowledge source ${target.path} is not a directory`);
  }
  const records: FileRecord[] = [];
  const skipped: string[] = [];
  const tools = { zstd: await zstdVersion(), tar: 'tar-stream (ustar + pax)' };
  const { manifest } = await writeBackup({
    config: deps.config,
    repo: deps.repo,
    component: 'knowledge',
    name: target.name,
    payloadName: KNOWLEDGE_PAYLOAD,
    streamCodec: 'zstd',
    encode: { level: 3, threads: 2 },
    log: deps.log,
    ...(deps.now ? { now: deps.now } : {}),
    signal: deps.signal,
    onProgress: deps.onProgress,
    start() {
      const { stream, done, stop } = packTree(fromS3 ? walkS3Prefix(target.path) : walkDirectory(target.path, skipped), records);
      return {
        stream,
        producers: [done],
        stop: () => {
          stop(new Error('stopped'));
          stream.destroy(new Error('stopped'));
        },
      };
    },
    describe(written) {
      const files = records.filter((r) => r.type === 'file');
      return {
        ...writtenManifest(written, 'knowledge', target.name, { streamCodec: 'zstd', compression: 'zstd -3 -T2', format: 'tar' }),
        tools,
        source: { path: target.path },
        details: {
          files: files.length,
          directories: records.filter((r) => r.type === 'directory').length,
          symlinks: records.filter((r) => r.type === 'symlink').length,
          bytes: files.reduce((n, f) => n + f.size, 0),
          skipped,
          entries: records,
        },
      };
    },
  });
  return manifest;
}
