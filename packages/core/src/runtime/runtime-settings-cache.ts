import { createHash } from "node:crypto";
import type { GatewaySettings } from "@reef/runtime";

/** A workspace's gateway settings as read at one settings version, with their hash. */
export interface CachedSettings {
  settings: GatewaySettings;
  hash: string;
  /** The runtime row's `settings_version` read before the settings were (so they are at least that new). */
  version: number;
  /** The platform-wide inputs (tool policy, connectors switch) they were read under. */
  policyKey: string;
}

function hashSettings(settings: GatewaySettings): string {
  return createHash("sha256").update(JSON.stringify(settings)).digest("hex");
}

/**
 * The settings each workspace's gateway was last computed from, kept per Reef process so a warm message does not
 * read agents, providers and connectors again. An entry is trusted only while the runtime row's `settings_version`
 * (bumped by triggers on every write to those tables, in the writer's transaction) and the platform policy key are
 * what they were when it was read; anything else reads afresh. Replicas each keep their own; the version they
 * compare against is the shared one in Postgres.
 */
export function createSettingsCache(deps: {
  settingsFor: (workspaceId: string) => Promise<GatewaySettings>;
  /** Bounds the memory of a process serving many workspaces; the longest-loaded go first. */
  maxEntries?: number;
}) {
  const maxEntries = deps.maxEntries ?? 10_000;
  const entries = new Map<string, CachedSettings>();

  return {
    /** The entry for this version and policy, or undefined when it must be read again. */
    current(workspaceId: string, version: number, policyKey: string): CachedSettings | undefined {
      const entry = entries.get(workspaceId);
      return entry && entry.version === version && entry.policyKey === policyKey ? entry : undefined;
    },

    /**
     * Reads the settings after `version` was read (the caller's transaction saw it), so they are at least that
     * new; a write in between bumps the version past it and the next look misses again.
     */
    async load(workspaceId: string, version: number, policyKey: string): Promise<CachedSettings> {
      const settings = await deps.settingsFor(workspaceId);
      const entry = { settings, hash: hashSettings(settings), version, policyKey };
      entries.delete(workspaceId);
      entries.set(workspaceId, entry);
      if (entries.size > maxEntries) {
        const oldest = entries.keys().next().value;
        if (oldest !== undefined) entries.delete(oldest);
      }
      return entry;
    },
  };
}
