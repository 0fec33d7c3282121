import { pipeline } from 'node:stream/promises';
import { decoder } from '../backup/codec.js';
import { VERIFICATION } from '../backup/layout.js';
import { LEVEL_NAMES, type LevelResult, type Manifest, type StreamCodec, type Verification } from '../backup/manifest.js';
import { writeRecord, type BackupEntry } from '../backup/catalog.js';
import { errorMessage } from '../errors.js';
import type { Log } from '../log.js';
import { parseQualifiedName } from '../postgres/identifiers.js';
import { runTool, startTool, type RunningTool } from '../process/tool.js';
import type { Writable } from 'node:stream';
import { parsePgToolVersion, toolPath } from '../process/tools.js';
import type { Repository } from '../repository/repository.js';
import { HashingStream, Tee } from '../util/streams.js';
import { CopyRowCounter } from './copy-counter.js';

export interface VerifyDeps {
  repo: Repository;
  log: Log;
  env?: NodeJS.ProcessEnv;
  now?: () => Date;
  onProgress?: ((bytes: number) => void) | undefined;
}

/** Tables whose absence from the archive's catalogue fails level 2, beyond those the manifest recorded. */
export interface VerifyExpectations {
  extraTables?: string[];
}

/**
 * Verification levels 1-3 of DESIGN.md in one streaming pass: the stored bytes are
 * hashed (1) while the decoded archive feeds `pg_restore --list` (2) and a full
 * `pg_restore -f -` whose COPY blocks are counted (3). No temporary file.
 */
export async function verifyPostgresBackup(entry: BackupEntry, deps: VerifyDeps, expect: VerifyExpectations = {}): Promise<Verification> {
  const manifest = entry.manifest;
  if (!manifest) throw new Error(`backup ${entry.id} has no manifest`);
  const env = deps.env ?? process.env;
  const now = deps.now ?? (() => new Date());
  const started = now();
  const pgRestore = toolPath('pg_restore', env);
  const tools: Record<string, string> = {};
  try {
    tools.pg_restore = parsePgToolVersion(await runTool('pg_restore', pgRestore, ['--version'], env)).version;
  } catch (error) {
    tools.pg_restore = `unavailable: ${errorMessage(error)}`;
  }

  const hasher = new HashingStream(deps.onProgress);
  // Each pg_restore gets its own decoder, wired to it at the OS level: only the stored
  // (compressed) bytes pass through this process, plus the SQL text that is counted.
  const list = restoreBranch('pg_restore --list', pgRestore, ['--list'], manifest.payload.streamCodec, env);
  const full = restoreBranch('pg_restore', pgRestore, ['--file=-'], manifest.payload.streamCodec, env);
  let listing = '';
  list.tool.child.stdout!.setEncoding('utf8').on('data', (c: string) => (listing += c));
  const counter = new CopyRowCounter();
  const counted = pipeline(full.tool.child.stdout!, counter);

  let readError: unknown;
  try {
    const source = await deps.repo.get(manifest.payload.key);
    await pipeline(source, hasher, new Tee([list.input, full.input]));
  } catch (error) {
    readError = error;
    // Whatever broke, every process downstream must end, or its exit would be awaited forever.
    list.kill();
    full.kill();
  }
  // --list stops reading after the table of contents, so its decoder may die of a broken
  // pipe: only pg_restore's own verdict counts on that branch.
  const [listOutcome, fullOutcome, decOutcome] = await Promise.allSettled([
    list.tool.done,
    full.tool.done.then(() => counted),
    full.decoded,
  ]);
  list.decoded.catch(() => undefined);

  const levels: LevelResult[] = [];
  levels.push(checksumLevel(manifest, hasher, readError));
  levels.push(catalogueLevel(manifest, listOutcome, listing, expect));
  levels.push(fullReadLevel(fullOutcome, decOutcome, counter));

  const rowCounts = Object.fromEntries([...counter.counts.entries()].sort(([a], [b]) => a.localeCompare(b)));
  const verification = summarize(entry, manifest, levels, started, now(), tools, rowCounts);
  await writeRecord(deps.repo, 'postgres', entry.name, entry.id, VERIFICATION, verification);
  deps.log[verification.ok ? 'info' : 'error'](`verify postgres/${entry.name}/${entry.id}: ${verification.ok ? 'ok' : verification.failure}`, {
    levelPassed: verification.levelPassed,
  });
  return verification;
}

interface RestoreBranch {
  tool: RunningTool;
  input: Writable;
  /** Settles when the decoder (if any) finished. */
  decoded: Promise<void>;
  kill(): void;
}

