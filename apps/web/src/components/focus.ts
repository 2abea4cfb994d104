import { useCallback, useRef } from "react";

/**
 * Focus helpers for actions that remove or replace the focused element (Delete,
 * Save, Cancel, a dialog closing): without them focus falls to <body> and a
 * keyboard or screen-reader user has to start again from the top of the page.
 */

/** Focuses `el` after the current render has reached the screen; `#main` when it is gone. */
export function focusLater(el: () => HTMLElement | null | undefined): void {
  requestAnimationFrame(() => {
    const target = el();
    if (target?.isConnected) target.focus();
    else document.getElementById("main")?.focus();
  });
}

/**
 * A ref callback that focuses what just appeared (a form opened by Edit, a notice, a new card).
 * With a `selector`, content still loading (a form waiting for its options) is watched until a
 * match appears, which is then focused unless the person has put focus somewhere else meanwhile.
 */
export function useFocusOnMount<T extends HTMLElement>(selector?: string) {
  const watching = useRef<MutationObserver | null>(null);
  return useCallback(
    (el: T | null) => {
      watching.current?.disconnect();
      watching.current = null;
      if (!el) return;
      if (!selector) {
        el.focus();
        return;
      }
      const target = el.querySelector<HTMLElement>(selector);
      if (target) {
        target.focus();
        return;
      }
      const observer = new MutationObserver(() => {
        const late = el.querySelector<HTMLElement>(selector);
        if (!late) return;
        observer.disconnect();
        watching.current = null;
        const active = document.activeElement;
        if (!active || active === document.body || el.contains(active)) late.focus();
      });
      observer.observe(el, { childList: true, subtree: true });
      watching.current = observer;
    },
    [selector],
  );
}

/**
 * Remembers what had focus when something opened (an edit form, a dialog) and
 * gives it back when it closes: `const back = useFocusReturn(); back.remember(); … back.restore()`.
 */
export function useFocusReturn() {
  const opener = useRef<HTMLElement | null>(null);
  return {
    remember: useCallback((el?: HTMLElement | null) => {
      opener.current = el ?? (document.activeElement as HTMLElement | null);
    }, []),
    restore: useCallback((fallback?: () => HTMLElement | null) => {
      const el = opener.current;
      focusLater(() => (el?.isConnected ? el : (fallback?.() ?? null)));
    }, []),
  };
}

/**
 * Call before a list item is removed. Returns a function to call once the list has
 * re-rendered: it focuses the same control (`selector`) in the item that took its
 * place (the next item, else the previous one), else `fallback`, else `#main`.
 */
export function focusAfterRemoval(
  item: Element | null | undefined,
  selector: string,
  fallback?: () => HTMLElement | null,
): () => void {
  const next = item?.nextElementSibling?.querySelector<HTMLElement>(selector);
  const previous = item?.previousElementSibling?.querySelector<HTMLElement>(selector);
  return () => focusLater(() => (next?.isConnected ? next : previous?.isConnected ? previous : (fallback?.() ?? null)));
}
