import type { ArchiveToc } from '../../src/pg-archive/toc.js';

/**
 * Writes a header and table of contents as pg_dump's WriteHead/WriteToc do, for a chosen
 * archive version: the test's way to get 1.15 and 1.16 archives on a machine whose
 * pg_dump (15) writes 1.14. The data blocks are copied unchanged.
 */
export function rewriteArchive(original: Buffer, toc: ArchiveToc, version: [number, number, number], options: { algorithm?: number; relkind?: number } = {}): Buffer {
  const parts: Buffer[] = [];
  const byte = (b: number) => parts.push(Buffer.from([b]));
  const int = (v: number) => {
    const b = Buffer.alloc(5);
    b[0] = v < 0 ? 1 : 0;
    b.writeUInt32LE(Math.abs(v), 1);
    parts.push(b);
  };
  const str = (s: string | null) => {
    if (s === null) return int(-1);
    const bytes = Buffer.from(s, 'utf8');
    int(bytes.length);
    parts.push(bytes);
  };
  parts.push(Buffer.from('PGDMP'));
  version.forEach(byte);
  byte(4);
  byte(8);
  byte(1);
  const h = toc.header;
  if (version[1] >= 15) byte(options.algorithm ?? (h.compression === 'gzip' ? 1 : 0));
  else int(h.compressionLevel ?? 0);
  for (const v of [h.created.second, h.created.minute, h.created.hour, h.created.day, h.created.month - 1, h.created.year - 1900, h.created.isDst]) int(v);
  str(h.database);
  str(h.serverVersion);
  str(h.dumpVersion);
  int(toc.entries.length);
  for (const e of toc.entries) {
    int(e.dumpId);
    int(e.hadDumper ? 1 : 0);
    str(e.tableOid);
    str(e.oid);
    str(e.tag);
    str(e.desc);
    int(e.section);
    str(e.defn);
    str(e.dropStmt);
    str(e.copyStmt);
    str(e.namespace);
    str(e.tablespace);
    str(e.tableam);
    if (version[1] >= 16) int(options.relkind ?? (e.desc === 'TABLE' ? 0x72 : 0));
    str(e.owner);
    str('false');
    for (const d of e.dependencies) str(String(d));
    str(null);
    byte(e.dataState);
    parts.push(Buffer.alloc(8));
  }
  parts.push(original.subarray(toc.length));
  return Buffer.concat(parts);
}
