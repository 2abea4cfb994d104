import { useInfiniteQuery } from "@tanstack/react-query";

import { api } from "../api/client.ts";
import type { AdminWorkspace, Page } from "../api/types.ts";
import { Field, Select } from "./forms.tsx";

/** The roles a provider may give new people (owners are only ever made by hand). */
export type SsoRole = "admin" | "member" | "viewer";
export const SSO_ROLES: { value: SsoRole; label: string }[] = [
  { value: "member", label: "Member: chats with the workspace's agents" },
  { value: "viewer", label: "Viewer: reads, cannot chat" },
  { value: "admin", label: "Admin: manages agents, providers and members" },
];

export interface GroupRow {
  key: number;
  group: string;
  role: SsoRole;
}

/** Who may sign in through a provider and where they land; the same for OIDC and SAML. */
export interface ProvisioningState {
  domains: string;
  workspaceId: string;
  role: SsoRole;
  groupClaim: string;
  groups: GroupRow[];
}

/** "example.com, Example.org  x.io" → ["example.com", "example.org", "x.io"]. */
export function parseDomains(text: string): string[] {
  return [
    ...new Set(
      text
        .split(/[\s,;]+/)
        .map((d) => d.trim().toLowerCase().replace(/^@/, ""))
        .filter(Boolean),
    ),
  ];
}

const DOMAIN = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$|^localhost$/;

/** Why the domain list is not accepted, checked as the operator types (the server says the same). */
export function domainsProblem(text: string): string | undefined {
  const bad = parseDomains(text).find((d) => !DOMAIN.test(d));
  return bad ? `“${bad}” is not a domain; give domains such as example.com.` : undefined;
}

/** The provisioning part of a create or update body. */
export function provisioningBody(p: ProvisioningState) {
  const rows = p.groups.filter((g) => g.group.trim());
  return {
    allowedDomains: parseDomains(p.domains),
    defaultWorkspaceId: p.workspaceId || null,
    defaultRole: p.role,
    groupClaim: p.groupClaim.trim() || null,
    groupRoles: Object.fromEntries(rows.map((g) => [g.group.trim(), g.role])),
  };
}

/** The admin workspaces list, page by page (shared by the select and the provider list). */
export function useAdminWorkspaces() {
  return useInfiniteQuery({
    queryKey: ["admin-workspaces-pages"],
    initialPageParam: "",
    queryFn: ({ pageParam }) =>
      api<Page<AdminWorkspace>>("GET", `/api/v1/admin/workspaces?limit=100${pageParam ? `&cursor=${pageParam}` : ""}`),
    getNextPageParam: (last) => last.nextCursor ?? undefined,
  });
}

/**
 * Allowed domains, where new people land, their role, and the group → role mapping. Roles follow the groups at
 * every sign-in when a group claim is set (owners are left alone).
 */
export function ProvisioningFields(props: {
  value: ProvisioningState;
  onChange: (p: ProvisioningState) => void;
  errors: Record<string, string | undefined>;
  /** The group attribute's name in this kind of provider's words ("claim" or "attribute"). */
  groupWord: "claim" | "attribute";
  nextKey: () => number;
}) {
  const { value: p, onChange, errors } = props;
  const set = (patch: Partial<ProvisioningState>) => onChange({ ...p, ...patch });
  const workspaces = useAdminWorkspaces();
  const shared = workspaces.data?.pages.flatMap((pg) => pg.items).filter((w) => !w.personal) ?? [];
  const known = !p.workspaceId || shared.some((w) => w.id === p.workspaceId);
  return (
    <fieldset className="field sso-rules">
      <legend>Who may sign in, and where they land</legend>
      <Field
        label="Allowed email domains"
        value={p.domains}
        placeholder="example.com, example.org"
        onChange={(e) => set({ domains: e.target.value })}
        error={errors.allowedDomains}
        hint="Comma-separated. Empty: anyone the provider signs in. Addresses must be verified by the provider."
      />
      {parseDomains(p.domains).length ? (
        <ul className="chips" aria-label="Allowed domains">
          {parseDomains(p.domains).map((d) => (
            <li key={d}>
              <code>{d}</code>
            </li>
          ))}
        </ul>
      ) : null}
      <Select
        label="Where new people land"
        value={p.workspaceId}
        onChange={(v) => set({ workspaceId: v })}
        options={[
          { value: "", label: "Their own personal workspace" },
          ...shared.map((w) => ({ value: w.id, label: w.name })),
          ...(known ? [] : [{ value: p.workspaceId, label: "A workspace not listed yet" }]),
        ]}
      />
      {workspaces.hasNextPage ? (
        <button type="button" className="link-button" onClick={() => void workspaces.fetchNextPage()}>
          Load more workspaces
        </button>
      ) : null}
      {errors.defaultWorkspaceId ? <small className="field-error">{errors.defaultWorkspaceId}</small> : null}
      <small className="hint">
        The first time someone signs in here, Reef creates their account: in this workspace, or with a personal
        workspace of their own. People who already have an account keep it.
      </small>
      {p.workspaceId ? (
        <Select
          label="Their role in it"
          value={p.role}
          onChange={(v) => set({ role: v as SsoRole })}
          options={SSO_ROLES}
        />
      ) : null}
      {p.workspaceId ? <GroupFields {...props} /> : null}
    </fieldset>
  );
}

/** Roles from the provider's groups, in the workspace new people land in. */
function GroupFields(props: Parameters<typeof ProvisioningFields>[0]) {
  const { value: p, onChange, errors } = props;
  const set = (patch: Partial<ProvisioningState>) => onChange({ ...p, ...patch });
  const updateRow = (key: number, patch: Partial<GroupRow>) =>
    set({ groups: p.groups.map((g) => (g.key === key ? { ...g, ...patch } : g)) });
  return (
    <>
      <Field
        label={`Group ${props.groupWord} (optional)`}
        value={p.groupClaim}
        placeholder={props.groupWord === "claim" ? "groups" : "memberOf"}
        onChange={(e) => set({ groupClaim: e.target.value })}
        error={errors.groupClaim}
        hint={`The ${props.groupWord} that lists a person's groups. With it, roles follow the groups below at every sign-in (owners are never changed).`}
      />
      {p.groupClaim.trim() ? (
        <fieldset className="sso-groups">
          <legend>Groups and the role they give</legend>
          {p.groups.map((g, i) => (
            <div key={g.key} className="header-row">
              <Field
                label={`Group ${i + 1}`}
                value={g.group}
                placeholder="reef-admins"
                onChange={(e) => updateRow(g.key, { group: e.target.value })}
              />
              <Select
                label={`Role for group ${i + 1}`}
                value={g.role}
                onChange={(v) => updateRow(g.key, { role: v as SsoRole })}
                options={SSO_ROLES.map((r) => ({ value: r.value, label: r.value }))}
              />
              <button
                type="button"
                className="secondary"
                aria-label={`Remove group ${i + 1}`}
                onClick={() => set({ groups: p.groups.filter((x) => x.key !== g.key) })}
              >
                Remove
              </button>
            </div>
          ))}
          {errors.groupRoles ? <small className="field-error">{errors.groupRoles}</small> : null}
          <div className="actions">
            <button
              type="button"
              className="secondary"
              onClick={() => set({ groups: [...p.groups, { key: props.nextKey(), group: "", role: "member" }] })}
            >
              Add a group
            </button>
          </div>
          <small className="hint">
            Someone in several groups gets the highest role; someone in none gets the role above.
          </small>
        </fieldset>
      ) : null}
    </>
  );
}
