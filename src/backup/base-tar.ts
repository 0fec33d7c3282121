import type { Writable } from 'node:stream';
import { decoder } from './codec.js';
import type { StreamCodec } from './manifest.js';
import { scanTar } from './tar-scan.js';

/** What level 2 reads from a base backup's tar: every regular member's size, and backup_label and backup_manifest. */
export interface BaseTarFacts {
  sizes: Map<string, number>;
  texts: Map<string, string>;
}

/**
 * A reader of a base backup's compressed tar: the payload's bytes go into `input`; `facts`
 * settles once the tar was read to its end (rejected on a decoder or tar failure). Headers
 * are read and members skipped by size (tar-scan.ts, checked against GNU tar): a stream per
 * member (tar-stream) cost more than the decompression of the whole backup.
 */
export function baseTarReader(codec: StreamCodec): { input: Writable; facts: Promise<BaseTarFacts>; kill(): void } {
  const sizes = new Map<string, number>();
  const scan = scanTar(new Set(['backup_label', 'backup_manifest']), 64 << 20, (name, type, size) => {
    if (type === '0' || type === '\0') sizes.set(name, size);
  });
  const dec = decoder(codec)!;
  dec.output.on('data', (chunk: Buffer) => scan.push(chunk));
  const ended = new Promise<void>((resolve, reject) => {
    dec.output.once('end', () => (scan.end(), resolve()));
    dec.output.once('error', reject);
  });
  const facts = Promise.all([ended, dec.done, scan.done]).then(() => ({ sizes, texts: new Map([...scan.files].map(([n, content]) => [n, content.toString('utf8')])) }));
  facts.catch(() => undefined);
  return { input: dec.input, facts, kill: () => dec.kill() };
}
