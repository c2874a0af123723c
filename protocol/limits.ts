/**
 * Sizes of what a client may send that the daemon keeps (in the log, in session
 * metadata, in memory). A field over its limit is refused with -32602 naming it; the
 * JSON Schema carries the same bounds. Frames themselves are capped by the daemon
 * (`initialize` reports `maxFrameBytes`).
 */
export const FieldLimits = {
  /** session/create `system`: characters. */
  systemChars: 256 * 1024,
  titleChars: 200,
  modelChars: 200,
  /** Absolute paths (workspace, repo paths): Linux's PATH_MAX. */
  pathChars: 4096,
  /** URLs of bindings, repos and MCP servers. */
  urlChars: 2048,
  /** A vault binding's header template. */
  headerChars: 1024,
  /** Names and other short identifiers (client, credential, subscription, cursor). */
  nameChars: 200,
  /** Entries of a session's lists: tools, credentials, repos, permission patterns. */
  listItems: 256,
  mcpServers: 32,
  /** Per MCP server: arguments, environment entries, and the characters of each. */
  mcpArgs: 256,
  mcpEnvEntries: 256,
  mcpValueChars: 32 * 1024,
  /** session/prompt: characters of the text (or of each text block), blocks, characters of each image's base64 data. */
  promptTextChars: 1024 * 1024,
  promptBlocks: 100,
  imageDataChars: 8 * 1024 * 1024,
  /** session/events `types`. */
  eventTypes: 64,
} as const;
