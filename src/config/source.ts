import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { errorMessage } from '../errors.js';
import type { Log } from '../log.js';
import { parseConfig, type OpsConfig } from './load.js';

/**
 * The configuration of a long-lived process (a warm Lambda): re-read from its source on
 * every `current()` (the source caches: SSM through Powertools with a short max age), parsed
 * only when the text changed, and logged when a new version is picked up. An invalid new
 * version never replaces a good one: the last good config stays in force and the problem
 * is logged, so a bad push cannot stop backups.
 */
export class ConfigSource {
  private last: { hash: string; config: OpsConfig } | undefined;

  constructor(
    private readonly fetchText: () => Promise<string>,
    private readonly label: string,
    private readonly log: Log,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  async current(): Promise<OpsConfig> {
    const text = await this.fetchText();
    const hash = createHash('sha256').update(text).digest('hex');
    if (this.last?.hash === hash) return this.last.config;
    try {
      const config = parseConfig(text, this.label, this.env, process.cwd());
      this.log.info('configuration version picked up', { source: this.label, sha256: hash.slice(0, 16), previous: this.last?.hash.slice(0, 16) ?? null });
      this.last = { hash, config };
      return config;
    } catch (error) {
      if (!this.last) throw error;
      this.log.error('new configuration rejected; the previous version stays in force', { source: this.label, sha256: hash.slice(0, 16), reason: errorMessage(error) });
      return this.last.config;
    }
  }
}

export function fileConfigSource(file: string, log: Log, env: NodeJS.ProcessEnv = process.env): ConfigSource {
  return new ConfigSource(() => readFile(file, 'utf8'), file, log, env);
}
