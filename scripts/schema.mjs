// Writes the protocol's JSON Schema into protocol/schema/ (committed; a test checks it matches the code).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { protocolJsonSchema } from '../dist/protocol/schema.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'protocol', 'schema', 'agentd.schema.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(protocolJsonSchema(), null, 2) + '\n');
process.stderr.write(`wrote ${out}\n`);
