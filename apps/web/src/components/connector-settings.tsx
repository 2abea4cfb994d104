import { useState } from "react";
import { fieldErrors } from "../api/client.ts";
import { Field } from "./forms.tsx";
import { FixedByConfig, type FormProps, parseHostList, SettingsForm, useSaveSettings } from "./platform-settings.tsx";

/**
 * The operator's connector switch and the private hosts connectors may reach. Off refuses every
 * connector call at once (the MCP proxy checks it per call); gateways drop them at their next start.
 */
export function ConnectorSettingsForm(props: FormProps) {
  const enabled = props.settings.connectorsEnabled;
  const hostsNow = props.settings.connectorAllowedHosts;
  const [on, setOn] = useState(enabled.value);
  const [text, setText] = useState(hostsNow.value.join(", "));
  const save = useSaveSettings(props.onSaved);
  const { hosts, problem } = parseHostList(text);
  const hostsFixed = hostsNow.source === "config";
  const switchFixed = enabled.source === "config" && !enabled.value;
  const error = problem ?? fieldErrors(save.error).connectorAllowedHosts;
  return (
    <SettingsForm
      form={props}
      save={save}
      onSubmit={() => {
        if (error) return;
        save.mutate({
          ...(switchFixed ? {} : { connectorsEnabled: on }),
          ...(hostsFixed ? {} : { connectorAllowedHosts: hosts }),
          ...props.extra,
        });
      }}
      blocked={!!error || (switchFixed && hostsFixed)}
      {...(switchFixed && hostsFixed
        ? { blockedWhy: "Reef's configuration sets both, so they cannot be changed here." }
        : {})}
      saveErrorInField={!!fieldErrors(save.error).connectorAllowedHosts}
      saved="Saved. It applies at once; agents' gateways pick up a switch-off at their next start."
    >
      {switchFixed ? (
        <FixedByConfig name="Connectors" value="off" env="REEF_CONNECTORS_ENABLED" />
      ) : (
        <label className="check">
          <input type="checkbox" checked={on} onChange={(e) => setOn(e.target.checked)} /> Let workspaces connect MCP
          servers, n8n and Activepieces (connectors)
        </label>
      )}
      {hostsFixed ? (
        <FixedByConfig
          name="Allowed connector hosts"
          value={hostsNow.value.join(", ") || "none"}
          env="REEF_CONNECTOR_ALLOWED_HOSTS"
        />
      ) : (
        <Field
          label="Allowed connector hosts"
          value={text}
          onChange={(e) => setText(e.target.value)}
          error={error}
          placeholder="n8n.internal:5678"
          hint="Connectors may only point at public addresses. List here, comma-separated, the hosts on this machine or your network that workspace admins may connect (a self-hosted n8n: n8n.internal:5678). Give the port: without one, every port of that host is open."
        />
      )}
    </SettingsForm>
  );
}
