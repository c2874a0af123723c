/**
 * The redactor's reading of text: one pass, feeding an Aho–Corasick automaton the
 * *logical* characters, so that escapes and folding cannot hide a secret:
 *
 * - `\uXXXX` (JSON) and `%XX` (URLs; ASCII only) are read as the character they encode;
 * - line breaks, raw or escaped (`\n`, `\r` as two characters), are skipped, with the
 *   spaces and tabs that indent a folded continuation line.
 *
 * A match covers the raw text of its logical characters, breaks between them included.
 * Works the same on whole strings and on streams cut anywhere (held back: the partial
 * match in progress, an escape not yet complete, a base64 fringe).
 */
import { Automaton } from './aho-corasick.js';
import { BASE64_CHAR } from './encodings.js';

/** What a pattern of the automaton stands for. */
export interface PatternInfo {
  name: string;
  /** Logical length. */
  length: number;
  base64: boolean;
}

export interface Dictionary {
  automaton: Automaton;
  patterns: PatternInfo[];
}

type Step = { code: number; end: number } | { skip: true; end: number; lineBreak: boolean };

/** The longest escape (`\uXXXX`) plus a base64 fringe: what a stream keeps unread at its end. */
const LOOKAHEAD = 6;
/** Base64 characters that mix a secret's bits with its neighbours': before and after a core. */
const FRINGE_BEFORE = 2;
const FRINGE_AFTER = 3;
/**
 * A stream holds back at most this much while a match may be in progress (a secret
 * split by more line breaks than this is not caught in a stream; see the README).
 */
const MAX_HOLD = 64 * 1024;

function hexAt(s: string, at: number, digits: number): number {
  let value = 0;
  for (let i = at; i < at + digits; i++) {
    const c = s.charCodeAt(i);
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 65 && c <= 70 ? c - 55 : c >= 97 && c <= 102 ? c - 87 : -1;
    if (d < 0) return -1;
    value = value * 16 + d;
  }
  return value;
}

/** The logical character at raw index i; undefined when the text ends inside an escape and more may come. */
function stepAt(s: string, i: number, afterBreak: boolean, final: boolean): Step | undefined {
  const c = s.charCodeAt(i);
  if (c === 10 || c === 13) return { skip: true, end: i + 1, lineBreak: true };
  if ((c === 32 || c === 9) && afterBreak) return { skip: true, end: i + 1, lineBreak: false };
  if (c !== 92 && c !== 37) return { code: c, end: i + 1 };
  const width = c === 92 ? (s.charCodeAt(i + 1) === 117 ? 6 : 2) : 3;
  if (i + width > s.length) return final ? { code: c, end: i + 1 } : undefined;
  if (c === 92) {
    const n = s.charCodeAt(i + 1);
    if (n === 110 || n === 114) return { skip: true, end: i + 2, lineBreak: true };
    if (n !== 117) return { code: c, end: i + 1 };
    const v = hexAt(s, i + 2, 4);
    if (v < 0) return { code: c, end: i + 1 };
    return v === 10 || v === 13 ? { skip: true, end: i + 6, lineBreak: true } : { code: v, end: i + 6 };
  }
  const v = hexAt(s, i + 1, 2);
  if (v < 0 || v >= 0x80) return { code: c, end: i + 1 };
  return v === 10 || v === 13 ? { skip: true, end: i + 3, lineBreak: true } : { code: v, end: i + 3 };
}

/** A pattern as the scanner reads it: the automaton is built from these. */
export function logical(text: string): string {
  let out = '';
  let afterBreak = false;
  for (let i = 0; i < text.length; ) {
    const step: Step = stepAt(text, i, afterBreak, true)!;
    if ('skip' in step) afterBreak = afterBreak || step.lineBreak;
    else {
      out += String.fromCharCode(step.code);
      afterBreak = false;
    }
    i = step.end;
  }
  return out;
}

interface Span {
  start: number;
  end: number;
  names: Set<string>;
}

/** One redaction pass over a string, or over a stream pushed a chunk at a time. Offsets are absolute. */
export class RedactionEngine {
  private state = 0;
  private afterBreak = false;
  private buffer = '';
  /** Absolute offset of buffer[0]: everything before it has been emitted. */
  private base = 0;
  /** Absolute offset up to which the scanner has read. */
  private scanned = 0;
  /** Raw start of each of the last maxLength logical characters (a ring). */
  private readonly starts: Int32Array;
  private count = 0;
  private spans: Span[] = [];

