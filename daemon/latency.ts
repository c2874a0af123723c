/** The last N samples of a latency, for p50/p99 in daemon/status. */
export class LatencyWindow {
  private readonly samples: number[] = [];
  private next = 0;

  constructor(private readonly capacity = 1024) {}

  add(ms: number): void {
    if (this.samples.length < this.capacity) this.samples.push(ms);
    else this.samples[this.next] = ms;
    this.next = (this.next + 1) % this.capacity;
  }

  summary(): { p50: number; p99: number; samples: number } {
    const sorted = [...this.samples].sort((a, b) => a - b);
    const at = (q: number) => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
    return { p50: round(at(0.5)), p99: round(at(0.99)), samples: sorted.length };
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
