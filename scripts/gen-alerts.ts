import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderPrometheusRules } from '../src/metrics/alerts.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
writeFileSync(path.join(root, 'doc', 'prometheus', 'alerts.yml'), renderPrometheusRules());
process.stdout.write('wrote doc/prometheus/alerts.yml\n');