function restoreBranch(name: string, command: string, args: string[], codec: StreamCodec, env: NodeJS.ProcessEnv): RestoreBranch {
  const dec = decoder(codec);
  const tool = startTool(name, command, args, { stdin: dec ? dec.output : 'pipe', env });
  const input = dec?.input ?? tool.child.stdin!;
  return {
    tool,
    input,
    decoded: dec?.done ?? Promise.resolve(),
    kill() {
      dec?.kill();
      input.destroy();
      tool.kill();
    },
  };
}

function checksumLevel(manifest: Manifest, hasher: HashingStream, readError: unknown): LevelResult {
  const base = { level: 1, name: LEVEL_NAMES[0] };
  if (readError && hasher.bytes === 0) return { ...base, ok: false, detail: `payload unreadable: ${errorMessage(readError)}` };
  const sha = hasher.digest();
  if (hasher.bytes !== manifest.payload.bytes) {
    return { ...base, ok: false, detail: `size ${hasher.bytes} bytes, manifest says ${manifest.payload.bytes}` };
  }
  if (sha !== manifest.payload.sha256) return { ...base, ok: false, detail: `sha256 ${sha} differs from the manifest's ${manifest.payload.sha256}` };
  return { ...base, ok: true, detail: `${hasher.bytes} bytes, sha256 ${sha.slice(0, 16)}…` };
}

function catalogueLevel(manifest: Manifest, outcome: PromiseSettledResult<void>, listing: string, expect: VerifyExpectations): LevelResult {
  const base = { level: 2, name: LEVEL_NAMES[1] };
  if (outcome.status === 'rejected') return { ...base, ok: false, detail: errorMessage(outcome.reason) };
  // "215; 1259 16390 TABLE Other Schema my table postgres": pg_restore prints names raw,
  // so a line cannot be split on spaces. Each expected (schema, name) is looked for as the
  // exact text after "TABLE ", followed by a space and the owner.
  const tableLines: string[] = [];
  for (const line of listing.split('\n')) {
    const m = /^\d+; \d+ \d+ TABLE (?!DATA |ATTACH )(.+)$/.exec(line);
    if (m) tableLines.push(m[1]!);
  }
  const expected = new Map<string, { schema: string; name: string }>();
  for (const t of manifest.tables ?? []) expected.set(`${t.schema}.${t.name}`, t);
  for (const extra of expect.extraTables ?? []) {
    const { schema, name } = parseQualifiedName(extra);
    expected.set(`${schema}.${name}`, { schema, name });
  }
  const present = (t: { schema: string; name: string }) => tableLines.some((rest) => rest.startsWith(`${t.schema} ${t.name} `));
  const missing = [...expected].filter(([, t]) => !present(t)).map(([k]) => k);
  if (missing.length > 0) return { ...base, ok: false, detail: `missing from the archive: ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ` (+${missing.length - 10})` : ''}` };
  return { ...base, ok: true, detail: `${tableLines.length} tables listed, ${expected.size} expected` };
}

function fullReadLevel(full: PromiseSettledResult<unknown>, dec: PromiseSettledResult<unknown>, counter: CopyRowCounter): LevelResult {
  const base = { level: 3, name: LEVEL_NAMES[2] };
  if (dec.status === 'rejected') return { ...base, ok: false, detail: `decompression failed: ${errorMessage(dec.reason)}` };
  if (full.status === 'rejected') return { ...base, ok: false, detail: errorMessage(full.reason) };
  if (!counter.balanced) return { ...base, ok: false, detail: 'archive ended inside a COPY block' };
  const rows = [...counter.counts.values()].reduce((a, b) => a + b, 0);
  return { ...base, ok: true, detail: `${counter.counts.size} tables, ${rows} rows decoded` };
}

export function summarize(
  entry: BackupEntry,
  manifest: Manifest,
  levels: LevelResult[],
  started: Date,
  finished: Date,
  tools: Record<string, string>,
  rowCounts?: Record<string, number>,
  records?: number,
): Verification {
  let levelPassed = 0;
  for (const l of levels) {
    if (!l.ok) break;
    levelPassed = l.level;
  }
  const firstFailure = levels.find((l) => !l.ok);
  return {
    formatVersion: 1,
    backupId: entry.id,
    component: manifest.component,
    name: entry.name,
    verifiedAt: finished.toISOString(),
    ok: firstFailure === undefined,
    levelPassed,
    levels,
    ...(rowCounts ? { rowCounts } : {}),
    ...(records !== undefined ? { records } : {}),
    durationSeconds: (finished.getTime() - started.getTime()) / 1000,
    tools,
    ...(firstFailure ? { failure: `level ${firstFailure.level} (${firstFailure.name}): ${firstFailure.detail ?? 'failed'}` } : {}),
  };
}
