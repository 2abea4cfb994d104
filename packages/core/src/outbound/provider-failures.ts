/** Why the LLM proxy could not get an answer from a provider, as a chat turn reports it. */
export type ProviderFailureKind = "unreachable" | "auth";

export interface ProviderFailure {
  workspaceId: string;
  providerId: string;
  kind: ProviderFailureKind;
}

/**
 * What the LLM proxy saw go wrong with a provider, told to the chat turns of
 * that workspace in this process. A gateway retries a refused connection for
 * more than a minute before giving up with a vague "timeout"; the proxy knows
 * at once, so the turn can stop and say plainly which provider is unreachable.
 */
export function createProviderFailures() {
  const watchers = new Set<{ workspaceId: string; providerId: string; fn: (f: ProviderFailure) => void }>();
  return {
    report(f: ProviderFailure): void {
      for (const w of watchers) if (w.workspaceId === f.workspaceId && w.providerId === f.providerId) w.fn(f);
    },
    /** Calls `fn` on each failure of this workspace's provider until the returned function is called. */
    watch(workspaceId: string, providerId: string, fn: (f: ProviderFailure) => void): () => void {
      const w = { workspaceId, providerId, fn };
      watchers.add(w);
      return () => watchers.delete(w);
    },
  };
}

export type ProviderFailures = ReturnType<typeof createProviderFailures>;
