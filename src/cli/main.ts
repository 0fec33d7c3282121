import type { FullReader } from '../verify/postgres-verify.js';
import { Argument, Command, CommanderError, Option } from 'commander';
import type { Component } from '../backup/layout.js';
import { ConfigError } from '../config/errors.js';
import { loadConfig, resolveConfigPath, type OpsConfig } from '../config/load.js';
import { OpsError, errorMessage } from '../errors.js';
import { createJobContext, type JobContext } from '../jobs/context.js';
import { createMetrics } from '../metrics/create.js';
import { EXIT, processExit, type CommandOutcome, type ExitCode } from './output.js';
export { processExit } from './output.js';
import { endProgressLine, stderrLog, stderrProgress } from './stderr-log.js';
import { scrub, secretsOf } from '../util/mask.js';
import { stringifyPrepared } from '../util/prepared-json.js';
import { SECRET_ENV } from '../config/secret-env.js';
import { readFileSync } from 'node:fs';

/** package.json sits two levels above both src/cli/ and the bundle's dist/opsctl/ (the image copies it too). */
function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

// Each command's code loads when it runs: importing every engine (ioredis, tar, the AWS
// SDK) up front doubled the start-up time of every command.
const backupCmds = () => import('./commands/backup-commands.js');
const configCmds = () => import('./commands/config-commands.js');
const partitionCmds = () => import('./commands/partition-commands.js');

interface GlobalOptions {
  config?: string;
  json?: boolean;
  verbose?: boolean;
}

/** Components whose engines exist in this version; the rest are refused as bad usage. */
const AVAILABLE: Component[] = ['postgres', 'redis', 'knowledge'];

const positiveInt = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new CommanderError(EXIT.usage, 'opsctl.invalidNumber', `expected a positive integer, got "${value}"`);
  return n;
};

/**
 * Run opsctl with `argv` (without node and script). Returns the exit code; prints the
 * result (a table, or one JSON document with --json) on stdout and everything else on stderr.
 */
/** Runs one command; the exit status follows the caller's contract where it has one (`wal fetch`: see processExit). */
export async function main(argv: string[], signal?: AbortSignal): Promise<number> {
  return processExit(argv, await runCommand(argv, signal));
}

