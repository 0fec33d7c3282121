import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, chmod, chown, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { restoreCommandFor } from '../../src/cli/commands/restore-command-line.js';
import { shellQuote } from '../../src/util/shell-quote.js';
import { recoverySettings } from '../../src/restore/postgres-pitr.js';
import { tempDir } from '../helpers/cli.js';
import { pgBin } from '../helpers/pg-server.js';
import { postgresGid, postgresUid } from '../helpers/pitr.js';

// Paths and URLs are written by someone else: each of these must reach the program as written.
const HOSTILE = ["$(touch PWNED)", '`touch PWNED`', "it's", 'back\\slash', 'a "quoted" word', '$HOME', 'sp ace'];

describe('restore_command as sh -c runs it (the line PostgreSQL is given)', () => {
  let work = '';
  after(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('shellQuote: sh reads every hostile value back unchanged and runs nothing in it', async () => {
    work = await tempDir('ops-restore-command-');
    for (const v of HOSTILE) {
      const r = spawnSync('sh', ['-c', `printf %s ${shellQuote(v)}`], { cwd: work });
      assert.equal(r.stdout.toString(), v);
    }
    assert.equal(existsSync(path.join(work, 'PWNED')), false);
  });

  it('the whole command: no env(1) exec, and the config path, name, spool and carried URL arrive exactly (a stand-in bin/opsctl records them)', async () => {
    const dir = path.join(work, `bin $(touch PWNED) it's "x"`);
    await mkdir(dir, { recursive: true });
    const record = path.join(work, 'record');
    // The stand-in for bin/opsctl beside opsctl.js: what restore_command runs when the wrapper exists.
    await writeFile(path.join(dir, 'opsctl'), `#!/bin/sh\n{ printf '%s\\n' "$OPS_REPOSITORY_URL" "$OPSCTL_NODE"; for a in "$@"; do printf '%s\\n' "$a"; done; } > ${shellQuote(record)}\n`);
    await chmod(path.join(dir, 'opsctl'), 0o755);
    await writeFile(path.join(dir, 'opsctl.js'), '');
    const argv1 = process.argv[1];
    process.argv[1] = path.join(dir, 'opsctl.js');
    const cfg = path.join(work, "cfg $HOME 'q' \\b.json");
    const url = "file:///tmp/repo $(touch PWNED) 'x'";
    const spool = path.join(work, 'spool `touch PWNED`');
    let command: string;
    try {
      command = restoreCommandFor(cfg, 'main', { OPS_REPOSITORY_URL: url }, spool);
    } finally {
      process.argv[1] = argv1 ?? '';
    }
    assert.doesNotMatch(command, /^env /);
    const r = spawnSync('sh', ['-c', command.replace('%f', '000000010000000000000003').replace('%p', 'pg_wal/RECOVERYXLOG')], { cwd: work });
    assert.equal(r.status, 0, r.stderr.toString());
    assert.deepEqual((await readFile(record, 'utf8')).split('\n').slice(0, -1), [url, process.execPath, '--config', cfg, 'wal', 'fetch', '000000010000000000000003', 'pg_wal/RECOVERYXLOG', '--name', 'main', '--spool', spool]);
    assert.equal(existsSync(path.join(work, 'PWNED')), false);
    // In postgresql.auto.conf the quote and the backslash are doubled, as ALTER SYSTEM writes them.
    const line = recoverySettings({ target: {}, restoreCommand: command }).find((l) => l.startsWith('restore_command'))!;
    const value = /^restore_command = '(.*)'$/.exec(line)![1]!;
    assert.equal(value.replace(/''/g, "'").replace(/\\\\/g, '\\'), command);
  });

  // Our own inverse of the escaping (above) cannot catch a rule we both got wrong: PostgreSQL's
  // configuration parser reads the written line back here (postgres -C on a fresh data
  // directory, no server started).
  it('PostgreSQL reads the written restore_command back byte for byte (postgres -C)', async () => {
    const data = path.join(work, 'data');
    const asPostgres = (args: string[]) => spawnSync(process.getuid?.() === 0 ? 'runuser' : args[0]!, process.getuid?.() === 0 ? ['-u', 'postgres', '--', ...args] : args.slice(1));
    await chmod(work, 0o755);
    await mkdir(data, { mode: 0o700 });
    if (process.getuid?.() === 0) await chown(data, postgresUid, postgresGid);
    const init = asPostgres([pgBin('initdb'), '-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
    assert.equal(init.status, 0, init.stderr.toString());
    const command = `OPS_REPOSITORY_URL=${shellQuote("s3://b/p?x=$(id)&y='q'\\z")} ${shellQuote("/opt/ops $HOME/it's \\ \"x\"/bin/opsctl")} --config ${shellQuote('/etc/c\\d.json')} wal fetch %f %p`;
    assert.match(command, /\\/, 'the command holds a backslash');
    await appendFile(path.join(data, 'postgresql.auto.conf'), `\n${recoverySettings({ target: {}, restoreCommand: command }).join('\n')}\n`);
    const read = asPostgres([pgBin('postgres'), '-D', data, '-C', 'restore_command']);
    assert.equal(read.status, 0, read.stderr.toString());
    assert.equal(read.stdout.toString().replace(/\n$/, ''), command);
  });
});
