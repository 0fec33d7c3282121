import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configJsonSchema } from '../src/config/json-schema.js';

/** `npm run gen:schema`: doc/ops.config.schema.json from the zod schema (a test keeps them equal). */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
writeFileSync(path.join(root, 'doc', 'ops.config.schema.json'), `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