async function runCommand(argv: string[], signal?: AbortSignal): Promise<ExitCode> {
  let outcome: CommandOutcome | undefined;
  const program = new Command('opsctl')
    .description('Operate the PostgreSQL + Redis backbone: backups, verification, restore, partitions, status.')
    .option('--config <file>', 'configuration file (default: $OPS_CONFIG, ./ops.config.json)')
    .version(packageVersion(), '--version', 'print the version of opsctl')
    .option('--json', 'print one JSON document on stdout')
    .option('-v, --verbose', 'log progress details on stderr')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) });

  const globals = (): GlobalOptions => program.opts<GlobalOptions>();
  // Every secret this run knows of, scrubbed from whatever it prints, as a last line of
  // defence behind maskUrl (a library's error message may quote a connection string).
  const secrets = new Set<string>(envSecrets(process.env));
  const config = (): OpsConfig => {
    const cfg = loadConfig(resolveConfigPath(globals().config));
    for (const v of [...Object.values(cfg.effective.postgres), ...Object.values(cfg.effective.redis)]) if (v) for (const s of secretsOf(v.value)) secrets.add(s);
    return cfg;
  };
  const print = (text: string) => process.stdout.write(scrubAll(text, secrets));
  const contexts: JobContext[] = [];
  const context = async (): Promise<JobContext> => {
    const g = globals();
    const cfg = config();
    const log = stderrLog(g.verbose ?? false);
    // EMF goes to stderr: stdout carries the command's result (and --json).
    const metrics = await createMetrics(cfg, log, process.env, process.stderr);
    const ctx = createJobContext(cfg, log, { signal, progress: stderrProgress(), metrics });
    contexts.push(ctx);
    return ctx;
  };
  const componentArg = () => new Argument('<component>', 'postgres | redis | knowledge').choices(AVAILABLE);
  const remoteOption = () => new Option('--remote <stack>', 'against the deployed stack of this name (AWS credentials and AWS_REGION from the environment)').env('OPS_STACK');
  const nameOption = () => new Option('--name <name>', 'only this configured database / instance / store');

  program
    .command('backup')
    .description('back up a component to the repository (all configured targets, or --name)')
    .addArgument(componentArg())
    .addOption(nameOption())
    .option('--base', 'postgres: a physical base backup (pg_basebackup) for point-in-time recovery; needs the WAL archive')
    .action(async (component: Component, opts: { name?: string; base?: boolean }) => {
      if (opts.base) {
        if (component !== 'postgres') throw new CommanderError(EXIT.usage, 'opsctl.usage', '--base is for postgres only');
        outcome = await (await import('./commands/pitr-commands.js')).baseBackupCommand(await context(), opts.name);
        return;
      }
      outcome = await (await backupCmds()).backupCommand(await context(), component, opts.name);
    });

  program
    .command('verify')
    .description('prove a backup restorable: checksum, catalogue, full read (levels 1-3)')
    .addArgument(componentArg())
    .argument('[backup-id]', 'a backup id or "latest"', 'latest')
    .addOption(nameOption())
    .addOption(
      new Option('--full-reader <reader>', 'postgres level 3: the native archive reader, or pg_restore writing the whole script (the earlier, slower path)')
        .choices(['native', 'pg_restore'])
        .default('native'),
    )
    .option('--base', 'postgres: verify a base backup and the WAL chain after it (point-in-time recovery)')
    .action(async (component: Component, id: string, opts: { name?: string; fullReader: FullReader; base?: boolean }) => {
      if (opts.base) {
        if (component !== 'postgres') throw new CommanderError(EXIT.usage, 'opsctl.usage', '--base is for postgres only');
        outcome = await (await import('./commands/pitr-commands.js')).verifyBaseCommand(await context(), id, opts.name);
        return;
      }
      outcome = await (await backupCmds()).verifyCommand(await context(), component, id, opts.name, opts.fullReader);
    });

  program
    .command('restore')
    .description('restore a backup into a target (refuses a non-empty target unless --confirm repeats its name)')
    .addArgument(componentArg())
    .argument('<backup-id>', 'a backup id or "latest"')
    .option('--target <target>', 'postgres: database name or postgresql:// URL; redis: redis:// URL (logical) or data directory (rdb); knowledge: directory')
    .option('--confirm <target>', 'repeat the target name to restore over existing data')
    .option('--clean', 'postgres: drop objects before recreating them')
    .option('--replace', 'redis: overwrite keys that exist in the target')
    .option('--jobs <n>', 'parallel restore with n jobs (stages a decoded copy in --work-dir)', positiveInt, 1)
    .option('--work-dir <dir>', 'where a parallel restore stages its copy (default: OS temp dir)')
    .addOption(nameOption())
    .option('--base', 'postgres: restore a base backup into --pgdata and recover from the WAL archive (point in time); with --target DB instead, the database as at that moment copied into DB')
    .option('--pgdata <dir>', 'with --base: an empty directory for the restored cluster')
    .option('--to <time>', 'with --base: recover up to this time (recovery_target_time)')
    .option('--to-name <restore-point>', 'with --base: up to this restore point (pg_create_restore_point)')
    .option('--to-lsn <lsn>', 'with --base: up to this LSN')
    .option('--start', 'with --base: start the restored cluster and wait until recovery reached the target and it was promoted')
    .option('--port <port>', 'with --start: the port to start it on', positiveInt)
    .option('--keep-archiving', "with --base: keep archive_mode as the original had it (the restored cluster archives its new timeline)")
    .action(async (component: Component, id: string, opts: { target?: string; confirm?: string; clean?: boolean; replace?: boolean; jobs: number; workDir?: string; name?: string; base?: boolean; pgdata?: string; to?: string; toName?: string; toLsn?: string; start?: boolean; port?: number; keepArchiving?: boolean }) => {
      if (opts.base && opts.target && !opts.pgdata) {
        // To a moment, into a database: recovered on a scratch cluster, copied from there.
        if (component !== 'postgres' || opts.start) throw new CommanderError(EXIT.usage, 'opsctl.usage', '--base --target restores postgres into a database (no --start: the scratch cluster is the restore\'s own)');
        outcome = await (await import('./commands/pitr-commands.js')).restoreBaseIntoDatabaseCommand(await context(), {
          name: opts.name,
          backupId: id,
          target: { time: opts.to, name: opts.toName, lsn: opts.toLsn },
          into: opts.target,
          confirm: opts.confirm,
          clean: opts.clean ?? false,
          workDir: opts.workDir,
          configPath: resolveConfigPath(globals().config),
        });
        return;
      }
      if (opts.base) {
        if (component !== 'postgres' || !opts.pgdata) throw new CommanderError(EXIT.usage, 'opsctl.usage', '--base restores postgres into --pgdata DIR, or into a database with --target DB');
        if (opts.start && !opts.port) throw new CommanderError(EXIT.usage, 'opsctl.usage', '--start needs --port P');
        outcome = await (await import('./commands/pitr-commands.js')).restoreBaseCommand(await context(), {
          name: opts.name,
          backupId: id,
          pgdata: opts.pgdata,
          target: { time: opts.to, name: opts.toName, lsn: opts.toLsn },
          start: opts.start ? { port: opts.port! } : undefined,
          keepArchiving: opts.keepArchiving ?? false,
          configPath: resolveConfigPath(globals().config),
        });
        return;
      }
      if (!opts.target) throw new CommanderError(EXIT.usage, 'opsctl.usage', "required option '--target <target>' not specified");
      outcome = await (await backupCmds()).restoreCommand(await context(), component, {
        replace: opts.replace ?? false,
        name: opts.name,
        backupId: id,
        target: opts.target!,
        confirm: opts.confirm,
        clean: opts.clean ?? false,
        jobs: opts.jobs,
        workDir: opts.workDir,
      });
    });

  const backups = program.command('backups').description('inspect the repository');
  backups
    .command('list')
    .description('backups with age, size, codec and verification state, newest first')
    .addArgument(new Argument('[component]', 'postgres | redis | knowledge').choices(['postgres', 'redis', 'knowledge']))
    .addOption(nameOption())
    .action(async (component: Component | undefined, opts: { name?: string }) => {
      outcome = await (await backupCmds()).backupsListCommand(await context(), component, opts.name);
    });

  program
    .command('info')
    .description("every recoverable window per database (base backups and WAL, cut where a restore would stop), restore points, dumps, and the exact restore commands (pgBackRest's info)")
    .addOption(nameOption())
    .action(async (opts: { name?: string }) => {
      const { infoCommand } = await import('./commands/info-command.js');
      outcome = await infoCommand(await context(), { name: opts.name, configPath: resolveConfigPath(globals().config) });
    });

  program
    .command('prune')
    .description('apply retention: delete old backups but always keep the newest verified ones')
    .option('--dry-run', 'print the plan, delete nothing')
    .action(async (opts: { dryRun?: boolean }) => {
      outcome = await (await backupCmds()).pruneCommand(await context(), opts.dryRun ?? false);
    });

  program
    .command('drill')
    .description('restore the newest backup into a scratch database, server or directory and compare it with the backup (level 4); all: every target, with RTO and RPO')
    .addArgument(new Argument('<component>', 'postgres, redis, knowledge, or all').choices(['postgres', 'redis', 'knowledge', 'all']))
    .addOption(nameOption())
    .option('--html <file>', 'drill all: also write the report as an HTML page')
    .option('--pitr', 'postgres: restore the newest base backup to a restore point made now, on a scratch cluster')
    .action(async (component: Component | 'all', opts: { name?: string; html?: string; pitr?: boolean }) => {
      if (opts.pitr && component !== 'postgres') throw new CommanderError(EXIT.usage, 'opsctl.usage', '--pitr is for postgres only');
      outcome = await (await backupCmds()).drillCommand(await context(), component, opts.name, opts.html, { configPath: resolveConfigPath(globals().config), only: opts.pitr ?? false });
    });

  const parseAt = (value: string): Date => {
    const d = new Date(value);
    if (Number.isNaN(d.getTime())) throw new CommanderError(EXIT.usage, 'opsctl.invalidNumber', `--at: not a date/time: "${value}"`);
    return d;
  };
  const partitions = program.command('partitions').description('monthly partitions: create ahead, retire past retention');
  partitions
    .command('ensure')
    .description('create missing partitions up to N periods ahead and drop those past retention')
    .option('--dry-run', 'print the plan as the exact SQL, change nothing')
    .option('--table <table...>', 'only these configured tables')
    .option('--at <time>', 'act as if it were this time (ISO 8601), e.g. to preview next month', parseAt)
    .option('--confirm-drop', 'with --at and without --dry-run: drop what retention at that time drops (never the real current period or later)')
    .option('--move-limit <rows>', 'for this run (a maintenance window): move up to this many default-partition rows per period instead of moveDefaultRowsLimit; each period is its own transaction', positiveInt)
    .addOption(nameOption())
    .action(async (opts: { dryRun?: boolean; table?: string[]; at?: Date; name?: string; confirmDrop?: boolean; moveLimit?: number }) => {
      outcome = await (await partitionCmds()).partitionsEnsureCommand(await context(), { dryRun: opts.dryRun ?? false, tables: opts.table, at: opts.at, name: opts.name, confirmDrop: opts.confirmDrop ?? false, moveLimit: opts.moveLimit });
    });
  partitions
    .command('status')
    .description('coverage ahead, oldest partition, rows in the default partition, gaps (exit 1 when coverage is low)')
    .option('--at <time>', 'evaluate as if it were this time (ISO 8601)', parseAt)
    .addOption(nameOption())
    .action(async (opts: { at?: Date; name?: string }) => {
      outcome = await (await partitionCmds()).partitionsStatusCommand(await context(), { at: opts.at, name: opts.name });
    });

  program
    .command('status')
    .description('backups and partitions against their thresholds, PostgreSQL and Redis live: OK / DEGRADED / DOWN (exit 0 / 1 / 2)')
    .option('--emit', 'also push the age gauges and last-success timestamps the stale alarms use')
    .option('--html <file>', 'also write the report as an HTML page (green / yellow / red per check)')
    .addOption(remoteOption())
    .action(async (opts: { emit?: boolean; html?: string; remote?: string }) => {
      if (opts.remote) {
        const remote = await import('./commands/remote-commands.js');
        outcome = await remote.remoteStatusCommand(opts.remote, await remote.defaultRemoteDeps(signal), { html: opts.html });
        return;
      }
      outcome = await (await import('./commands/status-command.js')).statusCommand(await context(), { emit: opts.emit ?? false, html: opts.html });
    });

  program
    .command('healthcheck')
    .description('reachability of the repository, PostgreSQL and Redis: OK / DEGRADED / DOWN (exit 0 / 1 / 2); usable as a container health check')
    .option('--timeout <ms>', 'per check', positiveInt, 5_000)
    .addOption(remoteOption())
    .action(async (opts: { timeout: number; remote?: string }) => {
      if (opts.remote) {
        const remote = await import('./commands/remote-commands.js');
        outcome = await remote.remoteHealthcheckCommand(opts.remote, await remote.defaultRemoteDeps(signal));
        return;
      }
      outcome = await (await import('./commands/status-command.js')).healthcheckCommand(await context(), { timeoutMs: opts.timeout });
    });

  const configCmd = program.command('config').description('the configuration file');
  configCmd
    .command('validate')
    .description('check the configuration and report every problem at once')
    .action(async () => {
      outcome = (await configCmds()).configValidateCommand(config());
    });
  configCmd
    .command('show')
    .description('print the effective configuration (environment overrides applied, secrets masked)')
    .action(async () => {
      outcome = (await configCmds()).configShowCommand(config());
    });

  const parameterOption = () => new Option('--parameter <name>', 'the SSM parameter of the deployed stack (/<stackName>/ops-config)').env('OPS_CONFIG_PARAMETER').makeOptionMandatory();
  // Validated without this shell's environment: in AWS no DATABASE_URL fills a gap in the file.
  const deployableConfig = (): OpsConfig => loadConfig(resolveConfigPath(globals().config), {});
  const ssmStore = async (name: string) => {
    const [{ ssmConfigStore }, { SSMClient }] = await Promise.all([import('../config/remote.js'), import('@aws-sdk/client-ssm')]);
    return ssmConfigStore(name, new SSMClient({}));
  };
  configCmd
    .command('diff')
    .description('compare the local file with the deployed configuration (exit 1 when they differ)')
    .addOption(parameterOption())
    .action(async (opts: { parameter: string }) => {
      outcome = await (await configCmds()).configDiffCommand(deployableConfig(), await ssmStore(opts.parameter));
    });
  configCmd
    .command('push')
    .description('validate the local file, then replace the deployed configuration (no redeploy; functions re-read it within a minute)')
    .addOption(parameterOption())
    .action(async (opts: { parameter: string }) => {
      outcome = await (await configCmds()).configPushCommand(deployableConfig(), await ssmStore(opts.parameter));
    });

  // The WAL archive: called by PostgreSQL itself (archive_command, restore_command), once per file.
  const wal = program.command('wal').description('PostgreSQL WAL archive in the repository (archive_command / restore_command)');
  const walCmds = () => import('./commands/wal-commands.js');
  // fetch, check, status: no metrics sinks (fetch runs while the server is down). push and
  // receive report through context(), whose sinks load only when configured.
  const light = () => createJobContext(config(), stderrLog(globals().verbose ?? false), { signal });
  // What the WAL spool's records are for: this configuration file and the repository overrides.
  const spoolSourceOf = async () => (await import('../wal/spool.js')).spoolSource(resolveConfigPath(globals().config), process.env);
  wal
    .command('push')
    .description("archive one WAL file, durably; archive_command = 'opsctl wal push %p --name N --resident'")
    .argument('[path]', 'the file PostgreSQL hands over (%p)')
    .addOption(nameOption())
    .option('--parallel <n>', 'with a backlog in archive_status/, push this many files at once', positiveInt, 4)
    .option('--batch <n>', 'with a backlog, push at most this many files per call, this one included', positiveInt, 256)
    .option('--spool <dir>', 'where files pushed ahead are recorded (default: the temp directory)')
    .option('--resident', 'hand the file to a resident pusher (started by the first call, gone when idle): no Node start per segment')
    .option('--serve', 'be the resident pusher of this spool (started by --resident; not for archive_command)')
    .option('--idle <seconds>', 'with --serve: leave after this long without work', positiveInt, 600)
    .action(async (file: string | undefined, opts: { name?: string; parallel: number; batch: number; spool?: string; resident?: boolean; serve?: boolean; idle: number }) => {
      const source = await spoolSourceOf();
      if (opts.serve) {
        if (file !== undefined) throw new CommanderError(EXIT.usage, 'opsctl.usage', 'wal push --serve takes no file: it serves the spool until idle');
        outcome = await (await walCmds()).walServeCommand(await context(), { ...opts, source });
        return;
      }
      if (file === undefined) throw new CommanderError(EXIT.usage, 'opsctl.usage', "wal push needs the file PostgreSQL hands over: archive_command = 'opsctl wal push %p --name N'");
      outcome = await (await walCmds()).walPushCommand(await context(), file, { ...opts, source, configPath: resolveConfigPath(globals().config) });
    });
  wal
    .command('fetch')
    .description("restore one WAL file, checked; restore_command = 'opsctl wal fetch %f %p --name N'")
    .argument('<file>', 'the name PostgreSQL asks for (%f)')
    .argument('<dest>', 'where to write it (%p)')
    .addOption(nameOption())
    .option('--ahead <n>', 'also fetch and check this many following segments into the spool (0: none)', (v: string) => Number(v), 32)
    .option('--spool <dir>', 'where segments fetched ahead wait (default: the temp directory)')
    .action(async (file: string, dest: string, opts: { name?: string; ahead: number; spool?: string }) => {
      outcome = await (await walCmds()).walFetchCommand(light(), file, dest, { ...opts, source: await spoolSourceOf() });
    });
  wal
    .command('check')
    .description("switch WAL on the server, wait until that segment is in the archive, fetch it back and check it (pgBackRest's check; exit 0 ok, 2 broken, naming what)")
    .addOption(nameOption())
    .option('--timeout <seconds>', 'how long to wait for the segment to reach the archive', positiveInt, 60)
    .action(async (opts: { name?: string; timeout: number }) => {
      outcome = await (await walCmds()).walCheckCommand(light(), opts);
    });
  wal
    .command('receive')
    .description('stream WAL over a physical replication slot (pg_receivewal) and upload the open segment every interval, for an RPO of seconds; runs until stopped (postgres[].pitr.receive.enabled)')
    .addOption(nameOption())
    .option('--create-slot', 'create the replication slot if it does not exist (the primary then keeps WAL until the receiver reads it)')
    .option('--dir <dir>', "pg_receivewal's directory (default: the temp directory)")
    .option('--interval <ms>', 'upload the open segment this often (default: pitr.receive.intervalMs, 1000)', positiveInt)
    .action(async (opts: { name?: string; createSlot?: boolean; dir?: string; interval?: number }) => {
      outcome = await (await walCmds()).walReceiveCommand(await context(), opts);
    });
  wal
    .command('status')
    .description('archived range per timeline, missing segments, newest segment age (exit 0 ok, 1 stale, 2 gap)')
    .addOption(nameOption())
    .action(async (opts: { name?: string }) => {
      outcome = await (await walCmds()).walStatusCommand(light(), opts);
    });

  // Disaster recovery reads no configuration: the repository and the backups' own carried config say everything.
  const dr = program.command('dr').description('disaster recovery from the repository alone (no configuration needed)');
  const repositoryOption = () => new Option('--repository <url>', 'the repository: file:///abs/path or s3://bucket/prefix').env('OPS_REPOSITORY_URL').makeOptionMandatory();
  const collect = (value: string, previous: string[]) => [...previous, value];
  dr.command('plan')
    .description('list what the repository can restore, from which backups, with the exact commands')
    .addOption(repositoryOption())
    .action(async (opts: { repository: string }) => {
      outcome = await (await import('./commands/dr-commands.js')).drPlanCommand(opts.repository);
    });
  dr.command('restore')
    .description('restore targets from the repository alone: --target COMPONENT/NAME=TARGET for each (see dr plan)')
    .addOption(repositoryOption())
    .option('--target <assignment>', 'COMPONENT/NAME=TARGET: a postgresql:// URL, a redis:// URL or Redis data directory, a directory (repeat for each)', collect, [])
    .option('--backup <assignment>', 'COMPONENT/NAME=BACKUP_ID (default: the newest verified backup)', collect, [])
    .option('--confirm <assignment>', 'COMPONENT/NAME=NAME_OF_TARGET: restore into a non-empty target (its database name, host:port or path)', collect, [])
    .action(async (opts: { repository: string; target: string[]; backup: string[]; confirm: string[] }) => {
      outcome = await (await import('./commands/dr-commands.js')).drRestoreCommand(opts.repository, opts, stderrLog(globals().verbose ?? false));
    });

  program
    .command('run')
    .description('run a scheduled job now, with its result (nightly = every job in order, the local cycle)')
    .addArgument(new Argument('<job>', 'the job').choices(['nightly', 'backup-postgres', 'backup-redis', 'backup-knowledge', 'verify', 'partitions', 'drill', 'prune', 'status']))
    .addOption(nameOption())
    .option('--sample-data', 'nightly: create missing databases with the seeds\' schema and generated rows (demo)')
    .option('--sample-calls <n>', 'calls to generate with --sample-data', positiveInt, 20_000)
    .addOption(remoteOption())
    .option('--no-wait', 'with --remote: start the task and return its ARN and log stream')
    .action(async (job: string, opts: { sampleData?: boolean; sampleCalls: number; name?: string; remote?: string; wait: boolean }) => {
      if (opts.remote) {
        const remote = await import('./commands/remote-commands.js');
        outcome = await remote.remoteRunCommand(opts.remote, job as import('./commands/run-command.js').JobName, await remote.defaultRemoteDeps(signal), { name: opts.name, wait: opts.wait });
        return;
      }
      const { runJobCommand } = await import('./commands/run-command.js');
      outcome = await runJobCommand(await context(), job as import('./commands/run-command.js').JobName, { name: opts.name, sampleData: opts.sampleData ?? false, sampleCalls: opts.sampleCalls });
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (error) {
    endProgressLine();
    for (const ctx of contexts) await ctx.metrics.flush();
    return reportError(error, globals().json ?? false, (t) => scrubAll(t, secrets));
  }
  // Once per command, after the job: a metrics failure is logged, never the job's.
  for (const ctx of contexts) await ctx.metrics.flush();
  endProgressLine();
  if (!outcome) return EXIT.ok;
  if (globals().json) print(stringifyPrepared(outcome.json) + '\n');
  else print(outcome.text + '\n');
  return outcome.exitCode;
}

/** The secrets of the environment's connection strings and password variables. */
function envSecrets(env: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (!value) continue;
    if (/_URL$/.test(name)) out.push(...secretsOf(value));
    if (SECRET_ENV.test(name) && value.length >= 4) out.push(value);
  }
  return out;
}

