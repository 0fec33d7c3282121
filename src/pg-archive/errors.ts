import { OpsError } from '../errors.js';

/** Where in the archive a failure was found: the byte offset, and the entry being read if any. */
export interface ArchivePosition {
  offset: number;
  /** `public.calls (TABLE DATA, dump id 3301)` */
  entry?: string | undefined;
}

/** Base of every failure reading a pg_dump custom-format archive. */
export class ArchiveError extends OpsError {
  readonly offset: number;
  readonly entry: string | undefined;
  constructor(code: string, message: string, at: ArchivePosition, cause?: unknown) {
    super(code, `${message} at byte ${at.offset}${at.entry ? ` (${at.entry})` : ''}`, { context: { ...at }, cause });
    this.name = 'ArchiveError';
    this.offset = at.offset;
    this.entry = at.entry;
  }
}

/** The bytes end before the structure does: a cut-off archive. */
export class ArchiveTruncatedError extends ArchiveError {
  constructor(what: string, at: ArchivePosition) {
    super('ARCHIVE_TRUNCATED', `archive ends inside ${what}`, at);
    this.name = 'ArchiveTruncatedError';
  }
}

/** A field holds a value the format does not allow (magic, version, length, flag, block type, id). */
export class ArchiveFormatError extends ArchiveError {
  constructor(message: string, at: ArchivePosition) {
    super('ARCHIVE_FORMAT', message, at);
    this.name = 'ArchiveFormatError';
  }
}

/**
 * A dependency that is no dump ID. pg_dump writes each as a decimal number; pg_restore reads
 * them with sscanf and keeps whatever that leaves (uninitialised memory for a word), using
 * them only to order a parallel restore, so it goes on where this reader stops: a table of
 * contents damaged this way is refused here on purpose (stricter than pg_restore).
 */
export class ArchiveBadDependencyError extends ArchiveError {
  constructor(dep: string, dumpId: number, at: ArchivePosition) {
    super('ARCHIVE_BAD_DEPENDENCY', `dependency ID "${dep}" out of range in entry ${dumpId}`, at);
    this.name = 'ArchiveBadDependencyError';
  }
}

/** A data stream inside a block did not decompress. */
export class ArchiveDecompressionError extends ArchiveError {
  constructor(message: string, at: ArchivePosition, cause?: unknown) {
    super('ARCHIVE_DECOMPRESSION', message, at, cause);
    this.name = 'ArchiveDecompressionError';
  }
}

/** The archive ends where it should, but something comes after it. */
export class ArchiveTrailingBytesError extends ArchiveError {
  constructor(bytes: number, at: ArchivePosition) {
    super('ARCHIVE_TRAILING_BYTES', `${bytes} bytes after the end of the archive`, at);
    this.name = 'ArchiveTrailingBytesError';
  }
}

/** Data entries the table of contents promises that never came. */
export class ArchiveMissingDataError extends ArchiveError {
  constructor(missing: string[], at: ArchivePosition) {
    super('ARCHIVE_MISSING_DATA', `no data block for ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` (+${missing.length - 5})` : ''}`, at);
    this.name = 'ArchiveMissingDataError';
  }
}

/**
 * A second data block for one entry. pg_dump never writes one; pg_restore from a pipe
 * skips it unread while it looks for the next block it wants, so it would restore. We
 * refuse it: bytes that no pg_dump wrote are a damaged or spliced archive (stricter than
 * pg_restore on purpose, like bytes after the archive's end).
 */
export class ArchiveDuplicateBlockError extends ArchiveError {
  constructor(entry: string, at: { offset: number }) {
    super('ARCHIVE_DUPLICATE_BLOCK', `second data block for ${entry}`, at);
    this.name = 'ArchiveDuplicateBlockError';
  }
}
