// Writes what is generated from protocol/ (both committed; tests check they match the code):
// the protocol's JSON Schema into protocol/schema/, and the methods, events and error codes
// tables of docs/design.md between their markers.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { protocolJsonSchema } from '../dist/protocol/schema.js';
import { withReference } from '../dist/protocol/reference.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'protocol', 'schema', 'agentd.schema.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(protocolJsonSchema(), null, 2) + '\n');
process.stderr.write(`wrote ${out}\n`);

const design = join(root, 'docs', 'design.md');
writeFileSync(design, withReference(readFileSync(design, 'utf8')));
process.stderr.write(`wrote the generated tables of ${design}\n`);