/** Scrubbed as they are and as JSON would escape them. */
function scrubAll(text: string, secrets: Set<string>): string {
  if (secrets.size === 0) return text;
  return scrub(text, [...secrets].flatMap((s) => [s, JSON.stringify(s).slice(1, -1)]));
}

function reportError(error: unknown, json: boolean, clean: (text: string) => string = (t) => t): ExitCode {
  if (error instanceof CommanderError) {
    // --help and --version end here too, successfully.
    if (error.exitCode === 0 || error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return EXIT.ok;
    if (error.code.startsWith('opsctl.')) process.stderr.write(`error: ${error.message}\n`);
    return EXIT.usage;
  }
  const exitCode: ExitCode = error instanceof OpsError ? error.exitCode : EXIT.failed;
  const code = error instanceof OpsError ? error.code : 'UNEXPECTED';
  if (json) {
    const problems = error instanceof ConfigError ? error.problems : undefined;
    process.stdout.write(clean(JSON.stringify({ error: { code, message: errorMessage(error), ...(problems ? { problems } : {}) } }, null, 2) + '\n'));
  }
  process.stderr.write(clean(`error: ${errorMessage(error)}\n`));
  if (!(error instanceof OpsError) && process.env.OPS_DEBUG) process.stderr.write(`${(error as Error)?.stack}\n`);
  return exitCode;
}
