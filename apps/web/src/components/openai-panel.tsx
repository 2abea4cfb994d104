import { useQuery } from "@tanstack/react-query";
import { useId, useState } from "react";
import { agentsQuery } from "./agent-form.tsx";
import { CopyButton } from "./chat/copy-button.tsx";
import { Select } from "./forms.tsx";

const PLACEHOLDER = "reef_…";

type Example = "curl" | "python" | "javascript" | "open-webui" | "librechat";
const EXAMPLES: { value: Example; label: string }[] = [
  { value: "curl", label: "curl" },
  { value: "python", label: "Python (openai package)" },
  { value: "javascript", label: "JavaScript (openai package)" },
  { value: "open-webui", label: "Open WebUI" },
  { value: "librechat", label: "LibreChat" },
];

/** The copy-paste text for one client, with the base URL, a model (agent id) and the key filled in. */
export function exampleFor(kind: Example, baseUrl: string, model: string, key: string): string {
  switch (kind) {
    case "curl":
      return [
        `curl ${baseUrl}/chat/completions \\`,
        `  -H "Authorization: Bearer ${key}" \\`,
        `  -H "Content-Type: application/json" \\`,
        `  -d '{"model": "${model}", "stream": true, "messages": [{"role": "user", "content": "Hello!"}]}'`,
      ].join("\n");
    case "python":
      return [
        "from openai import OpenAI",
        "",
        `client = OpenAI(base_url="${baseUrl}", api_key="${key}")`,
        "for model in client.models.list():",
        "    print(model.id, model.name)  # each agent the key may use",
        "",
        "answer = client.chat.completions.create(",
        `    model="${model}",`,
        '    messages=[{"role": "user", "content": "Hello!"}],',
        ")",
        "print(answer.choices[0].message.content)",
      ].join("\n");
    case "javascript":
      return [
        'import OpenAI from "openai";',
        "",
        `const client = new OpenAI({ baseURL: "${baseUrl}", apiKey: "${key}" });`,
        "const stream = await client.chat.completions.create({",
        `  model: "${model}",`,
        '  messages: [{ role: "user", content: "Hello!" }],',
        "  stream: true,",
        "});",
        'for await (const chunk of stream) process.stdout.write(chunk.choices[0]?.delta?.content ?? "");',
      ].join("\n");
    case "open-webui":
      return [
        "Admin Panel → Settings → Connections → OpenAI API → Add connection",
        `  URL:  ${baseUrl}`,
        `  Key:  ${key}`,
        "Save: Reef's agents appear in the model picker.",
      ].join("\n");
    case "librechat":
      return [
        "# librechat.yaml",
        "endpoints:",
        "  custom:",
        '    - name: "Reef"',
        `      apiKey: "${key}"`,
        `      baseURL: "${baseUrl}"`,
        "      models:",
        `        default: ["${model}"]`,
        "        fetch: true",
        "      titleConvo: false",
        '      modelDisplayLabel: "Reef"',
      ].join("\n");
  }
}

/**
 * "Use your agents from other apps": the workspace's OpenAI-compatible base URL and copy-paste
 * examples. The key is never shown again after creation, so examples carry a placeholder unless
 * a key was created just now on this page (then the person may fill it in).
 */
export function OpenAiPanel(props: { wid: string; newKey?: string | undefined }) {
  const baseUrl = `${window.location.origin}/api/v1/workspaces/${props.wid}/openai/v1`;
  const agents = useQuery(agentsQuery(props.wid));
  const [kind, setKind] = useState<Example>("curl");
  const [fill, setFill] = useState(true);
  const id = useId();
  const first = agents.data?.items[0];
  const key = props.newKey && fill ? props.newKey : PLACEHOLDER;
  const example = exampleFor(kind, baseUrl, first?.id ?? "<agent id>", key);
  return (
    <section className="card example-panel" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>Use your agents from other apps</h2>
      <p>
        Reef speaks the OpenAI API, so any app or library that lets you set an OpenAI base URL (Open WebUI, LibreChat,
        the official SDKs) can chat with this workspace's agents. Each agent is a model; its id is the agent's id. The
        key's role limits what it may do, like a person's, and its conversations show in the history.
      </p>
      <div className="field">
        <span className="label">Base URL</span>
        <div className="secret-row">
          <code className="invite-link" data-testid="openai-base-url">
            {baseUrl}
          </code>
          <CopyButton text={() => baseUrl} label="base URL" className="secondary" />
        </div>
      </div>
      {agents.data && agents.data.items.length > 0 ? (
        <details>
          <summary>Models (agents) in this workspace</summary>
          <ul className="model-list">
            {agents.data.items.map((a) => (
              <li key={a.id}>
                {a.name}: <code>{a.id}</code>
              </li>
            ))}
          </ul>
        </details>
      ) : null}
      <Select
        label="Example for"
        value={kind}
        onChange={(v) => setKind(v as Example)}
        options={EXAMPLES}
        name="example"
      />
      {props.newKey ? (
        <label className="check">
          <input type="checkbox" checked={fill} onChange={(e) => setFill(e.target.checked)} /> Fill in the key created
          just now
        </label>
      ) : (
        <p className="hint">
          Replace <code>{PLACEHOLDER}</code> with a key: keys are shown only once, when created below.
        </p>
      )}
      {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable block must be reachable by keyboard */}
      <pre className="curl-example" tabIndex={0} data-testid="openai-example">
        {example}
      </pre>
      <CopyButton text={() => example} label="example" className="secondary" />
    </section>
  );
}
