import { lazy, Suspense } from "react";
import Markdown from "react-markdown";
import remarkGfm from "remark-gfm";
import { markdownComponents } from "./markdown-parts.tsx";

// Syntax highlighting (highlight.js grammars) is the heaviest part of rendering: loaded only once an answer has code.
const HighlightedMarkdown = lazy(() => import("./highlighted-markdown.tsx"));

const FENCE = /^\s*(```|~~~)/m;

function PlainMarkdown(props: { text: string }) {
  return (
    <Markdown remarkPlugins={[remarkGfm]} components={markdownComponents}>
      {props.text}
    </Markdown>
  );
}

/** An answer as GitHub-flavoured Markdown (tables, task lists, strikethrough), code blocks highlighted. */
export function MarkdownText(props: { text: string }) {
  if (!FENCE.test(props.text)) return <PlainMarkdown text={props.text} />;
  return (
    <Suspense fallback={<PlainMarkdown text={props.text} />}>
      <HighlightedMarkdown text={props.text} />
    </Suspense>
  );
}
