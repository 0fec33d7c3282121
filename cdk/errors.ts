import type { ConfigProblem } from '../src/config/errors.js';
import { OpsError } from '../src/errors.js';

/** The stage file (or the ops config it names) cannot be deployed; `problems` lists every issue. */
export class StageConfigError extends OpsError {
  readonly problems: readonly ConfigProblem[];

  constructor(file: string, problems: ConfigProblem[], cause?: unknown) {
    const lines = problems.map((p) => `  - ${p.path || '(root)'}: ${p.message}`).join('\n');
    super('STAGE_INVALID', `invalid stage configuration in ${file}:\n${lines}`, { context: { file, problems }, cause, exitCode: 64 });
    this.name = 'StageConfigError';
    this.problems = problems;
  }
}
