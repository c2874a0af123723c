import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { open, readFile, rename, writeFile } from 'node:fs/promises';
import { AgentdError, ErrorCode, type VaultBinding } from '../../protocol/index.js';
import { Redactor } from './redact.js';

/** One stored credential: the value only ever exists encrypted on disk. */
interface SealedEntry {
  name: string;
  binding?: VaultBinding;
  createdAt: number;
  updatedAt: number;
  iv: string;
  tag: string;
  ciphertext: string;
}

export interface VaultEntryInfo {
  name: string;
  binding?: VaultBinding;
  createdAt: number;
  updatedAt: number;
}

const KEY_BYTES = 32;
/** Every value is searched for in everything redacted: the vault stays small. */
const MAX_VAULT_ENTRIES = 256;

/**
 * Credentials by name, AES-256-GCM with a fresh nonce per write, under a key file
 * (mode 0600) created on first use. Values go in through `set` and come out only
 * through `reveal`, which the daemon's credential paths call; no protocol method
 * returns one.
 */
export class Vault {
  private entries: Map<string, SealedEntry> | undefined;
  private cachedRedactor: Promise<Redactor> | undefined;
  private key: Buffer | undefined;
  private writes: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly file: string,
    private readonly keyFile: string,
    /** Told of the new redactor after every change (the daemon's log file uses it). */
    private readonly onChange: (redactor: Redactor) => void = () => undefined,
  ) {}

  async set(name: string, value: string, binding: VaultBinding | undefined): Promise<void> {
    await this.serial(async () => {
      const entries = await this.load();
      if (!entries.has(name) && entries.size >= MAX_VAULT_ENTRIES) {
        throw new AgentdError(ErrorCode.LimitExceeded, `the vault holds ${MAX_VAULT_ENTRIES} credentials already; delete one first`, { limit: 'vaultEntries', max: MAX_VAULT_ENTRIES });
      }
      const key = await this.loadKey();
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from(name));
      const ciphertext = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
      const now = Date.now();
      entries.set(name, {
        name,
        ...(binding ? { binding } : {}),
        createdAt: entries.get(name)?.createdAt ?? now,
        updatedAt: now,
        iv: iv.toString('base64'),
        tag: cipher.getAuthTag().toString('base64'),
        ciphertext: ciphertext.toString('base64'),
      });
      await this.persist(entries);
    });
  }

  async list(): Promise<VaultEntryInfo[]> {
    const entries = await this.load();
    return [...entries.values()]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map(({ name, binding, createdAt, updatedAt }) => ({ name, createdAt, updatedAt, ...(binding ? { binding } : {}) }));
  }

  async delete(name: string): Promise<void> {
    await this.serial(async () => {
      const entries = await this.load();
      if (!entries.delete(name)) throw notFound(name);
      await this.persist(entries);
    });
  }

  /** The plaintext, for the daemon's own use (proxy, model key). Never send it anywhere else. */
  async reveal(name: string): Promise<{ value: string; binding?: VaultBinding }> {
    const entry = (await this.load()).get(name);
    if (!entry) throw notFound(name);
    const decipher = createDecipheriv('aes-256-gcm', await this.loadKey(), Buffer.from(entry.iv, 'base64'));
    decipher.setAAD(Buffer.from(name));
    decipher.setAuthTag(Buffer.from(entry.tag, 'base64'));
    const value = Buffer.concat([decipher.update(Buffer.from(entry.ciphertext, 'base64')), decipher.final()]).toString('utf8');
    return entry.binding ? { value, binding: entry.binding } : { value };
  }

  /** A redactor of every stored value; rebuilt after each change. */
  redactor(): Promise<Redactor> {
    this.cachedRedactor ??= (async () => {
      const entries = await this.load();
      return new Redactor(await Promise.all([...entries.keys()].map(async (name) => ({ name, value: (await this.reveal(name)).value }))));
    })();
    return this.cachedRedactor;
  }

  private serial<T>(task: () => Promise<T>): Promise<T> {
    this.cachedRedactor = undefined;
    const run = this.writes.then(task, task).finally(() => {
      this.cachedRedactor = undefined;
      void this.redactor().then(this.onChange, () => undefined);
    });
    this.writes = run.catch(() => undefined);
    return run;
  }

  private async load(): Promise<Map<string, SealedEntry>> {
    if (this.entries) return this.entries;
    const text = await readFile(this.file, 'utf8').catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? '[]' : Promise.reject(e)));
    this.entries = new Map((JSON.parse(text) as SealedEntry[]).map((e) => [e.name, e]));
    return this.entries;
  }

  private async loadKey(): Promise<Buffer> {
    if (this.key) return this.key;
    try {
      // 'wx': exactly one writer creates the key; everyone else reads it.
      await writeFile(this.keyFile, randomBytes(KEY_BYTES), { mode: 0o600, flag: 'wx' });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const key = await readFile(this.keyFile);
    if (key.length !== KEY_BYTES) throw new AgentdError(ErrorCode.InternalError, `vault key file ${this.keyFile} is damaged`);
    this.key = key;
    return key;
  }

  /** Write-then-rename with fsync, so a crash leaves the old or the new vault, never half of one. */
  private async persist(entries: Map<string, SealedEntry>): Promise<void> {
    const tmp = `${this.file}.tmp`;
    const handle = await open(tmp, 'w', 0o600);
    try {
      await handle.writeFile(JSON.stringify([...entries.values()]));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, this.file);
  }
}

function notFound(name: string): AgentdError {
  return new AgentdError(ErrorCode.VaultEntryNotFound, `no credential named ${name} in the vault`, { name });
}
