import { mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** A small knowledge base for the embedded demo, created only when the directory is missing or empty. */
export async function ensureSampleKnowledge(dir: string): Promise<boolean> {
  const present = await readdir(dir).catch(() => [] as string[]);
  if (present.length > 0) return false;
  await mkdir(path.join(dir, 'faq'), { recursive: true });
  await mkdir(path.join(dir, 'скрипты'), { recursive: true });
  await writeFile(path.join(dir, 'faq', 'returns.md'), '# Returns\n\nOrders can be returned within 14 days.\n');
  await writeFile(path.join(dir, 'faq', 'delivery.md'), '# Delivery\n\nDelivery takes 2-5 working days.\n');
  await writeFile(path.join(dir, 'скрипты', 'load_knowledge_base.py'), 'print("load")\n');
  await symlink('faq/returns.md', path.join(dir, 'current-policy.md'));
  return true;
}
