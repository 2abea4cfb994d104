import { type ReactNode, useCallback, useEffect, useId, useRef, useState } from "react";
import { createPortal } from "react-dom";

/** What a confirmation asks; every destructive action in the app goes through one of these. */
export interface ConfirmOptions {
  /** The question, naming the action and its object: "Remove Ana from Acme?". Labels the dialog. */
  title: string;
  /** The consequences in plain words ("Deletes 7 conversations of 3 people. This cannot be undone."). */
  body: ReactNode;
  /** The confirm button's label; names the action ("Remove member"), never "OK". */
  confirmLabel: string;
  /** When set, the person must type this exact text (e.g. the workspace name) before confirming. */
  typeToConfirm?: string;
  /** Style the confirm button as dangerous (default true); false for consequential but non-destructive actions. */
  danger?: boolean;
}

interface Pending {
  options: ConfirmOptions;
  resolve: (ok: boolean) => void;
  opener: Element | null;
}

/**
 * One accessible confirmation dialog on the native `<dialog>` (modal, focus trapped by the browser).
 *
 * ```tsx
 * const { confirm, dialog } = useConfirm();
 * async function remove() {
 *   if (!(await confirm({ title: "Remove Ana?", body: "She loses access now.", confirmLabel: "Remove member" }))) return;
 *   ...
 * }
 * return <>{...}{dialog}</>;
 * ```
 *
 * Cancel is focused first so Enter never destroys by accident; Escape cancels; when the dialog closes, focus returns to
 * the control that opened it. `confirm()` resolves true only when the confirm button was pressed.
 */
export function useConfirm(): { confirm: (options: ConfirmOptions) => Promise<boolean>; dialog: ReactNode } {
  const [pending, setPending] = useState<Pending | null>(null);
  const confirm = useCallback(
    (options: ConfirmOptions) =>
      new Promise<boolean>((resolve) => {
        setPending({ options, resolve, opener: document.activeElement });
      }),
    [],
  );
  const settle = useCallback(
    (ok: boolean) => {
      if (!pending) return;
      pending.resolve(ok);
      setPending(null);
      const opener = pending.opener;
      // The opener may have re-rendered away (e.g. a removed row); only refocus what is still in the page.
      if (opener instanceof HTMLElement && opener.isConnected) queueMicrotask(() => opener.focus());
    },
    [pending],
  );
  // Portalled to <body>: callers may render `dialog` anywhere, even inside their own <form>.
  const dialog = pending
    ? createPortal(
        <ConfirmDialog key={pending.options.title} options={pending.options} onSettle={settle} />,
        document.body,
      )
    : null;
  return { confirm, dialog };
}

/** The dialog itself; rendered by {@link useConfirm}, shown modally while mounted. */
export function ConfirmDialog(props: { options: ConfirmOptions; onSettle: (ok: boolean) => void }) {
  const { title, body, confirmLabel, typeToConfirm, danger = true } = props.options;
  const ref = useRef<HTMLDialogElement>(null);
  const cancelRef = useRef<HTMLButtonElement>(null);
  const settled = useRef(false);
  const [typed, setTyped] = useState("");
  const id = useId();
  const matches = !typeToConfirm || typed.trim() === typeToConfirm;

  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    if (!el.open) el.showModal();
    cancelRef.current?.focus();
    return () => {
      if (el.open) el.close();
    };
  }, []);

  function finish(ok: boolean) {
    if (settled.current) return;
    settled.current = true;
    props.onSettle(ok);
  }

  return (
    <dialog
      ref={ref}
      className="confirm-dialog"
      aria-labelledby={`${id}-title`}
      aria-describedby={`${id}-body`}
      onCancel={(e) => {
        // Escape: cancel ourselves so state and focus restoration go through one path.
        e.preventDefault();
        finish(false);
      }}
      onClose={() => finish(false)}
    >
      <form
        method="dialog"
        onSubmit={(e) => {
          e.preventDefault();
          if (matches) finish(true);
        }}
      >
        <h2 id={`${id}-title`}>{title}</h2>
        <div id={`${id}-body`} className="confirm-body">
          {body}
        </div>
        {typeToConfirm ? (
          <div className="field">
            <label htmlFor={`${id}-type`}>
              Type <strong>{typeToConfirm}</strong> to confirm
            </label>
            <input
              id={`${id}-type`}
              value={typed}
              autoComplete="off"
              spellCheck={false}
              onChange={(e) => setTyped(e.target.value)}
            />
          </div>
        ) : null}
        <div className="confirm-actions">
          <button ref={cancelRef} type="button" className="secondary" onClick={() => finish(false)}>
            Cancel
          </button>
          <button
            type="submit"
            className={danger ? "danger-solid" : undefined}
            disabled={!matches}
            aria-describedby={matches ? undefined : `${id}-why`}
          >
            {confirmLabel}
          </button>
        </div>
        {matches ? null : (
          <small id={`${id}-why`} className="hint">
            Type the name exactly as shown to enable “{confirmLabel}”.
          </small>
        )}
      </form>
    </dialog>
  );
}
