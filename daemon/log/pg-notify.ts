/**
 * LISTEN for a schema's append notifications on one dedicated connection, reconnecting
 * with backoff when it drops. Notifications say "<session> <first seq> <count> <writer>";
 * the log reads the events themselves from the table, so a payload never carries data.
 */
import pRetry from 'p-retry';
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

/** Reconnects back off from this to that, with jitter, for as long as the listener is open. */
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
  /** Ends a reconnect loop in progress when the listener closes. */
  private readonly closing = new AbortController();

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
  }

  private lost(client: pg.Client, error: Error): void {
    if (this.closed || this.client !== client) return;
    this.client = undefined;
    client.end().catch(() => undefined);
    this.options.onError(error);
    this.reconnect();
  }

  /** Jittered: daemons that lost the same database do not all come back at once. */
  private reconnect(): void {
    // p-retry gives up on a TypeError; the listener must not: any failure is retried.
    const attempt = () => this.connect().catch((error: unknown) => Promise.reject(error instanceof TypeError ? new Error(error.message, { cause: error }) : error));
    pRetry(attempt, {
      retries: Infinity,
      minTimeout: RETRY_MIN_MS,
      maxTimeout: RETRY_MAX_MS,
      randomize: true,
      unref: true,
      signal: this.closing.signal,
      onFailedAttempt: ({ error }) => this.options.onError(error),
    }).then(
      () => {
        if (!this.closed) this.options.onResync();
      },
      (error: unknown) => {
        if (!this.closed) this.options.onError(error instanceof Error ? error : new Error(String(error)));
      },
    );
  }

  /** Hears `channel` too from now on (and after every reconnect). */
  async listen(channel: string, handler: (payload: string) => void): Promise<void> {
    this.options.extra ??= new Map();
    this.options.extra.set(channel, handler);
    await this.client?.query(`LISTEN "${channel}"`);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.closing.abort();
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }
}
