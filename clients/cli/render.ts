import type { DaemonStatusResult, Event, SessionInfo } from '../../protocol/index.js';

/** Human output for the CLI; `--json` prints the protocol's own shapes instead. */

/** The text on one line, cut to `max` characters with an ellipsis. */
export function oneLine(text: string, max: number): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** The part of a tool's input a person recognises it by: the command, the path, the pattern. */
export function shortInput(name: string, input: Record<string, unknown>): string {
  const pick = (key: string) => (typeof input[key] === 'string' ? (input[key] as string) : undefined);
  const main = pick('command') ?? pick('path') ?? pick('pattern');
  if (main === undefined) return oneLine(JSON.stringify(input), 100);
  const extra = name === 'grep' && pick('path') ? ` in ${pick('path')}` : '';
  return oneLine(`${main}${extra}`, 100);
}

function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((block: { type?: string; text?: string; name?: string }) =>
        block.type === 'text' ? block.text ?? '' : block.type === 'tool_use' ? `[tool_use ${block.name}]` : `[${block.type}]`,
      )
      .join(' ');
  }
  return JSON.stringify(content);
}

function summary(event: Event): string {
  const d = event.data;
  switch (event.type) {
    case 'user.message':
    case 'assistant.message':
      return contentText(d.content);
    case 'tool.started':
      return `${String(d.name)} ${JSON.stringify(d.input)}`;
    case 'tool.result':
      return `${d.isError ? `error (${String(d.errorKind)}) ` : ''}${contentText(d.content)}`;
    case 'turn.failed':
      return String(d.error);
    default:
      return JSON.stringify(d);
  }
}

export function renderEvent(event: Event, width = 120): string {
  const time = new Date(event.ts).toISOString().slice(11, 23);
  return `${String(event.seq).padStart(6)}  ${time}  ${event.type.padEnd(20)} ${oneLine(summary(event), width)}`;
}

export function renderSessions(sessions: SessionInfo[]): string {
  if (sessions.length === 0) return 'no sessions';
  const rows = sessions.map(
    (s) =>
      `${s.sessionId}  ${s.status.padEnd(8)}  ${String(s.headSeq).padStart(6)} events  ${new Date(s.updatedAt).toISOString().slice(0, 19)}  ${s.title ?? ''}  ${s.workspace}${s.runningOn ? `  (running on ${s.runningOn})` : ''}`,
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
export function stoppedNote(reason: string): string {
  return `the daemon was stopped on purpose (${reason}); waiting for it to be started again (\`agentd start\`); Ctrl-C to quit`;
}
