import { useEffect, useState } from "react";

/**
 * Copies text to the clipboard and says so in place ("Copied"), announced to screen readers. `text` is read at click
 * time so a code block can hand over what it shows.
 */
export function CopyButton(props: { text: () => string; label: string; className?: string }) {
  const [state, setState] = useState<"idle" | "copied" | "failed">("idle");
  useEffect(() => {
    if (state === "idle") return;
    const t = setTimeout(() => setState("idle"), 2000);
    return () => clearTimeout(t);
  }, [state]);

  async function copy() {
    try {
      await navigator.clipboard.writeText(props.text());
      setState("copied");
    } catch {
      // Clipboard access can be refused (permissions, insecure origin): say so rather than pretend.
      setState("failed");
    }
  }

  return (
    <button type="button" className={props.className ?? "chip-button"} onClick={() => void copy()}>
      <span aria-live="polite">{state === "copied" ? "Copied" : state === "failed" ? "Copy failed" : "Copy"}</span>
      {state === "idle" ? <span className="visually-hidden"> {props.label}</span> : null}
    </button>
  );
}
