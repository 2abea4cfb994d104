import { useEffect } from "react";

/** Sets the browser tab's title for this screen ("Members · Acme · Reef"); parts that are empty are left out. */
export function usePageTitle(...parts: Array<string | undefined | null>): void {
  const title = [...parts.filter(Boolean), "Reef"].join(" · ");
  useEffect(() => {
    document.title = title;
  }, [title]);
}
