import { Transform } from 'node:stream';

/** Values shorter than this are not redacted: they would match everywhere and protect nothing. */
const MIN_SECRET_LENGTH = 6;

/**
 * Replaces every known secret value with `[REDACTED:NAME]`: the second line of
 * defence, applied to anything the daemon logs, stores or sends that could echo a
 * secret back (tool results, model messages, errors, proxied responses).
 */
export class Redactor {
  private readonly secrets: Array<{ name: string; value: string; bytes: Buffer }>;

  constructor(entries: Array<{ name: string; value: string }>) {
    // Longest first, so a secret that contains another is replaced whole.
    this.secrets = entries
      .filter((e) => e.value.length >= MIN_SECRET_LENGTH)
      .sort((a, b) => b.value.length - a.value.length)
      .map((e) => ({ ...e, bytes: Buffer.from(e.value) }));
  }

  get empty(): boolean {
    return this.secrets.length === 0;
  }

  text(input: string): string {
    let out = input;
    for (const s of this.secrets) if (out.includes(s.value)) out = out.split(s.value).join(`[REDACTED:${s.name}]`);
    return out;
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
   * A byte stream with secrets replaced, also across chunk boundaries: it holds back
   * the last (longest secret − 1) bytes until it knows they do not start a secret.
   */
  stream(): Transform {
    const keep = Math.max(0, ...this.secrets.map((s) => s.bytes.length - 1));
    let tail: Buffer = Buffer.alloc(0);
    const replaceAll = (data: Buffer): Buffer => {
      let out: Buffer = data;
      for (const s of this.secrets) {
        const parts: Buffer[] = [];
        let from = 0;
        for (let at = out.indexOf(s.bytes, from); at >= 0; at = out.indexOf(s.bytes, from)) {
          parts.push(out.subarray(from, at), Buffer.from(`[REDACTED:${s.name}]`));
          from = at + s.bytes.length;
        }
        if (parts.length > 0) out = Buffer.concat([...parts, out.subarray(from)]);
      }
      return out;
    };
    return new Transform({
      transform(chunk: Buffer, _encoding, done) {
        const data = replaceAll(Buffer.concat([tail, chunk]));
        const cut = Math.max(0, data.length - keep);
        tail = data.subarray(cut);
        done(null, data.subarray(0, cut));
      },
      flush(done) {
        done(null, replaceAll(tail));
      },
    });
  }
}
