import { knownEvent, type ContentBlock, type DaemonStatusResult, type Event, type PromptContent, type SessionInfo, type UsageTotals } from '../../protocol/index.js';
import type { LinkState } from '../lib/link.js';

/** Human output for the CLI; `--json` prints the protocol's own shapes instead. */

/** The text on one line, cut to `max` characters with an ellipsis. */
export function oneLine(text: string, max: number): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** The part of a tool's input a person recognises it by: the command, the path, the pattern. */
export function shortInput(name: string, input: Record<string, unknown>): string {
  const pick = (key: string) => (typeof input[key] === 'string' ? (input[key] as string) : undefined);
  const main = pick('command') ?? pick('path') ?? pick('pattern') ?? pick('prompt');
  if (main === undefined) return oneLine(JSON.stringify(input), 100);
  const extra = name === 'grep' && pick('path') ? ` in ${pick('path')}` : '';
  return oneLine(`${main}${extra}`, 100);
}

function contentText(content: PromptContent | ContentBlock[]): string {
  if (typeof content === 'string') return content;
  return content.map((block) => (block.type === 'text' ? block.text : block.type === 'tool_use' ? `[tool_use ${block.name}]` : `[${block.type}]`)).join(' ');
}

/** The gist of an event on one line; an event of a type this CLI does not know shows its data as it is. */
function summary(event: Event): string {
  const known = knownEvent(event);
  switch (known?.type) {
    case 'user.message':
    case 'assistant.message':
      return contentText(known.data.content);
    case 'tool.started':
      return `${known.data.name} ${JSON.stringify(known.data.input)}${known.data.childSessionId ? ` → sub-agent ${known.data.childSessionId}` : ''}`;
    case 'tool.result':
      return `${known.data.isError ? `error (${known.data.errorKind ?? 'tool_error'}) ` : ''}${contentText(known.data.content)}`;
    case 'turn.failed':
      return known.data.error;
    default:
      return JSON.stringify(event.data);
  }
}

export function renderEvent(event: Event, width = 120): string {
  const time = new Date(event.ts).toISOString().slice(11, 23);
  return `${String(event.seq).padStart(6)}  ${time}  ${event.type.padEnd(20)} ${oneLine(summary(event), width)}`;
}

/** Tokens in (fresh, cache reads, cache writes) and out, and the cost when it is known. */
export function renderUsage(u: UsageTotals): string {
  const cost = u.costUsd !== undefined ? `  $${u.costUsd.toFixed(4)}` : '';
  return `in ${u.inputTokens} (cache read ${u.cacheReadTokens}, write ${u.cacheWriteTokens})  out ${u.outputTokens}${cost}`;
}

/** Where a session sits in the tree of sub-agents. */
function tree(s: SessionInfo): string {
  const parts = [s.parent ? `sub-agent of ${s.parent.sessionId}` : '', s.children?.length ? `${s.children.length} sub-agent${s.children.length === 1 ? '' : 's'}: ${s.children.join(' ')}` : ''];
  const said = parts.filter(Boolean).join('; ');
  return said ? `  (${said})` : '';
}

export function renderSessions(sessions: SessionInfo[]): string {
  if (sessions.length === 0) return 'no sessions';
  const rows = sessions.map(
    (s) =>
      `${s.sessionId}  ${s.status.padEnd(8)}  ${String(s.headSeq).padStart(6)} events  ${new Date(s.updatedAt).toISOString().slice(0, 19)}  ${s.title ?? ''}  ${s.workspace}${s.runningOn ? `  (running on ${s.runningOn})` : ''}${tree(s)}`,
  );
  return rows.join('\n');
}

export function renderStatus(status: DaemonStatusResult): string {
  return [
    `agentd ${status.version} (protocol ${status.protocolVersion}), pid ${status.pid}, up ${Math.round(status.uptimeMs / 1000)} s`,
    `data dir   ${status.dataDir}`,
    `socket     ${status.socketPath}`,
    `log        ${status.log.backend} ${status.log.location}   daemon id ${status.daemonId}`,
    `sessions   ${status.counts.sessions ?? `unknown (${status.logError ?? 'log unreadable'})`}   connections ${status.counts.connections}   subscriptions ${status.counts.subscriptions}`,
    `appends    p50 ${status.appendLatencyMs.p50} ms, p99 ${status.appendLatencyMs.p99} ms over ${status.appendLatencyMs.samples}`,
    `memory     ${Math.round(status.rssBytes / 1048576)} MB RSS`,
    ...(status.sandboxPool ? [`pool       ${renderPool(status.sandboxPool)}`] : []),
  ].join('\n');
}

function renderPool(pool: NonNullable<DaemonStatusResult['sandboxPool']>): string {
  if (pool.disabled) return `${pool.size} configured, none kept: ${pool.disabled}`;
  return `${pool.ready} of ${pool.size} sandboxes ready${pool.starting ? `, ${pool.starting} starting` : ''}; served ${pool.served}, cold ${pool.cold}, replaced ${pool.replaced}`;
}

/** What a follower says when the daemon was stopped on purpose. */
function stoppedNote(reason: string): string {
  return `the daemon was stopped on purpose (${reason}); waiting for it to be started again (\`agentd start\`); Ctrl-C to quit`;
}

/**
 * What a terminal that follows a session says as its link to the daemon changes: the
 * connection lost, the daemon stopped on purpose (waited for, not started), back again.
 */
export function linkNotes(say: (line: string) => void): (state: LinkState) => void {
  let last: LinkState['kind'] = 'idle';
  return (state) => {
    if (state.kind === 'connecting' && last === 'connected') say('connection to the daemon lost; reconnecting...');
    else if (state.kind === 'daemonStopped' && last !== 'daemonStopped') say(state.reason === undefined ? state.message : stoppedNote(state.reason));
    else if (state.kind === 'connected' && last === 'daemonStopped') say('the daemon runs again; following on');
    last = state.kind;
  };
}
