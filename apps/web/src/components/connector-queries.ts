import { api } from "../api/client.ts";
import type { CatalogEntry, Connector, Page } from "../api/types.ts";

/** One page of the workspace's connectors (the list key is a prefix of the single one's, so both refresh). */
export const connectorsPath = (wid: string) => `/api/v1/workspaces/${wid}/connectors`;

export const connectorQuery = (wid: string, cid: string) => ({
  queryKey: ["connectors", wid, "one", cid],
  queryFn: () => api<Connector>("GET", `${connectorsPath(wid)}/${cid}`),
});

/** The operator's catalogue of stdio servers (names and descriptions only); empty on most servers. */
export const catalogQuery = {
  queryKey: ["connector-catalog"],
  queryFn: async (): Promise<CatalogEntry[]> => {
    const body = await api<CatalogEntry[] | Page<CatalogEntry>>("GET", "/api/v1/connector-catalog");
    return Array.isArray(body) ? body : body.items;
  },
  staleTime: 5 * 60_000,
};
