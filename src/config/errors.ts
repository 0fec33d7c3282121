import { OpsError } from '../errors.js';

export interface ConfigProblem {
  /** Dotted path inside the configuration, e.g. `postgres.databases.0.url`. */
  path: string;
  message: string;
}

/** The configuration cannot be used; `problems` lists every issue found, not only the first. */
export class ConfigError extends OpsError {
  readonly problems: readonly ConfigProblem[];

  constructor(source: string, problems: ConfigProblem[], cause?: unknown) {
    const lines = problems.map((p) => `  - ${p.path || '(root)'}: ${p.message}`).join('\n');
    super('CONFIG_INVALID', `invalid configuration in ${source}:\n${lines}`, {
      context: { source, problems },
      cause,
      exitCode: 64,
    });
    this.name = 'ConfigError';
    this.problems = problems;
  }
}
