/**
 * LISTEN for a schema's append notifications on one dedicated connection, reconnecting
 * with backoff when it drops. Notifications say "<session> <first seq> <count> <writer>";
 * the log reads the events themselves from the table, so a payload never carries data.
 */
import pg from 'pg';

export interface AppendNotice {
  sessionId: string;
  first: number;
  count: number;
  writer: string;
}

export interface NotifyOptions {
  connection: pg.ClientConfig;
  channel: string;
  onNotice(notice: AppendNotice): void;
  /** Other channels heard on the same connection: name → handler of each payload. */
  extra?: Map<string, (payload: string) => void>;
  /** After a reconnect: notices may have been missed meanwhile. */
  onResync(): void;
  onError(error: Error): void;
}

const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 2000;

function parseNotice(payload: string | undefined): AppendNotice | undefined {
  const [sessionId, first, count, writer] = (payload ?? '').split(' ');
  if (!sessionId || writer === undefined) return undefined;
  const notice = { sessionId, first: Number(first), count: Number(count), writer };
  return Number.isSafeInteger(notice.first) && Number.isSafeInteger(notice.count) ? notice : undefined;
}

export class PgListener {
  private client: pg.Client | undefined;
  private closed = false;
  private retryMs = RETRY_MIN_MS;
  private retryTimer: NodeJS.Timeout | undefined;

  private constructor(private readonly options: NotifyOptions) {}

  /** Resolves once the first LISTEN is in place, so no notice after open is missed. */
  static async open(options: NotifyOptions): Promise<PgListener> {
    const listener = new PgListener(options);
    await listener.connect();
    return listener;
  }

  private async connect(): Promise<void> {
    const client = new pg.Client(this.options.connection);
    client.on('notification', (message) => {
      if (message.channel !== this.options.channel) {
        this.options.extra?.get(message.channel)?.(message.payload ?? '');
        return;
      }
      const notice = parseNotice(message.payload);
      if (notice) this.options.onNotice(notice);
    });
    client.on('error', (error) => this.lost(client, error));
    client.on('end', () => this.lost(client, new Error('notification connection ended')));
    await client.connect();
    for (const channel of [this.options.channel, ...(this.options.extra?.keys() ?? [])]) await client.query(`LISTEN "${channel}"`);
    if (this.closed) {
      await client.end();
      return;
    }
    this.client = client;
    this.retryMs = RETRY_MIN_MS;
  }

  private lost(client: pg.Client, error: Error): void {
    if (this.closed || this.client !== client) return;
    this.client = undefined;
    client.end().catch(() => undefined);
    this.options.onError(error);
    this.retry();
  }

  private retry(): void {
    if (this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.connect().then(
        () => this.options.onResync(),
        (error: unknown) => {
          this.options.onError(error instanceof Error ? error : new Error(String(error)));
          this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
          this.retry();
        },
      );
    }, this.retryMs);
    this.retryTimer.unref();
  }

  /** Hears `channel` too from now on (and after every reconnect). */
  async listen(channel: string, handler: (payload: string) => void): Promise<void> {
    this.options.extra ??= new Map();
    this.options.extra.set(channel, handler);
    await this.client?.query(`LISTEN "${channel}"`);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }
}
