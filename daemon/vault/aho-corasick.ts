/**
 * Aho–Corasick over UTF-16 code units: every occurrence of every pattern in one pass,
 * whatever their number. Hand-written (about fifty lines) because the redactor needs
 * code-unit matching fed one logical character at a time by its own scanner; the
 * maintained npm implementation matches whole grapheme clusters, so a secret followed
 * by a combining mark would not match there, which a redactor cannot allow.
 */
export class Automaton {
  private readonly goto: Array<Map<number, number>> = [new Map()];
  private fail: Int32Array = new Int32Array(1);
  /** Characters from the root to each state: how far back a partial match reaches. */
  private depths: number[] = [0];
  /** Patterns ending at each state: its own and its dictionary suffixes'. */
  private outputs: number[][] = [[]];
  readonly maxLength: number;
  /** Code units some pattern starts with: a scanner at the root skips the others without stepping. */
  private readonly starters = new Uint8Array(65536);

  constructor(patterns: readonly string[]) {
    for (const [index, pattern] of patterns.entries()) this.insert(pattern, index);
    this.maxLength = Math.max(0, ...patterns.map((p) => p.length));
    for (const code of this.goto[0]!.keys()) this.starters[code] = 1;
    this.link();
  }

  canStart(code: number): boolean {
    return this.starters[code] === 1;
  }

  private insert(pattern: string, index: number): void {
    let state = 0;
    for (let i = 0; i < pattern.length; i++) {
      const code = pattern.charCodeAt(i);
      let next = this.goto[state]!.get(code);
      if (next === undefined) {
        next = this.goto.length;
        this.goto.push(new Map());
        this.depths.push(this.depths[state]! + 1);
        this.outputs.push([]);
        this.goto[state]!.set(code, next);
      }
      state = next;
    }
    if (pattern.length > 0) this.outputs[state]!.push(index);
  }

  /** Failure links breadth-first; outputs merged along them. */
  private link(): void {
    this.fail = new Int32Array(this.goto.length);
    const queue: number[] = [...this.goto[0]!.values()];
    for (let head = 0; head < queue.length; head++) {
      const state = queue[head]!;
      for (const [code, next] of this.goto[state]!) {
        let f = this.fail[state]!;
        while (f !== 0 && !this.goto[f]!.has(code)) f = this.fail[f]!;
        const target = this.goto[f]!.get(code);
        this.fail[next] = target !== undefined && target !== next ? target : 0;
        const inherited = this.outputs[this.fail[next]!]!;
        if (inherited.length > 0) this.outputs[next] = [...this.outputs[next]!, ...inherited];
        queue.push(next);
      }
    }
  }

  step(state: number, code: number): number {
    for (let s = state; ; s = this.fail[s]!) {
      const next = this.goto[s]!.get(code);
      if (next !== undefined) return next;
      if (s === 0) return 0;
    }
  }

  /** Indexes of the patterns that end at this state. */
  matches(state: number): readonly number[] {
    return this.outputs[state]!;
  }

  depth(state: number): number {
    return this.depths[state]!;
  }
}
