import { type ComponentProps, useRef } from "react";
import type { Components } from "react-markdown";
import { CopyButton } from "./copy-button.tsx";

/** A fenced code block with its own copy button (what the block shows, without the button's label). */
function CodeBlock(props: ComponentProps<"pre">) {
  const ref = useRef<HTMLPreElement>(null);
  const { node: _node, ...rest } = props as ComponentProps<"pre"> & { node?: unknown };
  return (
    <div className="code-block">
      <CopyButton text={() => ref.current?.textContent ?? ""} label="code" className="chip-button code-copy" />
      <pre ref={ref} {...rest} />
    </div>
  );
}

/** Links in answers open in a new tab, and tables scroll on their own instead of widening the page. */
export const markdownComponents: Components = {
  pre: CodeBlock,
  a: ({ node: _node, ...props }) => <a {...props} target="_blank" rel="noreferrer noopener" />,
  // A task list's boxes show state; they are not controls, so they say what they mean.
  input: ({ node: _node, ...props }) =>
    props.type === "checkbox" ? (
      <input {...props} disabled aria-label={props.checked ? "Done" : "Not done"} />
    ) : (
      <input {...props} />
    ),
  table: ({ node: _node, ...props }) => (
    <div className="table-scroll">
      <table {...props} />
    </div>
  ),
};
