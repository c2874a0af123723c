import { Transform } from 'node:stream';
import { Automaton } from './aho-corasick.js';
import { secretForms } from './encodings.js';
import { logical, RedactionEngine, type Dictionary, type PatternInfo } from './scan.js';

/**
 * Values shorter than this are refused by `vault set` (VaultSet's schema): they would
 * match everywhere. Any older ones are not redacted, and the daemon says so in its log.
 */
export const MIN_SECRET_LENGTH = 6;

/**
 * Replaces every known secret value with `[REDACTED:NAME]`, in every form an upstream
 * can echo it (encodings.ts), also split across lines or escapes (scan.ts): the second
 * line of defence, applied to anything the daemon logs, stores or sends that could echo
 * a secret back (tool results, model messages, errors, proxied responses). The forms
 * are computed once per vault; one automaton finds all of them in one pass.
 *
 * What the sandbox does to a secret after it got one (reversing it, splitting it with
 * other characters, encrypting it) no redactor can undo; the defence there is that no
 * secret ever enters the sandbox.
 */
export class Redactor {
  private readonly forText: Dictionary;
  /** For streams, built on first use: the UTF-8 forms read as latin1. */
  private forBytes: Dictionary | undefined;
  private readonly entries: Array<{ name: string; value: string }>;
  /** Names of values too short to redact. */
  readonly tooShort: string[];

  constructor(entries: Array<{ name: string; value: string }>) {
    this.entries = entries.filter((e) => e.value.length >= MIN_SECRET_LENGTH);
    this.tooShort = entries.filter((e) => e.value.length < MIN_SECRET_LENGTH).map((e) => e.name);
    this.forText = this.build((form) => form);
  }

  private build(view: (form: string) => string): Dictionary {
    const texts: string[] = [];
    const patterns: PatternInfo[] = [];
    for (const { name, value } of this.entries) {
      for (const form of secretForms(value)) {
        const text = logical(view(form.text));
        if (text.length === 0) continue;
        texts.push(text);
        patterns.push({ name, length: text.length, base64: form.base64 });
      }
    }
    return { automaton: new Automaton(texts), patterns };
  }

  get empty(): boolean {
    return this.entries.length === 0;
  }

  text(input: string): string {
    if (this.empty) return input;
    return new RedactionEngine(this.forText).push(input, true);
  }

  /** Redacts every string inside a JSON-like value. */
  value<T>(input: T): T {
    if (this.empty) return input;
    if (typeof input === 'string') return this.text(input) as T;
    if (Array.isArray(input)) return input.map((v) => this.value(v)) as T;
    if (input && typeof input === 'object') {
      return Object.fromEntries(Object.entries(input).map(([k, v]) => [k, this.value(v)])) as T;
    }
    return input;
  }

  /**
   * A byte stream with secrets replaced, also across chunk boundaries. Bytes are read
   * as latin1 (one character per byte, so binary bodies pass unchanged) against the
   * secrets' UTF-8 forms.
   */
  stream(): Transform {
    this.forBytes ??= this.build((form) => Buffer.from(form, 'utf8').toString('latin1'));
    const engine = new RedactionEngine(this.forBytes);
    return new Transform({
      transform(chunk: Buffer, _encoding, done) {
        done(null, Buffer.from(engine.push(chunk.toString('latin1'), false), 'latin1'));
      },
      flush(done) {
        done(null, Buffer.from(engine.push('', true), 'latin1'));
      },
    });
  }
}
