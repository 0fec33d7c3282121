import { readdir, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { ensureSampleDatabase } from '../src/demo/sample-database.js';
import { fixed, measure, mib, OPSCTL_SH, table, WORK, type Measured } from './lib.js';
import { startPostgresServer } from '../test/helpers/pg-server.js';
import pg from 'pg';

const SERVER = process.env.OPS_BENCH_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const CALLS_1X = Number(process.env.OPS_BENCH_CALLS ?? 140_000);
/** The verify function's time limit, and the share of it the estimate allows for the read. */
const LAMBDA_SECONDS = 900;
const LAMBDA_SHARE = 0.8;

function dbUrl(name: string): string {
  const u = new URL(SERVER);
  u.pathname = `/${name}`;
  return u.toString();
}

interface Row {
  label: string;
  native: Measured;
  script: Measured;
  bare: Measured;
  /** Node's start, then pg_restore --list of the same payload, in series (floorCommands). */
  floor: Measured;
  /** opsctl's start, then pg_restore --list of the same payload, in series (floorCommands). */
  floorOpsctl: Measured;
  stored: number;
}

/** Rounds for the many-table schemas: their times are tenths of a second, where one round in three is off by a quarter here. */
const MANY_ROUNDS = 7;
// --list stops reading after the table of contents, so zstd may die of SIGPIPE: only pg_restore's status counts (measure() runs with pipefail).
const listCommand = (payload: string) => `{ set +o pipefail; zstd -q -d -c ${payload} | pg_restore --list --section=pre-data > /dev/null; }`;
/**
 * The least a verify can take that is a Node process (the design card) and runs `pg_restore
 * --list` (DESIGN.md, level 2): it must start and read the manifest before it knows which
 * payload to hand to --list, so at least its start and then --list of the payload, as this
 * machine runs pg_restore (Debian's pg_wrapper), in series. Two starts: Node's own with no
 * script (`node -e 0`: no program at all), and opsctl's (`bin/opsctl --version`: Node with
 * opsctl's bundle loaded, no command run). Neither reads configuration, catalogue or manifest,
 * reads the data or writes a record.
 */
const floorCommands = (payload: string) => [`node -e 0 && ${listCommand(payload)}`, `${OPSCTL_SH} --version > /dev/null && ${listCommand(payload)}`];

/** What every database is measured with, alternately: the two verifies, the bare read, the two floors (rowOf's order). */
const commandsFor = (cfg: string, payload: string) => [
  `${OPSCTL_SH} --config ${cfg} --json verify postgres`,
  `${OPSCTL_SH} --config ${cfg} --json verify postgres --full-reader pg_restore`,
  `zstd -q -d -c ${payload} | pg_restore -f /dev/null`,
  ...floorCommands(payload),
];

function rowOf(label: string, [native, script, bare, floor, floorOpsctl]: Measured[], stored: number): Row {
  return { label, native: native!, script: script!, bare: bare!, floor: floor!, floorOpsctl: floorOpsctl!, stored };
}

/** Runs the commands alternately, `n` rounds, and keeps each one's median time and highest RSS. */
async function alternate(commands: string[], n = 3): Promise<Measured[]> {
  const runs: Measured[][] = commands.map(() => []);
  for (let round = 0; round < n; round += 1) {
    for (const [i, c] of commands.entries()) runs[i]!.push(await measure(c));
  }
  return runs.map((r) => {
    const sorted = [...r].sort((a, b) => a.seconds - b.seconds);
    return { ...sorted[Math.floor(n / 2)]!, rssMiB: Math.max(...r.map((m) => m.rssMiB)) };
  });
}

async function one(label: string, db: string, calls: number, rounds = 3): Promise<Row> {
  process.stderr.write(`preparing ${db} (${calls} calls)...\n`);
  await ensureSampleDatabase(SERVER, db, calls);
  const repo = path.join(WORK, `verify-${db}`);
  await rm(repo, { recursive: true, force: true });
  await mkdir(WORK, { recursive: true });
  const cfg = path.join(WORK, `verify-${db}.json`);
  await writeFile(cfg, JSON.stringify({ repository: { url: `file://${repo}` }, postgres: [{ name: 'bench', url: dbUrl(db) }] }));
  await measure(`${OPSCTL_SH} --config ${cfg} backup postgres`);
  const dir = path.join(repo, 'postgres', 'bench');
  const [id] = await readdir(dir);
  const payload = path.join(dir, id!, (await readdir(path.join(dir, id!))).find((f) => f.endsWith('.zst'))!);
  const stored = (await stat(payload)).size;
  process.stderr.write(`${label}: native verify, pg_restore-script verify, bare zstd | pg_restore, floor (alternating, ${rounds} rounds)\n`);
  const measured = await alternate(commandsFor(cfg, payload), rounds);
  await rm(repo, { recursive: true, force: true });
  return rowOf(label, measured, stored);
}

/**
 * A schema of `tables` small tables (one row each) on a server of its own: pg_dump locks
 * every table in one transaction, so max_locks_per_transaction is raised for it. What this
 * measures is the table of contents: verify against pg_restore's bare read of the same payload.
 */
async function manyTables(tables: number): Promise<Row> {
  const server = await startPostgresServer({ settings: { max_locks_per_transaction: String(Math.ceil(tables / 50) + 64) } });
  try {
    const c = new pg.Client({ connectionString: server.url });
    await c.connect();
    process.stderr.write(`creating ${tables} tables...\n`);
    for (let i = 0; i < tables; i += 1000) {
      await c.query(`do $$ begin for i in ${i + 1}..${Math.min(tables, i + 1000)} loop execute format('create table t%s (id int primary key, v text); insert into t%s values (1, %L)', i, i, 'row'); end loop; end $$`);
    }
    await c.end();
    const repo = path.join(WORK, `verify-tables-${tables}`);
    await rm(repo, { recursive: true, force: true });
    await mkdir(WORK, { recursive: true });
    const cfg = path.join(WORK, `verify-tables-${tables}.json`);
    await writeFile(cfg, JSON.stringify({ repository: { url: `file://${repo}` }, postgres: [{ name: 'bench', url: server.url }] }));
    await measure(`${OPSCTL_SH} --config ${cfg} backup postgres`);
    const dir = path.join(repo, 'postgres', 'bench');
    const [id] = await readdir(dir);
    const payload = path.join(dir, id!, (await readdir(path.join(dir, id!))).find((f) => f.endsWith('.zst'))!);
    const stored = (await stat(payload)).size;
    process.stderr.write(`${tables} tables: native verify, pg_restore-script verify, bare zstd | pg_restore, floor (alternating, ${MANY_ROUNDS} rounds)\n`);
    const measured = await alternate(commandsFor(cfg, payload), MANY_ROUNDS);
    await rm(repo, { recursive: true, force: true });
    return rowOf(`${tables.toLocaleString('en')} tables`, measured, stored);
  } finally {
    await server.remove();
  }
}

/** Whether the floors leave room for the 1.2x target at all. */
function floorVerdict(m: Row): string {
  const target = 1.2 * m.bare.seconds;
  if (m.floorOpsctl.seconds <= target) return '';
  const which = m.floor.seconds > target ? "even Node's start and --list alone are" : "opsctl's start and --list alone are";
  return `: ${which} above the target (${fixed(target)} s), before any of the verify's own work`;
}

export async function benchVerify(): Promise<string> {
  const tableCounts = (process.env.OPS_BENCH_TABLES ?? '5000,50000').split(',').filter(Boolean).map(Number);
  // The fixed cost (start-up, configuration, catalogue, the verification record) measured on
  // its own: a sample database of 10 calls, where the read itself takes a few milliseconds.
  const small = await one('small', 'ops_bench_small', 10, 7);
  const rows = [await one('1x', 'ops_bench_1x', CALLS_1X), await one('4x', 'ops_bench_4x', CALLS_1X * 4)];
  const many: Row[] = [];
  for (const n of tableCounts) many.push(await manyTables(n));
  const out = [`### Verification levels 1-3 against pg_restore's bare read (zstd payload on file://; median of 3 alternating rounds, 7 for the small database and the many-table schemas; highest RSS)\n`];
  out.push(
    table(
      [small, ...rows, ...many].flatMap((r) => [
        [r.label, mib(r.stored), 'opsctl verify postgres (native reader)', fixed(r.native.seconds), fixed(r.native.rssMiB, 0), fixed(r.native.seconds / r.bare.seconds)],
        [r.label, mib(r.stored), 'opsctl verify postgres --full-reader pg_restore (earlier path)', fixed(r.script.seconds), fixed(r.script.rssMiB, 0), fixed(r.script.seconds / r.bare.seconds)],
        [r.label, mib(r.stored), 'zstd -dc payload | pg_restore -f /dev/null', fixed(r.bare.seconds), fixed(r.bare.rssMiB, 0), '1.00'],
        [r.label, mib(r.stored), 'floor: node -e 0, then zstd -dc payload | pg_restore --list --section=pre-data', fixed(r.floor.seconds), fixed(r.floor.rssMiB, 0), fixed(r.floor.seconds / r.bare.seconds)],
        [r.label, mib(r.stored), 'floor: opsctl --version, then the same --list', fixed(r.floorOpsctl.seconds), fixed(r.floorOpsctl.rssMiB, 0), fixed(r.floorOpsctl.seconds / r.bare.seconds)],
      ]),
      ['database', 'stored MiB', 'command', 'seconds', 'peak RSS MiB', 'x bare read'],
    ),
  );
  const [r1, r4] = rows as [Row, Row];
  // Throughput of the larger run, whose fixed costs weigh least.
  const rate = r4.stored / r4.native.seconds;
  out.push(
    '',
    `- fixed cost (the small database, ${fixed(small.stored / 1024, 1)} KiB stored, median of 7): native verify ${fixed(small.native.seconds)} s vs bare read ${fixed(small.bare.seconds)} s = ${fixed(small.native.seconds - small.bare.seconds)} s above it (target <= 0.25 s); 1x less its bare read: ${fixed(r1.native.seconds - r1.bare.seconds)} s`,
    `- native verify vs bare read: 1x ${fixed(r1.native.seconds / r1.bare.seconds)}x, 4x ${fixed(r4.native.seconds / r4.bare.seconds)}x (target <= 1.0x); earlier path 1x ${fixed(r1.script.seconds / r1.bare.seconds)}x, 4x ${fixed(r4.script.seconds / r4.bare.seconds)}x`,
    `- peak RSS native 1x ${fixed(r1.native.rssMiB, 0)} MiB, 4x ${fixed(r4.native.rssMiB, 0)} MiB (target <= 150, flat: 4x/1x ${fixed(r4.native.rssMiB / r1.native.rssMiB)})`,
    ...many.map(
      (m) =>
        `- ${m.label}: native verify ${fixed(m.native.seconds)} s vs bare read ${fixed(m.bare.seconds)} s = ${fixed(m.native.seconds / m.bare.seconds)}x (target <= 1.2x), peak RSS ${fixed(m.native.rssMiB, 0)} MiB; earlier path ${fixed(m.script.seconds / m.bare.seconds)}x. Floors (a start, then pg_restore --list, in series; see floorCommands): Node's ${fixed(m.floor.seconds)} s = ${fixed(m.floor.seconds / m.bare.seconds)}x, opsctl's ${fixed(m.floorOpsctl.seconds)} s = ${fixed(m.floorOpsctl.seconds / m.bare.seconds)}x${floorVerdict(m)}`,
    ),
    `- throughput at 4x: ${mib(rate)} MiB/s of stored (zstd) payload. At that rate ${fixed(LAMBDA_SHARE * 100, 0)} % of the verify Lambda's ${LAMBDA_SECONDS} s reads ${fixed((rate * LAMBDA_SECONDS * LAMBDA_SHARE) / 1073741824, 1)} GiB stored; the function has 2 of this machine's cores' worth only at 3,538 MB memory or more, so halve it for the stack's 2,048 MB: about ${fixed((rate * LAMBDA_SECONDS * LAMBDA_SHARE) / 2 / 1073741824, 1)} GiB. Larger dumps: the verify task on Fargate (opsctl job verify), no time limit.`,
  );
  return out.join('\n');
}
