import * as z from 'zod';
import type { RunTaskCommandInput } from '@aws-sdk/client-ecs';
import { COMPONENTS } from '../../src/backup/layout.js';

/** What an operator sends (aws lambda invoke / opsctl --remote). Validated once, here. */
export const restoreRequestSchema = z
  .object({
    component: z.enum(COMPONENTS),
    backupId: z.string().regex(/^(latest|\d{8}T\d{6}Z(-\d+)?)$/, 'a backup id like 20260214T040000Z, or "latest"'),
    target: z.string().min(1).max(200),
    confirm: z.string().min(1).optional(),
    clean: z.boolean().optional(),
    replace: z.boolean().optional(),
    jobs: z.number().int().min(1).max(16).optional(),
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/).optional(),
    /** postgres: to a moment (point-in-time recovery) into the target database, from base backups and WAL. */
    base: z.boolean().optional(),
    to: z.string().min(1).max(64).optional(),
    toName: z.string().min(1).max(63).optional(),
    toLsn: z.string().regex(/^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/, 'an LSN like 0/3000060').optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    const targets = [r.to, r.toName, r.toLsn].filter((x) => x !== undefined).length;
    if (targets > 0 && !r.base) ctx.addIssue({ code: 'custom', path: ['base'], message: 'to / toName / toLsn need "base": true (a point-in-time restore)' });
    if (targets > 1) ctx.addIssue({ code: 'custom', path: ['to'], message: 'one of to, toName, toLsn' });
    if (r.base && r.component !== 'postgres') ctx.addIssue({ code: 'custom', path: ['base'], message: 'point-in-time restores are for postgres' });
    if (r.base && r.jobs) ctx.addIssue({ code: 'custom', path: ['jobs'], message: 'a point-in-time restore copies in one transaction: no jobs' });
  });
export type RestoreRequest = z.infer<typeof restoreRequestSchema>;

/** Where the restore task runs; from the function's environment, set by the stack. */
export const restoreEnvironmentSchema = z.object({
  OPS_CLUSTER_ARN: z.string().startsWith('arn:'),
  OPS_RESTORE_TASK_DEFINITION: z.string().startsWith('arn:'),
  OPS_CONTAINER_NAME: z.string().min(1),
  OPS_SUBNETS: z.string().min(1).transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean)),
  OPS_SECURITY_GROUPS: z.string().min(1).transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean)),
  OPS_LOG_GROUP: z.string().min(1),
  OPS_LOG_STREAM_PREFIX: z.string().min(1),
});
export type RestoreEnvironment = z.infer<typeof restoreEnvironmentSchema>;

/** The opsctl command line the restore task runs: the same CLI as on an operator's shell. */
export function restoreCommand(request: RestoreRequest): string[] {
  const cmd = ['--json', 'restore', request.component, request.backupId, '--target', request.target];
  if (request.confirm) cmd.push('--confirm', request.confirm);
  if (request.clean) cmd.push('--clean');
  if (request.replace) cmd.push('--replace');
  if (request.jobs) cmd.push('--jobs', String(request.jobs));
  if (request.name) cmd.push('--name', request.name);
  if (request.base) {
    cmd.push('--base');
    if (request.to) cmd.push('--to', request.to);
    if (request.toName) cmd.push('--to-name', request.toName);
    if (request.toLsn) cmd.push('--to-lsn', request.toLsn);
  }
  return cmd;
}

export function runTaskInput(request: RestoreRequest, env: RestoreEnvironment, requestId: string): RunTaskCommandInput {
  return {
    cluster: env.OPS_CLUSTER_ARN,
    taskDefinition: env.OPS_RESTORE_TASK_DEFINITION,
    launchType: 'FARGATE',
    count: 1,
    startedBy: `ops-restore-${requestId}`.slice(0, 36),
    propagateTags: 'TASK_DEFINITION',
    networkConfiguration: {
      awsvpcConfiguration: { subnets: env.OPS_SUBNETS, securityGroups: env.OPS_SECURITY_GROUPS, assignPublicIp: 'DISABLED' },
    },
    overrides: { containerOverrides: [{ name: env.OPS_CONTAINER_NAME, command: restoreCommand(request) }] },
  };
}
