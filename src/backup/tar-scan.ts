/**
 * Picks a few small members out of a tar stream as it passes, without unpacking the rest.
 * A base backup streams ~1 GB of tar per GB of database; tar-stream's per-entry streams
 * made reading it cost more than pg_basebackup itself (2.0 s vs 1.3 s for 1.1 GB here),
 * while all a base backup needs are backup_label and backup_manifest. So this reads the
 * 512-byte headers (ustar; sizes in octal or GNU base-256), skips every other member's
 * bytes by counting, and keeps only the wanted members' content (bounded by `maxBytes`).
 */
export interface TarScan {
  /** The tar, chunk by chunk as it passes (a listener on the stream, no stream hop of its own). */
  push(chunk: Buffer): void;
  end(): void;
  /** Wanted members' content, by name, once `done` resolved. */
  files: Map<string, Buffer>;
  done: Promise<void>;
}

export class TarScanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TarScanError';
  }
}

/** A ustar size field: NUL/space-terminated octal, or GNU base-256 (first byte 0x80). */
export function tarSize(field: Buffer): number {
  if ((field[0]! & 0x80) !== 0) {
    let n = 0;
    for (let i = 1; i < field.length; i += 1) n = n * 256 + field[i]!;
    return n;
  }
  const text = field.toString('latin1').replace(/[\0 ]+$/, '').trim();
  if (!/^[0-7]*$/.test(text)) throw new TarScanError(`tar header has size field ${JSON.stringify(text)}`);
  return text === '' ? 0 : Number.parseInt(text, 8);
}

function headerChecksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < 512; i += 1) sum += i >= 148 && i < 156 ? 32 : h[i]!;
  const stored = Number.parseInt(h.toString('latin1', 148, 156).replace(/[\0 ]+$/, '').trim(), 8);
  return stored === sum;
}

/**
 * `onEntry` sees every member's header (name, type flag, size) as it passes: what a check of
 * a whole base backup against its backup_manifest needs, without a stream per member.
 */
export function scanTar(wanted: ReadonlySet<string>, maxBytes = 64 << 20, onEntry?: (name: string, type: string, size: number) => void): TarScan {
  const files = new Map<string, Buffer>();
  let header = Buffer.alloc(0);
  let skip = 0; // content and padding bytes of the current member still to pass
  let keep: { name: string; size: number; parts: Buffer[]; got: number } | undefined;
  let finish!: () => void;
  let fail!: (e: Error) => void;
  const done = new Promise<void>((resolve, reject) => ((finish = resolve), (fail = reject)));
  done.catch(() => undefined);

  const consume = (chunk: Buffer): void => {
    let at = 0;
    while (at < chunk.length) {
      if (skip > 0) {
        const n = Math.min(skip, chunk.length - at);
        if (keep && keep.got < keep.size) {
          const take = Math.min(n, keep.size - keep.got);
          keep.parts.push(Buffer.from(chunk.subarray(at, at + take)));
          keep.got += take;
          if (keep.got === keep.size) files.set(keep.name, Buffer.concat(keep.parts));
        }
        skip -= n;
        at += n;
        if (skip === 0) keep = undefined;
        continue;
      }
      const need = 512 - header.length;
      header = Buffer.concat([header, chunk.subarray(at, at + need)]);
      at += Math.min(need, chunk.length - at);
      if (header.length < 512) return;
      const h = header;
      header = Buffer.alloc(0);
      // Zero blocks end an archive; read on past them (GNU tar's --ignore-zeros), since only
      // headers that follow could hold a member, and padding is zeros too.
      if (h.every((b) => b === 0)) continue;
      if (!headerChecksumOk(h)) throw new TarScanError('tar header checksum mismatch: the stream is not a tar, or it is damaged');
      const size = tarSize(h.subarray(124, 136));
      const nameField = h.toString('utf8', 0, 100).replace(/\0.*$/s, '');
      const prefix = h.toString('latin1', 257, 263).startsWith('ustar') ? h.toString('utf8', 345, 500).replace(/\0.*$/s, '') : '';
      const name = (prefix ? `${prefix}/${nameField}` : nameField).replace(/^\.\//, '');
      const type = String.fromCharCode(h[156]!);
      skip = Math.ceil(size / 512) * 512;
      onEntry?.(name, type, size);
      if ((type === '0' || type === '\0') && wanted.has(name)) {
        if (size > maxBytes) throw new TarScanError(`tar member ${name} is ${size} bytes, over the ${maxBytes} this reads`);
        keep = { name, size, parts: [], got: 0 };
        if (size === 0) files.set(name, Buffer.alloc(0));
      }
    }
  };

  let failed: Error | undefined;
  const push = (chunk: Buffer): void => {
    if (failed) return;
    try {
      consume(chunk);
    } catch (error) {
      failed = error as Error;
      fail(failed);
    }
  };
  const end = (): void => {
    if (failed) return;
    if (skip > 0 || header.length > 0) {
      failed = new TarScanError('the tar stream ended inside a member: cut off');
      fail(failed);
      return;
    }
    finish();
  };
  return { push, end, files, done };
}
