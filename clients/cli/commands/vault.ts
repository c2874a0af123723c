import { VaultBinding, VaultDelete, VaultList, VaultSet } from '../../../protocol/index.js';
import { type Command, requirePositional, UsageError } from '../context.js';

/** Reads the secret from stdin: hidden on a terminal, whole input otherwise. Never from argv. */
async function readSecret(name: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const chunk of stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  }
  process.stderr.write(`value for ${name} (input hidden): `);
  stdin.setRawMode(true);
  stdin.resume();
  let value = '';
  try {
    for await (const chunk of stdin) {
      for (const ch of (chunk as Buffer).toString('utf8')) {
        if (ch === '\r' || ch === '\n') return value;
        if (ch === '\u0003') throw new UsageError('cancelled');
        if (ch === '\u007f') value = value.slice(0, -1);
        else value += ch;
      }
    }
    return value;
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    process.stderr.write('\n');
  }
}

function bindingFrom(values: Record<string, unknown>): VaultBinding | undefined {
  const kinds = (['http', 'git', 'mcp'] as const).filter((k) => typeof values[k] === 'string');
  if (kinds.length > 1) throw new UsageError('give at most one of --http, --git, --mcp');
  if (values.header !== undefined && kinds[0] !== 'http') throw new UsageError('--header goes with --http');
  const kind = kinds[0];
  if (!kind) return undefined;
  const parsed = VaultBinding.safeParse({
    kind,
    url: values[kind],
    ...(kind === 'http' && typeof values.header === 'string' ? { header: values.header } : {}),
  });
  if (!parsed.success) throw new UsageError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  return parsed.data;
}

export const vault: Command = {
  usage:
    'agentd vault set NAME [--http URL [--header "Authorization: Bearer {value}"]] [--git URL] [--mcp URL]   (value on stdin)\n' +
    '       agentd vault list [--json]\n' +
    '       agentd vault delete NAME',
  summary: 'store credentials (encrypted; values are never shown again)',
  options: {
    http: { type: 'string' },
    header: { type: 'string' },
    git: { type: 'string' },
    mcp: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run({ values, positionals }, ctx) {
    const action = requirePositional(positionals, 0, 'set|list|delete');
    if (action === 'list') {
      const client = await ctx.connect();
      const { entries } = await client.request(VaultList, {});
      if (values.json) ctx.json({ entries });
      else if (entries.length === 0) ctx.out('the vault is empty');
      else for (const e of entries) ctx.out(`${e.name}  ${e.binding ? `${e.binding.kind} ${e.binding.url}` : '(unbound)'}`);
      return 0;
    }
    const name = requirePositional(positionals, 1, 'NAME');
    if (positionals.length > 2) throw new UsageError('the value is read from stdin, never from the command line');
    if (action === 'delete') {
      await (await ctx.connect()).request(VaultDelete, { name });
      return 0;
    }
    if (action !== 'set') throw new UsageError(`unknown vault action ${action}`);
    const binding = bindingFrom(values);
    const value = await readSecret(name);
    if (!value) throw new UsageError('empty value: pipe the secret on stdin, e.g. `printenv TOKEN | agentd vault set NAME`');
    await (await ctx.connect()).request(VaultSet, { name, value, ...(binding ? { binding } : {}) });
    ctx.out(`stored ${name}`);
    return 0;
  },
};