  constructor(private readonly dictionary: Dictionary) {
    this.starts = new Int32Array(Math.max(1, dictionary.automaton.maxLength));
  }

  /** Adds text; returns what can be emitted now, redacted (everything, when `final`). */
  push(chunk: string, final: boolean): string {
    this.buffer += chunk;
    const end = this.base + this.buffer.length;
    this.scan(final ? end : end - LOOKAHEAD, final);
    let safe = final ? end : Math.min(this.scanned, this.partialStart() - FRINGE_BEFORE);
    if (!final && end - safe > MAX_HOLD) {
      // A partial match that long is given up: the automaton starts afresh from here.
      safe = end - MAX_HOLD;
      this.state = 0;
    }
    this.spans = merge(this.spans);
    for (const span of this.spans) if (span.start < safe && span.end > safe) safe = span.start;
    return this.emit(Math.max(this.base, safe));
  }

  private scan(limit: number, final: boolean): void {
    const { automaton, patterns } = this.dictionary;
    const ring = this.starts.length;
    const s = this.buffer;
    while (this.scanned < limit) {
      if (this.state === 0 && !this.afterBreak) {
        // Outside any match, what neither starts a pattern nor needs decoding passes at once.
        let at = this.scanned - this.base;
        const stop = limit - this.base;
        for (let c = s.charCodeAt(at); at < stop && c !== 10 && c !== 13 && c !== 92 && c !== 37 && !automaton.canStart(c); c = s.charCodeAt(++at));
        this.scanned = this.base + at;
        if (this.scanned >= limit) return;
      }
      const at = this.scanned - this.base;
      const step = stepAt(s, at, this.afterBreak, final);
      if (!step) return;
      const end = this.base + step.end;
      if ('skip' in step) {
        this.afterBreak = this.afterBreak || step.lineBreak;
        this.scanned = end;
        continue;
      }
      this.afterBreak = false;
      this.starts[this.count % ring] = this.scanned;
      this.count++;
      this.scanned = end;
      this.state = automaton.step(this.state, step.code);
      for (const index of automaton.matches(this.state)) {
        const pattern = patterns[index]!;
        let start = this.starts[(this.count - pattern.length) % ring]!;
        let stop = end;
        if (pattern.base64) {
          for (let n = 0; n < FRINGE_BEFORE && start > this.base && BASE64_CHAR.test(s[start - 1 - this.base]!); n++) start--;
          for (let n = 0; n < FRINGE_AFTER && stop - this.base < s.length && BASE64_CHAR.test(s[stop - this.base]!); n++) stop++;
        }
        this.spans.push({ start, end: stop, names: new Set([pattern.name]) });
      }
    }
  }

  /** Raw start of the match the automaton may be in the middle of; `scanned` when none. */
  private partialStart(): number {
    const depth = this.dictionary.automaton.depth(this.state);
    return depth === 0 ? this.scanned : this.starts[(this.count - depth) % this.starts.length]!;
  }

  /** Emits [base, upTo) with the spans inside it replaced. */
  private emit(upTo: number): string {
    let out = '';
    let at = this.base;
    const kept: Span[] = [];
    for (const span of this.spans) {
      if (span.end > upTo) {
        kept.push(span);
        continue;
      }
      out += this.buffer.slice(at - this.base, Math.max(at, span.start) - this.base) + `[REDACTED:${[...span.names].join(',')}]`;
      at = span.end;
    }
    out += this.buffer.slice(at - this.base, upTo - this.base);
    this.buffer = this.buffer.slice(upTo - this.base);
    this.base = upTo;
    this.spans = kept;
    return out;
  }
}

/** Sorted by start, overlapping or touching spans joined. */
function merge(spans: Span[]): Span[] {
  if (spans.length < 2) return spans;
  const sorted = [...spans].sort((a, b) => a.start - b.start);
  const out: Span[] = [sorted[0]!];
  for (const span of sorted.slice(1)) {
    const last = out[out.length - 1]!;
    if (span.start <= last.end) {
      last.end = Math.max(last.end, span.end);
      for (const name of span.names) last.names.add(name);
    } else out.push(span);
  }
  return out;
}
