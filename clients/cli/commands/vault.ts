import { VaultBinding, VaultDelete, VaultList, VaultName, VaultSet } from '../../../protocol/index.js';
import { type Command, checked, requirePositional, UsageError } from '../context.js';

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
  // The rest is taken here only to say that a value never goes on the command line.
  args: ['set|list|delete', 'NAME', 'rest...'],
  params: { name: 'NAME', 'binding.url': 'URL', 'binding.header': '--header' },
  async run({ values, positionals }, ctx) {
    const action = requirePositional(positionals, 0, 'set|list|delete');
    if (action !== 'set' && action !== 'list' && action !== 'delete') throw new UsageError(`unknown vault action ${action}`);
    const expected = action === 'list' ? 1 : 2;
    if (positionals.length > expected) {
      if (action === 'set') throw new UsageError('the value is read from stdin, never from the command line');
      throw new UsageError(`unexpected argument: ${positionals.slice(expected).join(' ')}`);
    }
    if (action === 'list') {
      const client = await ctx.connect();
      const { entries } = await client.request(VaultList, {});
      if (values.json) ctx.json({ entries });
      else if (entries.length === 0) ctx.out('the vault is empty');
      else for (const e of entries) ctx.out(`${e.name}  ${e.binding ? `${e.binding.kind} ${e.binding.url}` : '(unbound)'}`);
      return 0;
    }
    const name = checked(VaultName, requirePositional(positionals, 1, 'NAME'), 'NAME');
    if (action === 'delete') {
      await (await ctx.connect()).request(VaultDelete, { name });
      ctx.out(`deleted ${name}`);
      return 0;
    }
    const binding = bindingFrom(values);
    const value = await readSecret(name);
    if (!value) throw new UsageError('empty value: pipe the secret on stdin, e.g. `printenv TOKEN | agentd vault set NAME`');
    await (await ctx.connect()).request(VaultSet, { name, value, ...(binding ? { binding } : {}) });
    ctx.out(`stored ${name}`);
    return 0;
  },
};
