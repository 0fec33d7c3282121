import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * Where the runbooks an HTML page links to live, as an absolute URL ending in `/`: a link
 * relative to the repository root broke wherever the page was written or served. In order:
 * OPS_RUNBOOK_BASE_URL (the stack sets it for the status Lambda from the stage's
 * alerts.runbookBaseUrl), the ops config's alerts.runbookBaseUrl, else this installation's
 * own doc/runbooks/ as a file:// URL (a page written and opened on the same machine).
 */
export function runbookBase(configured: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const given = env.OPS_RUNBOOK_BASE_URL || configured;
  if (given) return given.endsWith('/') ? given : `${given}/`;
  const local = installedRunbooks();
  return local ? pathToFileURL(local).href.replace(/\/?$/, '/') : 'doc/runbooks/';
}

/** doc/runbooks/ of this installation: up from this module (src/status/ or dist/opsctl/) to the package root. */
function installedRunbooks(): string | undefined {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i += 1) {
    const candidate = path.join(dir, 'doc', 'runbooks');
    if (existsSync(path.join(candidate, 'drill-failed.md'))) return candidate;
    dir = path.dirname(dir);
  }
  return undefined;
}
