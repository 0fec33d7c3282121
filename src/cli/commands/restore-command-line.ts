import { existsSync } from 'node:fs';
import path from 'node:path';
import { shellQuote } from '../../util/shell-quote.js';

/** The restore_command the restored cluster runs: this very opsctl, this configuration, the same name. */
export function restoreCommandFor(configPath: string, name: string, env: NodeJS.ProcessEnv = process.env, spool?: string): string {
  // The script this process runs (bin/opsctl.js, or the image's): the restored server calls the
  // same one, through bin/opsctl beside it where that is there (segments fetched ahead are then
  // handed over by the shell, without starting Node), with this very Node.
  const script = path.resolve(process.argv[1] ?? 'bin/opsctl.js');
  const wrapper = path.join(path.dirname(script), 'opsctl');
  const viaShell = existsSync(wrapper) && path.basename(script) === 'opsctl.js';
  // Where the repository came from the environment, the server's own environment may lack it.
  // Each word quoted for `sh -c` (JSON's double quotes let `$(...)` in a path or URL run);
  // assignments before the command, not `env`: the shell exports them itself, and recovery
  // pays no exec of env(1) for each segment.
  const carried = ['OPS_REPOSITORY_URL', 'AWS_ENDPOINT_URL_S3', 'AWS_REGION'].filter((k) => env[k]).map((k) => `${k}=${shellQuote(env[k]!)}`);
  if (viaShell) carried.push(`OPSCTL_NODE=${shellQuote(process.execPath)}`);
  const run = viaShell ? shellQuote(wrapper) : `${shellQuote(process.execPath)} ${shellQuote(script)}`;
  return `${carried.map((c) => `${c} `).join('')}${run} --config ${shellQuote(path.resolve(configPath))} wal fetch "%f" "%p" --name ${shellQuote(name)}${spool ? ` --spool ${shellQuote(spool)}` : ''}`;
}

/** The spoolSource restore_command will compute: this configuration file and the overrides it is given. */
export async function restoreSpoolSource(configPath: string, env: NodeJS.ProcessEnv): Promise<string> {
  const { spoolSource } = await import('../../wal/spool.js');
  return spoolSource(path.resolve(configPath), { OPS_REPOSITORY_URL: env.OPS_REPOSITORY_URL, AWS_ENDPOINT_URL_S3: env.AWS_ENDPOINT_URL_S3 });
}
