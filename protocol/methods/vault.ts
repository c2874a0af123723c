import { z } from 'zod';
import { clientRequest } from '../define.js';
import { FieldLimits as L } from '../limits.js';

export const VaultName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'a credential name is letters, digits and _');

/** What a credential unlocks. `{value}` in an HTTP header template is replaced by the secret. */
export const VaultBinding = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('http'),
    url: z.url().max(L.urlChars),
    header: z.string().max(L.headerChars).regex(/^[A-Za-z0-9-]+: .*\{value\}.*$/, 'header looks like "Name: ...{value}..."').optional(),
  }),
  z.object({ kind: z.literal('git'), url: z.url().max(L.urlChars) }),
  z.object({ kind: z.literal('mcp'), url: z.url().max(L.urlChars) }),
]);
export type VaultBinding = z.infer<typeof VaultBinding>;

export const VaultEntryInfo = z.object({
  name: VaultName,
  binding: VaultBinding.optional(),
  createdAt: z.number(),
  updatedAt: z.number(),
});

export const VaultSet = clientRequest('vault/set', {
  scope: 'global',
  description: 'Stores (or replaces) a credential, encrypted. Values are never returned by any method.',
  params: z.object({
    name: VaultName,
    // The redactor finds a value (and its encodings) in whatever comes back; a shorter one would match everywhere.
    value: z.string().min(6, 'a secret must be at least 6 characters long: shorter ones cannot be told apart from ordinary text, so agentd could not redact them').max(65536),
    binding: VaultBinding.optional(),
  }),
  result: z.object({}),
});

export const VaultList = clientRequest('vault/list', {
  scope: 'global',
  description: 'Names and bindings of stored credentials; never values.',
  params: z.object({}).optional(),
  result: z.object({ entries: z.array(VaultEntryInfo) }),
});

export const VaultDelete = clientRequest('vault/delete', {
  scope: 'global',
  description: 'Deletes a credential.',
  params: z.object({ name: VaultName }),
  result: z.object({}),
});
