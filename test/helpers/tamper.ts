import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import tar from 'tar-stream';
import type { Manifest } from '../../src/backup/manifest.js';

/**
 * Copy a backup under a new id, changing its payload and optionally re-sealing the
 * manifest (size and sha256 of the changed payload), so deeper levels are reached.
 */
export async function cloneBackup(
  repoDir: string,
  name: string,
  sourceId: string,
  newId: string,
  change: { payload?: (b: Buffer) => Buffer; reseal?: boolean; manifest?: (m: Manifest) => Manifest; dropPayload?: boolean },
): Promise<void> {
  const src = path.join(repoDir, 'postgres', name, sourceId);
  const dst = path.join(repoDir, 'postgres', name, newId);
  await rm(dst, { recursive: true, force: true });
  await mkdir(dst, { recursive: true });
  let manifest = JSON.parse(await readFile(path.join(src, 'manifest.json'), 'utf8')) as Manifest;
  const payloadName = path.basename(manifest.payload.key);
  let payload: Buffer = await readFile(path.join(src, payloadName));
  if (change.payload) payload = change.payload(payload);
  manifest = { ...manifest, id: newId, payload: { ...manifest.payload, key: `postgres/${name}/${newId}/${payloadName}` } };
  if (change.reseal) {
    manifest.payload.bytes = payload.length;
    manifest.payload.sha256 = createHash('sha256').update(payload).digest('hex');
  }
  if (change.manifest) manifest = change.manifest(manifest);
  if (!change.dropPayload) await writeFile(path.join(dst, payloadName), payload);
  await writeFile(path.join(dst, 'manifest.json'), JSON.stringify(manifest));
}

export const truncate = (fraction: number) => (b: Buffer) => b.subarray(0, Math.floor(b.length * fraction));
export const zeroBytes = (at: number, n: number) => (b: Buffer) => {
  const c = Buffer.from(b);
  const start = Math.floor(c.length * at);
  c.fill(0, start, start + n);
  return c;
};
export const flipByte = (at: number) => (b: Buffer) => {
  const c = Buffer.from(b);
  const i = Math.floor(c.length * at);
  c[i] = (c[i] ?? 0) ^ 0xff;
  return c;
};

/** Any component: copy a backup under a new id with its payload changed; `reseal` re-computes size and sha256. */
export async function cloneBackupGeneric(repoDir: string, component: string, name: string, sourceId: string, newId: string, change: (b: Buffer) => Buffer, reseal = false): Promise<void> {
  const src = path.join(repoDir, component, name, sourceId);
  const dst = path.join(repoDir, component, name, newId);
  await mkdir(dst, { recursive: true });
  const manifest = JSON.parse(await readFile(path.join(src, 'manifest.json'), 'utf8')) as Manifest;
  const payloadName = path.basename(manifest.payload.key);
  const payload = change(await readFile(path.join(src, payloadName)));
  manifest.id = newId;
  manifest.payload.key = `${component}/${name}/${newId}/${payloadName}`;
  if (reseal) {
    manifest.payload.bytes = payload.length;
    manifest.payload.sha256 = createHash('sha256').update(payload).digest('hex');
  }
  await writeFile(path.join(dst, payloadName), payload);
  await writeFile(path.join(dst, 'manifest.json'), JSON.stringify(manifest));
}

export type ArchiveHeader = { name: string; type: 'file' | 'symlink' | 'directory'; size?: number; linkname?: string; mode?: number };

/**
 * A hand-made knowledge archive (files hold "x") and a manifest that seals it, checksums
 * right: hostile input, not damaged input. Backup id 20260101T000000Z of knowledge/kb.
 */
export async function sealedKnowledgeArchive(headers: ArchiveHeader[], options: { entries?: unknown[]; source?: Record<string, unknown> } = {}) {
  const pack = tar.pack();
  for (const h of headers) {
    if (h.type === 'file') pack.entry({ mode: 0o755, ...h } as tar.Header, 'x');
    else pack.entry({ mode: 0o755, ...h } as tar.Header);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack as unknown as AsyncIterable<Buffer>) chunks.push(c);
  const payload = execFileSync('zstd', ['-c', '-q'], { input: Buffer.concat(chunks) });
  const manifest = {
    formatVersion: 1,
    id: '20260101T000000Z',
    component: 'knowledge',
    name: 'kb',
    payload: { key: 'knowledge/kb/20260101T000000Z/knowledge.tar.zst', bytes: payload.length, sha256: createHash('sha256').update(payload).digest('hex'), streamCodec: 'zstd', compression: 'zstd', format: 'tar' },
    startedAt: '2026-01-01T00:00:00Z',
    finishedAt: '2026-01-01T00:00:00Z',
    durationSeconds: 0,
    tools: {},
    source: options.source ?? {},
    details: { entries: options.entries ?? [] },
  };
  return { payload, manifest };
}
