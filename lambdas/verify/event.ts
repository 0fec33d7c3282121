import * as z from 'zod';
import { COMPONENTS, MANIFEST, isBackupId, type Component } from '../../src/backup/layout.js';
import { parseOrThrow } from '../shared/validate.js';

export interface VerifyRequest {
  component: Component;
  /** Absent: every configured target of the component, newest backup. */
  name?: string | undefined;
  backupId: string;
}

const manual = z
  .object({
    component: z.enum(COMPONENTS),
    backupId: z.string().refine((v) => v === 'latest' || isBackupId(v), 'a backup id like 20260214T040000Z, or "latest"').optional(),
    name: z.string().optional(),
  })
  .strict();

/** S3 "Object Created" through EventBridge: the manifest's creation means a backup just completed. */
const s3Created = z.object({
  source: z.literal('aws.s3'),
  'detail-type': z.literal('Object Created'),
  detail: z.object({ object: z.object({ key: z.string() }) }),
});

/** A manual invoke `{ component, backupId?, name? }`, the 04:30 schedule's input, or a manifest's creation. */
export function parseVerifyEvent(event: unknown): VerifyRequest | { ignored: string } {
  const created = s3Created.safeParse(event);
  if (created.success) {
    const key = decodeURIComponent(created.data.detail.object.key.replace(/\+/g, ' '));
    const parts = key.split('/');
    const [component, name, id, file] = parts.slice(-4);
    if (file !== MANIFEST || !COMPONENTS.includes(component as Component) || !id || !isBackupId(id) || !name) {
      return { ignored: `not a manifest: ${key}` };
    }
    return { component: component as Component, name, backupId: id };
  }
  const request = parseOrThrow(manual, event, 'verify request');
  return { component: request.component, name: request.name, backupId: request.backupId ?? 'latest' };
}
