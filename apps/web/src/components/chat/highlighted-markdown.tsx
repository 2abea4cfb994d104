import Markdown from "react-markdown";
import rehypeHighlight from "rehype-highlight";
import remarkGfm from "remark-gfm";
import { markdownComponents } from "./markdown-parts.tsx";

// A module of its own so that highlight.js lands in a lazy chunk (see markdown.tsx).

export default function HighlightedMarkdown(props: { text: string }) {
  return (
    <Markdown
      remarkPlugins={[remarkGfm]}
      rehypePlugins={[[rehypeHighlight, { detect: true }]]}
      components={markdownComponents}
    >
      {props.text}
    </Markdown>
  );
}
