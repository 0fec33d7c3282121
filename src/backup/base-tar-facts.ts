import { scanTar } from './tar-scan.js';

/** What level 2 reads from a base backup's tar: every regular member's size, and backup_label and backup_manifest. */
export interface BaseTarFacts {
  sizes: Map<string, number>;
  texts: Map<string, string>;
}

/**
 * The reading of a base backup's decoded tar, by its headers (tar-scan.ts): the same on the
 * event loop and in base-tar-worker.ts's thread. `facts` settles after `end`.
 */
export function baseTarScan(): { push(chunk: Buffer): void; end(): void; facts: Promise<BaseTarFacts> } {
  const sizes = new Map<string, number>();
  const scan = scanTar(new Set(['backup_label', 'backup_manifest']), 64 << 20, (name, type, size) => {
    if (type === '0' || type === '\0') sizes.set(name, size);
  });
  const facts = scan.done.then(() => ({ sizes, texts: new Map([...scan.files].map(([n, content]) => [n, content.toString('utf8')])) }));
  facts.catch(() => undefined);
  return { push: scan.push, end: scan.end, facts };
}
