import { SessionId, TokenCreate, TokenId, TokenList, TokenRevoke, type TokenInfo } from '../../../protocol/index.js';
import { type Command, checked, durationOption, requirePositional, UsageError } from '../context.js';

function describe(token: TokenInfo): string {
  const scope = token.sessions ? `sessions ${token.sessions.join(',')}` : 'all sessions';
  const expires = token.expiresAt === null ? 'no expiry' : `expires ${new Date(token.expiresAt).toISOString()}`;
  const logins = token.webLogins > 0 ? `, ${token.webLogins} web login${token.webLogins > 1 ? 's' : ''}` : '';
  return `${token.id}  ${token.name}  ${token.role}  ${scope}  ${expires}${logins}`;
}

export const token: Command = {
  usage:
    'agentd token create [--observer | --controller] [--session ID ...] [--expires DURATION] [--name N] [--json]\n' +
    '       agentd token list [--json]\n' +
    '       agentd token revoke TOKEN_ID',
  summary: 'access tokens for the network listener (`agentd daemon --listen`): the token is shown once',
  options: {
    observer: { type: 'boolean' },
    controller: { type: 'boolean' },
    session: { type: 'string', multiple: true },
    expires: { type: 'string' },
    name: { type: 'string' },
    json: { type: 'boolean' },
  },
  args: ['create|list|revoke', 'TOKEN_ID'],
  params: { id: 'TOKEN_ID', sessions: '--session', expiresInMs: '--expires' },
  async run({ values, positionals }, ctx) {
    const action = requirePositional(positionals, 0, 'create|list|revoke');
    if (action === 'revoke') {
      const id = checked(TokenId, requirePositional(positionals, 1, 'TOKEN_ID'), 'TOKEN_ID');
      await (await ctx.connect()).request(TokenRevoke, { id });
      ctx.out(`revoked ${id} (its web logins too; connections using them were closed)`);
      return 0;
    }
    if (positionals.length > 1) throw new UsageError(`unexpected argument: ${positionals.slice(1).join(' ')}`);
    if (action === 'list') {
      const { tokens } = await (await ctx.connect()).request(TokenList, {});
      if (values.json) ctx.json({ tokens });
      else if (tokens.length === 0) ctx.out('no tokens');
      else for (const t of tokens) ctx.out(describe(t));
      return 0;
    }
    if (action !== 'create') throw new UsageError(`unknown token action ${action}`);
    if (values.observer && values.controller) throw new UsageError('give one of --observer and --controller');
    const sessions = ((values.session as string[] | undefined) ?? []).map((id) => checked(SessionId, id, '--session'));
    const expiresInMs = durationOption(values, 'expires');
    const { token: secret, info } = await (await ctx.connect()).request(TokenCreate, {
      role: values.controller ? 'controller' : 'observer',
      ...(sessions.length > 0 ? { sessions } : {}),
      ...(expiresInMs !== undefined ? { expiresInMs } : {}),
      ...(typeof values.name === 'string' ? { name: values.name } : {}),
    });
    if (values.json) ctx.json({ token: secret, ...info });
    else {
      // The token on stdout alone (for `> file`), what it is on stderr: it is not shown again.
      process.stderr.write(`${describe(info)}\nthe token (shown once; the daemon keeps only its hash):\n`);
      ctx.out(secret);
    }
    return 0;
  },
};
