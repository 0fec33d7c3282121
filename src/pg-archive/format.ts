/**
 * Constants of pg_dump's custom archive format (src/bin/pg_dump/pg_backup_archiver.h,
 * pg_backup_custom.c). Versions are major.minor.rev; pg_dump 12-15 write 1.14, 16 writes
 * 1.15, 17 and 18 write 1.16.
 */
export const MAGIC = Buffer.from('PGDMP');
export const FORMAT_CUSTOM = 1;

export const MIN_VERSION = [1, 14] as const;
export const MAX_VERSION = [1, 16] as const;

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

export function versionAtLeast(v: readonly [number, number, number], major: number, minor: number): boolean {
  return v[0] > major || (v[0] === major && v[1] >= minor);
}
