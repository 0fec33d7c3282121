import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Logger } from '@aws-lambda-powertools/logger';
import type { SSMProvider } from '@aws-lambda-powertools/parameters/ssm';
import { configSourceFromEnv } from '../../lambdas/shared/runtime.js';
import { configDiffCommand, configPushCommand } from '../../src/cli/commands/config-commands.js';
import { loadConfig } from '../../src/config/load.js';
import { ssmConfigStore } from '../../src/config/remote.js';
import { ROOT, runCli, tempDir } from '../helpers/cli.js';

/** SSM has no local equivalent: an in-memory parameter behind the SDK client's `send`. */
function fakeSsm() {
  const state = { value: undefined as string | undefined, version: 0, description: '', puts: 0 };
  const send = async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
    switch (command.constructor.name) {
      case 'GetParameterCommand':
        if (state.value === undefined) throw Object.assign(new Error('not found'), { name: 'ParameterNotFound' });
        return { Parameter: { Value: state.value, Version: state.version, LastModifiedDate: new Date() } };
      case 'DescribeParametersCommand':
        return { Parameters: [{ Description: state.description }] };
      case 'PutParameterCommand':
        state.value = command.input.Value as string;
        state.description = command.input.Description as string;
        state.version += 1;
        state.puts += 1;
        return { Version: state.version };
      default:
        throw new Error(`unexpected ${command.constructor.name}`);
    }
  };
  return { state, store: ssmConfigStore('/ops-test/ops-config', { send } as never) };
}

describe('config diff and push (SSM mocked: no local SSM)', () => {
  let dir: string;
  let file: string;
  before(async () => {
    dir = await tempDir('ops-config-');
    file = path.join(dir, 'ops.config.json');
    await writeFile(file, await readFile(path.join(ROOT, 'cdk/stages/example.ops.config.json'), 'utf8'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('push writes the validated file minified, records who pushed, and is a no-op when nothing changed', async () => {
    const { state, store } = fakeSsm();
    const before = await configDiffCommand(loadConfig(file, {}), store);
    assert.equal(before.exitCode, 1);
    assert.ok((before.json as { changes: unknown[] }).changes.length > 0);
    const pushed = await configPushCommand(loadConfig(file, {}), store);
    assert.equal((pushed.json as { version: number }).version, 1);
    assert.deepEqual(JSON.parse(state.value!), JSON.parse(await readFile(file, 'utf8')));
    assert.ok(!state.value!.includes('\n'), 'minified');
    assert.match(state.description, /^opsctl config push by \S+@\S+ from .*ops\.config\.json at \d{4}-/);
    const again = await configPushCommand(loadConfig(file, {}), store);
    assert.equal((again.json as { pushed: boolean }).pushed, false);
    assert.equal(state.puts, 1);
    assert.equal((await configDiffCommand(loadConfig(file, {}), store)).exitCode, 0);
  });

  it('diff names each changed path with the deployed and local values', async () => {
    const { store } = fakeSsm();
    await configPushCommand(loadConfig(file, {}), store);
    const doc = JSON.parse(await readFile(file, 'utf8'));
    doc.postgres[0].backup.retention.maxAgeDays = 14;
    doc.postgres[0].partitions.tables.pop();
    const changed = path.join(dir, 'changed.json');
    await writeFile(changed, JSON.stringify(doc, null, 2));
    const out = await configDiffCommand(loadConfig(changed, {}), store);
    assert.equal(out.exitCode, 1);
    assert.deepEqual((out.json as { changes: unknown[] }).changes, [
      { path: 'postgres.0.backup.retention.maxAgeDays', change: 'changed', from: 30, to: 14 },
      { path: 'postgres.0.partitions.tables.2', change: 'removed', from: { table: 'public.call_tool_calls', interval: 'month', ahead: 3, retention: 12 } },
    ]);
    assert.match(out.text, /postgres\.0\.backup\.retention\.maxAgeDays\s+changed\s+30\s+14/);
  });

  it('push refuses a file too large for an SSM parameter, before any AWS call', async () => {
    const { state, store } = fakeSsm();
    const big = path.join(dir, 'big.json');
    const postgres = Array.from({ length: 120 }, (_, i) => ({ name: `database_${i}`, url: `postgresql://ops_backup@db-${i}.example.internal:5432/database_${i}` }));
    await writeFile(big, JSON.stringify({ postgres }));
    await assert.rejects(configPushCommand(loadConfig(big, {}), store), /bytes minified; an SSM parameter holds at most 8192/);
    assert.equal(state.puts, 0);
    assert.equal(state.value, undefined);
  });

  it('push refuses an invalid file with every problem, before any AWS call (exit 64)', async () => {
    const bad = path.join(dir, 'bad.json');
    await writeFile(bad, JSON.stringify({ postgres: [{ name: 'Bad Name', url: 'postgresql://u:secret@db/x' }], redis: [{ name: 'r', mode: 'aof' }] }));
    // No region and no credentials: a call to SSM would fail differently.
    const r = await runCli(['--config', bad, 'config', 'push', '--parameter', '/x/ops-config'], { env: { AWS_REGION: '', AWS_ACCESS_KEY_ID: '' } });
    assert.equal(r.code, 64);
    for (const p of ['postgres.0.name', 'postgres.0.url', 'redis.0.mode']) assert.match(r.stderr, new RegExp(p.replaceAll('.', '\\.')));
  });
});

describe('running functions pick up a changed parameter without a restart (Powertools SSMProvider mocked)', () => {
  it('new valid version picked up and logged; an invalid one rejected, the previous stays in force', async () => {
    let value = await readFile(path.join(ROOT, 'cdk/stages/example.ops.config.json'), 'utf8');
    const provider = { get: async () => value } as unknown as SSMProvider;
    const lines: string[] = [];
    const logger = new Logger({ serviceName: 'test', logLevel: 'INFO' });
    (logger as unknown as { console: Console }).console = { info: (l: string) => lines.push(l), error: (l: string) => lines.push(l), warn: (l: string) => lines.push(l), debug: () => undefined, log: (l: string) => lines.push(l) } as unknown as Console;
    const source = configSourceFromEnv(logger, { OPS_CONFIG_PARAMETER: '/ops-test/ops-config' }, provider);
    assert.equal((await source.current()).postgres[0]!.backup.retention.maxAgeDays, 30);
    const doc = JSON.parse(value);
    doc.postgres[0].backup.retention.maxAgeDays = 14;
    value = JSON.stringify(doc);
    assert.equal((await source.current()).postgres[0]!.backup.retention.maxAgeDays, 14);
    value = '{"postgres": 3}';
    assert.equal((await source.current()).postgres[0]!.backup.retention.maxAgeDays, 14);
    const logged = lines.join('\n');
    assert.equal(logged.match(/configuration version picked up/g)?.length, 2);
    assert.match(logged, /new configuration rejected; the previous version stays in force/);
  });
});
