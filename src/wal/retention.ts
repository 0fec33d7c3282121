import type { BackupEntry } from '../backup/catalog.js';
import type { BaseDetails } from '../backup/postgres-base.js';
import type { Decision, PruneResult } from '../backup/retention.js';
import type { Log } from '../log.js';
import type { Repository } from '../repository/repository.js';
import { parseWalName, segmentIndex, segmentOfLsn, walKey, walPrefix } from './names.js';
import { parseChunks } from './chunks.js';

/**
 * WAL retention: a file goes when it is older than `days` and no kept base backup needs
 * it. A base backup needs every segment from the one holding its start LSN on, on its
 * timeline and every later one; history files are never removed (tiny, and recovery
 * needs them to follow any timeline). With no base backup at all, nothing is removed:
 * WAL without a base is useless, but deleting it would make a late first base backup
 * unable to reach back.
 */
export async function pruneWal(repo: Repository, name: string, keptBases: BackupEntry[], days: number, options: { dryRun: boolean; now: Date; log: Log }): Promise<PruneResult> {
  const prefix = walPrefix(name);
  const objects = (await repo.list(prefix)).filter((o) => o.key.endsWith('.zst'));
  const result: PruneResult = { component: 'postgres', name: `${name} (wal)`, dryRun: options.dryRun, decisions: [], deleted: 0, freedBytes: 0 };
  const bases = keptBases.flatMap((b) => {
    const d = b.manifest?.details as unknown as BaseDetails | undefined;
    if (d?.kind !== 'base') return [];
    const start = parseWalName(segmentOfLsn(d.timeline, d.startLsn, d.segmentBytes))!;
    return [{ id: b.id, timeline: d.timeline, index: segmentIndex(start.segment!, d.segmentBytes), segmentBytes: d.segmentBytes }];
  });
  if (bases.length === 0) {
    result.decisions.push({ id: 'wal', action: 'keep', reason: 'no base backup kept: every WAL file stays' });
    return result;
  }
  // The oldest kept base reaches back furthest; what it does not need, no kept base needs.
  const oldest = bases.reduce((a, b) => (b.timeline < a.timeline || (b.timeline === a.timeline && b.index < a.index) ? b : a));
  const cutoff = options.now.getTime() - days * 86_400_000;
  const doomed: string[] = [];
  let bytes = 0;
  for (const o of objects) {
    const w = parseWalName(o.key.slice(prefix.length, -'.zst'.length));
    if (!w || w.kind === 'history' || o.lastModified.getTime() >= cutoff) continue;
    const index = segmentIndex(w.segment!, oldest.segmentBytes);
    const needed = w.timeline > oldest.timeline || index >= oldest.index;
    if (needed) continue;
    doomed.push(o.key);
    bytes += o.size;
  }
  // Chunks of `wal receive` go once their segment is archived whole (the receiver removes them
  // itself; these are the ones it could not, e.g. it died first), or by the segments' own rule.
  const whole = new Set(objects.map((o) => o.key));
  for (const c of parseChunks(name, objects)) {
    const w = parseWalName(c.segment)!;
    const archived = whole.has(walKey(name, c.segment));
    const old = c.uploadedAt.getTime() < cutoff && w.timeline <= oldest.timeline && segmentIndex(w.segment!, oldest.segmentBytes) < oldest.index;
    if (!archived && !old) continue;
    doomed.push(c.key);
    bytes += c.size;
  }
  if (doomed.length > 0 && !options.dryRun) {
    for (let i = 0; i < doomed.length; i += 1000) await repo.delete(doomed.slice(i, i + 1000));
    options.log.info(`pruned ${doomed.length} WAL files of ${name}`, { before: `base ${oldest.id}`, bytes });
  }
  const decision: Decision = doomed.length > 0
    ? { id: 'wal', action: 'delete', reason: `${doomed.length} files older than ${days} days and before base backup ${oldest.id}'s start, or streamed chunks of segments archived whole`, keys: doomed, bytes }
    : { id: 'wal', action: 'keep', reason: `nothing older than ${days} days that base backup ${oldest.id} does not need` };
  result.decisions.push(decision);
  result.deleted = doomed.length;
  result.freedBytes = bytes;
  return result;
}
