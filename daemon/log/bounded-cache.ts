/**
 * A map that keeps at most `maxEntries` entries and about `maxBytes` of them, dropping
 * the least recently used ones that `evictable` allows (an entry in use stays, over the
 * bounds if it must, until it is idle again and something else is cached).
 */
export class BoundedCache<K, V> {
  private readonly entries = new Map<K, { value: V; bytes: number }>();
  private bytes = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxBytes: number,
    private readonly evictable: (value: V) => boolean,
    private readonly onEvict: (key: K, value: V) => void = () => undefined,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  get totalBytes(): number {
    return this.bytes;
  }

  has(key: K): boolean {
    return this.entries.has(key);
  }

  /** The value, now the most recently used. */
  get(key: K): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  set(key: K, value: V, bytes: number): void {
    this.delete(key);
    this.entries.set(key, { value, bytes });
    this.bytes += bytes;
    this.evict();
  }

  /** The size of an entry changed. */
  resize(key: K, bytes: number): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.bytes += bytes - entry.bytes;
    entry.bytes = bytes;
    this.evict();
  }

  delete(key: K): boolean {
    const entry = this.entries.get(key);
    if (!entry) return false;
    this.entries.delete(key);
    this.bytes -= entry.bytes;
    return true;
  }

  /** Also run when an entry becomes idle, so the bounds hold again once nothing is in use. */
  evict(): void {
    if (this.entries.size <= this.maxEntries && this.bytes <= this.maxBytes) return;
    for (const [key, entry] of this.entries) {
      if (this.entries.size <= this.maxEntries && this.bytes <= this.maxBytes) return;
      if (!this.evictable(entry.value)) continue;
      this.entries.delete(key);
      this.bytes -= entry.bytes;
      this.onEvict(key, entry.value);
    }
  }
}
