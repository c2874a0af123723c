import { ImageBlock, type ContentBlock, type ToolErrorKind } from '../../protocol/index.js';

/** A tool call's outcome as the harness records it in tool.result, wherever the tool ran. */
export interface ToolOutcome {
  content: ContentBlock[];
  isError: boolean;
  errorKind?: ToolErrorKind;
}

/** MCP tool content, as a sandbox's tools and remote MCP servers return it. */
export interface McpContent {
  type: string;
  text?: string;
  data?: string;
  mimeType?: string;
}

const MediaType = ImageBlock.shape.source.shape.media_type;

/**
 * MCP tool content as Messages-API content blocks: the one conversion on the tool-call
 * path. Images of a type the model does not take become a line of text saying so, and
 * other kinds (audio, resources) their JSON, so every block is one the log's schema and
 * the model accept.
 */
export function contentBlocks(items: readonly McpContent[]): ContentBlock[] {
  return items.map((item): ContentBlock => {
    if (item.type === 'text') return { type: 'text', text: item.text ?? '' };
    if (item.type === 'image' && item.data) {
      const media = MediaType.safeParse(item.mimeType);
      if (media.success) return { type: 'image', source: { type: 'base64', media_type: media.data, data: item.data } };
      return { type: 'text', text: `[an image of type ${item.mimeType ?? 'unknown'} was left out: the model takes ${MediaType.options.join(', ')}]` };
    }
    return { type: 'text', text: JSON.stringify(item) };
  });
}
