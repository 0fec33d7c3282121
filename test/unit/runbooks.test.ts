import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ALERTS } from '../../src/metrics/alerts.js';
import { ROOT } from '../helpers/cli.js';

describe('runbooks', () => {
  it('every alert links to a runbook that exists and names the alert', () => {
    for (const alert of ALERTS) {
      const file = path.join(ROOT, 'doc', 'runbooks', alert.runbook);
      assert.ok(existsSync(file), `${alert.name}: ${alert.runbook} missing`);
      assert.match(readFileSync(file, 'utf8'), new RegExp(`^# ${alert.name}`), `${alert.runbook} is titled ${alert.name}`);
    }
  });

  it('every relative link in the docs resolves', () => {
    const docs = [path.join(ROOT, 'README.md'), ...readdirSync(path.join(ROOT, 'doc'), { recursive: true }).map(String).filter((f) => f.endsWith('.md')).map((f) => path.join(ROOT, 'doc', f))];
    for (const doc of docs) {
      for (const m of readFileSync(doc, 'utf8').matchAll(/\]\(([^)#]+)(#[^)]*)?\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/.test(target)) continue;
        assert.ok(existsSync(path.resolve(path.dirname(doc), target)), `${path.relative(ROOT, doc)} links to missing ${target}`);
      }
    }
  });
});
