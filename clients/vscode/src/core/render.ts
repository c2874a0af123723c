import type { ToolErrorKind } from '../../../../protocol/index.js';
import type { ChatItem, ChatView } from '../../../lib/chat-view.js';

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export const ERROR_LABELS: Record<ToolErrorKind, string> = {
  sandbox_lost: 'Sandbox lost',
  interrupted: 'Interrupted',
  timeout: 'Timed out',
  denied: 'Denied',
  tool_error: 'Tool error',
};

/** A one-line summary of a tool call's input for the collapsed header. */
function headline(item: Extract<ChatItem, { kind: 'tool' }>): string {
  try {
    const input = JSON.parse(item.input) as Record<string, unknown>;
    const first = input.command ?? input.path ?? input.pattern ?? Object.values(input)[0];
    const text = typeof first === 'string' ? first : JSON.stringify(first ?? '');
    return text.length > 80 ? `${text.slice(0, 79)}…` : text;
  } catch {
    return ''; // input still streaming: not JSON yet
  }
}

function renderItem(item: ChatItem): string {
  const key = escapeHtml(item.key);
  switch (item.kind) {
    case 'user':
      return `<div class="msg user" data-key="${key}"><div class="who">You <button class="fork" data-at="${item.seq}" title="Fork a new session from before this message">Fork here</button></div><div class="text">${escapeHtml(item.text)}</div></div>`;
    case 'assistant':
      return `<div class="msg assistant${item.streaming ? ' streaming' : ''}" data-key="${key}"><div class="who">Agent</div><div class="text">${escapeHtml(item.text)}</div></div>`;
    case 'notice':
      return `<div class="notice ${item.level}" data-key="${key}" role="${item.level === 'error' ? 'alert' : 'status'}">${item.level === 'error' ? '<span class="badge">Error</span> ' : ''}${escapeHtml(item.text)}</div>`;
    case 'tool': {
      const classes = ['tool', item.state, item.streaming ? 'streaming' : '', item.result?.errorKind ?? ''].filter(Boolean).join(' ');
      const badges: string[] = [];
      if (item.result?.isError) badges.push(`<span class="badge error">${escapeHtml(ERROR_LABELS[item.result.errorKind ?? 'tool_error'])}</span>`);
      else if (item.state === 'running') badges.push('<span class="badge">running</span>');
      else if (item.state === 'done') badges.push('<span class="badge ok">done</span>');
      if (item.permission?.state === 'asked') badges.push('<span class="badge warn">awaiting approval</span>');
      const permission = item.permission && item.permission.state !== 'asked'
        ? `<div class="permission">Permission: ${escapeHtml(item.permission.state.replace('_', ' '))}${item.permission.by ? ` by ${escapeHtml(item.permission.by)}` : ''}</div>`
        : '';
      const result = item.result
        ? `<div class="label">${item.result.isError ? 'Error' : 'Result'}${item.result.durationMs !== undefined ? ` · ${Math.round(item.result.durationMs)} ms` : ''}</div><pre class="result">${escapeHtml(item.result.text)}</pre>`
        : '';
      return `<details class="${classes}" data-key="${key}"${item.result?.isError ? ' open' : ''}><summary><span class="name">${escapeHtml(item.name)}</span> <code>${escapeHtml(headline(item))}</code> ${badges.join(' ')}</summary><div class="label">Input${item.where ? ` · runs in the ${escapeHtml(item.where)}` : ''}</div><pre class="input">${escapeHtml(item.input)}</pre>${permission}${result}</details>`;
    }
  }
}

/** The conversation as HTML: every value escaped, no script, no remote reference. */
export function renderConversation(view: ChatView): string {
  if (view.items.length === 0) return '<div class="empty">No messages yet. Write a prompt below.</div>';
  return view.items.map(renderItem).join('\n');
}

/** The webview's page: a strict CSP (nonce'd local script and style only, no remote content). */
export function chatPageHtml(options: { cspSource: string; nonce: string; scriptUri: string; styleUri: string; title: string }): string {
  const csp = [
    "default-src 'none'",
    `style-src ${options.cspSource}`,
    `script-src 'nonce-${options.nonce}'`,
    `img-src ${options.cspSource} data:`,
    `font-src ${options.cspSource}`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${escapeHtml(options.styleUri)}">
<title>${escapeHtml(options.title)}</title>
</head>
<body>
<header><span id="title">${escapeHtml(options.title)}</span> <span id="status" class="status"></span> <span id="connection" class="connection"></span></header>
<main id="conversation" aria-live="polite"></main>
<form id="prompt-form">
<textarea id="prompt" rows="3" placeholder="Ask the agent… (Ctrl+Enter to send)"></textarea>
<div class="buttons"><button type="submit" id="send">Send</button><button type="button" id="interrupt" class="secondary">Interrupt</button></div>
</form>
<script nonce="${options.nonce}" src="${escapeHtml(options.scriptUri)}"></script>
</body>
</html>`;
}
