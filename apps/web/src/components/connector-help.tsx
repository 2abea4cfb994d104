import { useQuery } from "@tanstack/react-query";
import { ApiError } from "../api/client.ts";
import type { ConnectorKind } from "../api/types.ts";
import { Notice } from "./forms.tsx";
import { platformSettingsQuery } from "./platform-settings.tsx";
import { useMe } from "./session.ts";

/**
 * What to switch on at the other end, shown inline in the form (the same steps as docs/connectors.md),
 * so nobody has to leave the page to find where a token lives.
 */
export function SetupHelp(props: { kind: ConnectorKind }) {
  if (props.kind === "n8n") {
    return (
      <details className="connector-help">
        <summary>What to set up in n8n</summary>
        <ol>
          <li>
            In n8n, open <strong>Settings → Instance-level MCP</strong> and turn MCP access on.
          </li>
          <li>
            Copy the <strong>access token</strong> from its connection details (generating a new one revokes the old
            one). Reef derives the endpoint <code>/mcp-server/http</code> from the instance URL.
          </li>
          <li>
            Open each workflow agents may run and switch on <strong>Available in MCP</strong>: n8n offers nothing else.
          </li>
          <li>
            Optional, to see the workflows here: create an API key under <strong>Settings → n8n API</strong>.
          </li>
        </ol>
      </details>
    );
  }
  if (props.kind === "activepieces") {
    return (
      <details className="connector-help">
        <summary>What to set up in Activepieces</summary>
        <ol>
          <li>
            In your Activepieces project, open <strong>Settings → MCP Server</strong> and toggle the server on.
          </li>
          <li>
            Copy the <strong>server URL</strong> (it ends in <code>/mcp-server/http</code>) and the{" "}
            <strong>token</strong>. Rotating the token there disconnects Reef until you paste the new one.
          </li>
          <li>Flows with an MCP trigger become tools; tool categories are switched on or off on the same page.</li>
          <li>Optional, to see the flows here: give the instance URL and an API key of the platform.</li>
        </ol>
      </details>
    );
  }
  if (props.kind === "mcp") {
    return (
      <details className="connector-help">
        <summary>Which servers work</summary>
        <p>
          Any MCP server Reef can reach over the network, speaking Streamable HTTP (most current servers) or the older
          SSE transport. Agents never see the token or headers: Reef keeps them encrypted and adds them itself on every
          call. Servers on this machine or a private network need the operator to allow their host first.
        </p>
      </details>
    );
  }
  return null;
}

/** The operator switched connectors off: said once, plainly, on every connector screen. */
export function DisabledBanner() {
  return (
    <Notice kind="info">
      <strong>Connectors are switched off on this server.</strong> The operator has turned them off for every workspace:
      agents cannot use these tools until they are switched on again under Admin → Settings → Connectors.
    </Notice>
  );
}

export const isDisabled = (err: unknown) => err instanceof ApiError && err.code === "CONNECTORS_DISABLED";

/**
 * Whether connectors are switched off platform-wide: operators read it from the settings; everyone
 * else learns it from the first refusal (reading connectors still works while they are off).
 */
export function useConnectorsOff(...errors: unknown[]): boolean {
  const me = useMe();
  const operator = me.data?.user.platformRole === "super_admin";
  const settings = useQuery({ ...platformSettingsQuery, enabled: operator });
  return settings.data?.connectorsEnabled.value === false || errors.some(isDisabled);
}
