import type { BackupEntry } from '../backup/catalog.js';
import type { Verification } from '../backup/manifest.js';
import { errorMessage } from '../errors.js';
import type { FileRecord } from '../knowledge/archive.js';
import { compareEntries, readTar } from '../knowledge/extract.js';
import { sha256Of } from '../util/streams.js';
import type { Log } from '../log.js';
import type { Repository } from '../repository/repository.js';
import { verifyArchive } from './archive-verify.js';

/** Level 2: the tar reads to its end with every entry the manifest lists; level 3: every file's sha256 matches. */
export async function verifyKnowledgeBackup(entry: BackupEntry, deps: { repo: Repository; log: Log; now?: () => Date; signal?: AbortSignal | undefined; onProgress?: ((b: number) => void) | undefined }): Promise<Verification> {
  const expected = ((entry.manifest?.details as { entries?: FileRecord[] } | undefined)?.entries ?? []) as FileRecord[];
  const seen: FileRecord[] = [];
  const { sink, done } = readTar(async (e, content) => {
    const type = e.type === 'directory' || e.type === 'symlink' || e.type === 'link' ? e.type : 'file';
    if (type === 'file') seen.push({ path: e.path, type, mode: e.mode, ...(await sha256Of(content)) });
    else seen.push({ path: e.path, type, mode: e.mode, size: 0, ...(e.linkname ? { linkname: e.linkname } : {}) });
  });
  return verifyArchive(
    entry,
    {
      sink,
      judge(readError) {
        if (readError) return { catalogue: { ok: false, detail: `tar unreadable after ${seen.length} entries: ${errorMessage(readError)}` }, fullRead: { ok: false, detail: 'not read to the end' }, records: seen.length };
        void done;
        const names = compareEntries(
          expected.map((x) => ({ ...x, sha256: 'x', size: 0 })),
          seen.map((x) => ({ ...x, sha256: 'x', size: 0 })),
        );
        const catalogue = names.length === 0 ? { ok: true, detail: `${seen.length} entries, as listed` } : { ok: false, detail: names.slice(0, 5).join('; ') };
        const content = compareEntries(expected, seen);
        const fullRead = content.length === 0 ? { ok: true, detail: `${seen.filter((s) => s.type === 'file').length} files, every sha256 matches` } : { ok: false, detail: content.slice(0, 5).join('; ') };
        return { catalogue, fullRead, records: seen.length };
      },
    },
    deps,
  );
}
