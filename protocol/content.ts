import { z } from 'zod';
import { FieldLimits as L } from './limits.js';

/** Content blocks as the Messages API defines them; the log stores them whole. */
export const TextBlock = z.object({ type: z.literal('text'), text: z.string() });
export const ImageBlock = z.object({
  type: z.literal('image'),
  source: z.object({
    type: z.literal('base64'),
    media_type: z.enum(['image/png', 'image/jpeg', 'image/gif', 'image/webp']),
    data: z.string(),
  }),
});
export const ToolUseBlock = z.object({
  type: z.literal('tool_use'),
  id: z.string(),
  name: z.string(),
  input: z.record(z.string(), z.unknown()),
});
export const ToolResultBlock = z.object({
  type: z.literal('tool_result'),
  tool_use_id: z.string(),
  content: z.union([z.string(), z.array(z.union([TextBlock, ImageBlock]))]),
  is_error: z.boolean().optional(),
});

/** What a user may send in a prompt. */
export const UserContentBlock = z.discriminatedUnion('type', [TextBlock, ImageBlock]);
export type UserContentBlock = z.infer<typeof UserContentBlock>;

export const ContentBlock = z.discriminatedUnion('type', [TextBlock, ImageBlock, ToolUseBlock, ToolResultBlock]);
export type ContentBlock = z.infer<typeof ContentBlock>;

/** A user message as the log keeps it. */
export const PromptContent = z.union([z.string().min(1), z.array(UserContentBlock).min(1)]);
export type PromptContent = z.infer<typeof PromptContent>;

/** What session/prompt accepts: PromptContent within the size limits. */
export const PromptInput = z.union([
  z.string().min(1).max(L.promptTextChars),
  z
    .array(
      z.discriminatedUnion('type', [
        TextBlock.extend({ text: z.string().max(L.promptTextChars) }),
        ImageBlock.extend({ source: ImageBlock.shape.source.extend({ data: z.string().max(L.imageDataChars) }) }),
      ]),
    )
    .min(1)
    .max(L.promptBlocks),
]);

export const Usage = z.object({
  inputTokens: z.number().int().nonnegative(),
  outputTokens: z.number().int().nonnegative(),
  cacheReadTokens: z.number().int().nonnegative(),
  cacheWriteTokens: z.number().int().nonnegative(),
});
export type Usage = z.infer<typeof Usage>;
