/**
 * Building the page's DOM: text always goes in as text (never as HTML), so nothing a
 * session holds can run in the page. The conversation comes from the one fold every client
 * uses (clients/lib/transcript), read as a chat the way VS Code's chat reads it
 * (clients/lib/chat-view); file changes by write_file and edit_file show as diffs.
 */
import { diffLines } from 'diff';
import type { ChatItem, ChatView } from '../lib/chat-view.js';
import type { PermissionQuestion } from '../../protocol/methods/permission.js';

type Child = Node | string | undefined | null | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: { class?: string; attrs?: Record<string, string>; on?: Partial<Record<keyof HTMLElementEventMap, (event: Event) => void>> } = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (props.class) el.className = props.class;
  for (const [name, value] of Object.entries(props.attrs ?? {})) el.setAttribute(name, value);
  for (const [name, listener] of Object.entries(props.on ?? {})) el.addEventListener(name, listener as EventListener);
  for (const child of children) if (child !== undefined && child !== null && child !== false) el.append(child);
  return el;
}

export type Decision = 'allow' | 'allow_always' | 'deny';

/** An open question this page may answer, with how to answer it. */
export interface Approval {
  question: PermissionQuestion;
  answer(decision: Decision): void;
}

/** The lines of a change, marked added (+), removed (-) or kept. */
function diffView(path: string, before: string, after: string): HTMLElement {
  const lines: HTMLElement[] = [];
  for (const part of diffLines(before, after)) {
    const mark = part.added ? '+' : part.removed ? '-' : ' ';
    const cls = part.added ? 'add' : part.removed ? 'del' : 'ctx';
    for (const line of part.value.replace(/\n$/, '').split('\n')) lines.push(h('div', { class: `line ${cls}` }, `${mark} ${line}`));
  }
  return h('div', { class: 'diff', attrs: { 'data-path': path } }, h('div', { class: 'diff-path' }, path), ...lines);
}

/** write_file as a new file's lines, edit_file as its replacement; other tools: undefined. */
export function fileChange(name: string, inputJson: string): HTMLElement | undefined {
  let input: Record<string, unknown>;
  try {
    input = JSON.parse(inputJson) as Record<string, unknown>;
  } catch {
    return undefined; // still streaming
  }
  const path = typeof input.path === 'string' ? input.path : '?';
  if (name === 'write_file' && typeof input.content === 'string') return diffView(path, '', input.content);
  if (name === 'edit_file' && typeof input.old_string === 'string' && typeof input.new_string === 'string') return diffView(path, input.old_string, input.new_string);
  return undefined;
}

function toolSummary(name: string, inputJson: string): string {
  try {
    const input = JSON.parse(inputJson) as Record<string, unknown>;
    const arg = input.command ?? input.path ?? input.pattern;
    return typeof arg === 'string' ? `${name}: ${arg.split('\n')[0]!.slice(0, 120)}` : name;
  } catch {
    return name;
  }
}

export function approvalCard(approval: Approval, title: string): HTMLElement {
  const { question } = approval;
  const button = (label: string, decision: Decision, cls: string) => h('button', { class: cls, attrs: { 'data-decision': decision }, on: { click: () => approval.answer(decision) } }, label);
  return h(
    'div',
    { class: 'approval', attrs: { 'data-tool-use-id': question.toolUseId, 'data-session-id': question.sessionId } },
    h('div', { class: 'asks' }, `${title} asks to run ${toolSummary(question.tool, JSON.stringify(question.input))}`),
    h('div', { class: 'buttons' }, button('Allow', 'allow', 'allow'), button('Always allow', 'allow_always', 'always'), button('Deny', 'deny', 'deny')),
  );
}

function toolItem(item: Extract<ChatItem, { kind: 'tool' }>, approval: Approval | undefined, title: string): HTMLElement {
  const badge = item.result?.errorKind ?? item.state;
  const change = item.streaming ? undefined : fileChange(item.name, item.input);
  const permission = item.permission && item.permission.state !== 'asked' ? `Permission: ${item.permission.state.replace('_', ' ')} by ${item.permission.by ?? '?'}` : undefined;
  return h(
    'details',
    { class: `tool ${item.state}${item.result?.isError ? ' failed' : ''}`, attrs: { 'data-tool': item.name, ...(item.toolUseId ? { 'data-tool-use-id': item.toolUseId } : {}), ...(change || approval ? { open: '' } : {}) } },
    h('summary', {}, h('span', { class: 'tool-name' }, toolSummary(item.name, item.input)), h('span', { class: `badge ${badge}` }, badge), item.where ? h('span', { class: 'where' }, item.where) : undefined),
    change ?? h('pre', { class: 'input' }, item.input),
    approval ? approvalCard(approval, title) : undefined,
    permission ? h('div', { class: 'permission' }, permission) : undefined,
    item.result ? h('pre', { class: `result${item.result.isError ? ' error' : ''}` }, item.result.text || '(no output)') : undefined,
  );
}

/** The conversation of one session, with the questions this page may answer in place. */
export function renderChat(view: ChatView, approvals: ReadonlyMap<string, Approval>): HTMLElement[] {
  const title = view.title ?? view.sessionId;
  return view.items.map((item) => {
    const seq: Record<string, string> = item.seq === undefined ? {} : { 'data-seq': String(item.seq) };
    switch (item.kind) {
      case 'user':
        return h('div', { class: 'msg user', attrs: seq }, item.text);
      case 'assistant':
        return h('div', { class: `msg assistant${item.streaming ? ' streaming' : ''}`, attrs: seq }, item.text);
      case 'notice':
        return h('div', { class: `notice ${item.level}`, attrs: seq }, item.text);
      case 'tool':
        return toolItem(item, item.toolUseId ? approvals.get(item.toolUseId) : undefined, title);
    }
  });
}
