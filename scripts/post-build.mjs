// Marks the CLI entry executable after tsc (npm links bin files but tsc does not set modes).
import { chmodSync, existsSync } from 'node:fs';
const entry = new URL('../dist/bin/agentd.cjs', import.meta.url);
if (existsSync(entry)) chmodSync(entry, 0o755);
