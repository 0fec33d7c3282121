/**
 * Constants of pg_dump's custom archive format (src/bin/pg_dump/pg_backup_archiver.h,
 * pg_backup_custom.c). Versions are major.minor.rev.
 */
export const MAGIC = Buffer.from('PGDMP');
export const FORMAT_CUSTOM = 1;

/**
 * The archive version each PostgreSQL major's pg_dump writes, which is also the newest its
 * pg_restore reads (K_VERS_MAX): 1.14 from 12 (table access methods), 1.15 from 16 (the
 * compression algorithm in the header), 1.16 from 17 (relkind in every entry); 18 writes 1.16
 * too. In major order. Checked against the real pg_restore 15, 17 and 18 on real pg_dump 15,
 * 17 and 18 archives (test/integration/pg-archive-versions.test.ts).
 */
export const ARCHIVE_VERSION_BY_MAJOR: ReadonlyMap<number, readonly [number, number]> = new Map([
  [12, [1, 14]],
  [13, [1, 14]],
  [14, [1, 14]],
  [15, [1, 14]],
  [16, [1, 15]],
  [17, [1, 16]],
  [18, [1, 16]],
]);

const known = [...ARCHIVE_VERSION_BY_MAJOR];
/** The versions this reader knows, and the pg_dump majors that write them. */
export const MIN_VERSION = known[0]![1];
export const MAX_VERSION = known.at(-1)![1];
export const MIN_MAJOR = known[0]![0];
export const MAX_MAJOR = known.at(-1)![0];

/** Block types at the start of every data block. */
export const BLK_DATA = 1;
export const BLK_BLOBS = 3;

/** The flag byte before every entry's data offset. */
export const OFFSET_POS_NOT_SET = 1;
export const OFFSET_POS_SET = 2;
export const OFFSET_NO_DATA = 3;

/** `pg_compress_algorithm` as stored from 1.15 on; before, a level (0 none, otherwise gzip). */
export const COMPRESSION = ['none', 'gzip', 'lz4', 'zstd'] as const;
export type BlockCompression = (typeof COMPRESSION)[number];

/** The header and the table of contents are held in memory whole; beyond this the archive is refused, not buffered. */
export const MAX_TOC_BYTES = 128 * 1024 * 1024;

export function versionAtLeast(v: readonly [number, number, ...number[]], major: number, minor: number): boolean {
  return v[0] > major || (v[0] === major && v[1] >= minor);
}
