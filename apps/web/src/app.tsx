import { useEffect, useState } from "react";

interface Readiness {
  status: "ready" | "not_ready";
  checks: { database: { ok: boolean }; migrations: { ok: boolean; pending: string[] } };
}

/**
 * The start page until the product screens land: it shows whether this Reef is
 * ready, read from the same /readyz probe operators use.
 */
export function App() {
  const [readiness, setReadiness] = useState<Readiness | "unreachable" | undefined>();

  useEffect(() => {
    const controller = new AbortController();
    fetch("/readyz", { signal: controller.signal })
      .then((res) => res.json() as Promise<Readiness>)
      .then(setReadiness)
      .catch(() => {
        if (!controller.signal.aborted) setReadiness("unreachable");
      });
    return () => controller.abort();
  }, []);

  const label =
    readiness === undefined
      ? "Checking…"
      : readiness === "unreachable"
        ? "The server cannot be reached."
        : readiness.status === "ready"
          ? "Ready"
          : "Not ready: the database is unreachable or migrations are pending.";

  return (
    <main>
      <h1>Reef</h1>
      <p>A self-hostable platform for OpenClaw agents.</p>
      <p role="status" aria-live="polite">
        Server status: <strong>{label}</strong>
      </p>
      <p>
        <a href="/api/docs">API documentation</a>
      </p>
    </main>
  );
}
