import { useMutation, useQuery } from "@tanstack/react-query";
import { useNavigate, useParams } from "@tanstack/react-router";
import { api, messageOf } from "../api/client.ts";
import type { ChatSession } from "../api/types.ts";
import { AgentForm, agentsQuery, providersQuery } from "../components/agent-form.tsx";
import { focusLater } from "../components/focus.ts";
import { Notice } from "../components/forms.tsx";
import { usePageTitle } from "../components/page-title.ts";
import { ProviderCheck } from "../components/provider-check.tsx";
import { ProviderForm } from "../components/provider-form.tsx";
import { atLeast, useWorkspace } from "../components/session.ts";

/**
 * The workspace wizard: add a provider, create an agent, start chatting. The
 * step is read from what the workspace already has, so leaving and coming back
 * resumes where the person stopped.
 */
export function SetupPage() {
  const { wid } = useParams({ strict: false }) as { wid: string };
  const membership = useWorkspace(wid);
  const navigate = useNavigate();
  const providers = useQuery(providersQuery(wid));
  const agents = useQuery(agentsQuery(wid));
  usePageTitle("Set up your workspace", membership?.name);
  const start = useMutation({
    mutationFn: (agentId: string) => api<ChatSession>("POST", `/api/v1/workspaces/${wid}/sessions`, { agentId }),
    onSuccess: (s) => navigate({ to: "/w/$wid/chat", params: { wid }, search: { session: s.id } }),
  });
  if (providers.isPending || agents.isPending) return <p>Loading…</p>;
  const provider = providers.data?.items[0];
  const agent = agents.data?.items[0];
  const step = !provider ? 1 : !agent ? 2 : 3;
  const canChat = atLeast(membership?.role, "member");
  if (!canChat) {
    return (
      <Notice kind="info">Your role in this workspace (viewer) can look around but not set up agents or chat.</Notice>
    );
  }
  return (
    <section aria-labelledby="setup-title" className="wizard">
      <h1 id="setup-title">Set up your workspace</h1>
      <ol className="steps" aria-label="Progress">
        <li aria-current={step === 1 ? "step" : undefined} className={step > 1 ? "done" : ""}>
          Connect an LLM provider
        </li>
        <li aria-current={step === 2 ? "step" : undefined} className={step > 2 ? "done" : ""}>
          Create an agent
        </li>
        <li aria-current={step === 3 ? "step" : undefined}>Start chatting</li>
      </ol>
      {step === 1 ? (
        <>
          <p>
            Your agents think with a language model you bring: paste an API key from OpenAI, Anthropic or OpenRouter, or
            point Reef at a local server such as Ollama.
          </p>
          <ProviderForm
            wid={wid}
            canShare={atLeast(membership?.role, "admin")}
            onCreated={() =>
              void providers.refetch().then(() => focusLater(() => document.querySelector(".provider-check button")))
            }
          />
        </>
      ) : null}
      {step === 2 && provider ? (
        <>
          <ProviderCheck wid={wid} provider={provider} />
          <h2>Create your first agent</h2>
          <AgentForm
            wid={wid}
            canGrantTools={atLeast(membership?.role, "admin")}
            onCreated={() => void agents.refetch().then(() => focusLater(() => document.getElementById("start-chat")))}
          />
        </>
      ) : null}
      {step === 3 && agent ? (
        <>
          <p>
            <strong>{agent.name}</strong> is ready. Your first message starts your workspace; the chat shows how long
            that usually takes.
          </p>
          {start.isError ? <Notice>{messageOf(start.error)}</Notice> : null}
          <button type="button" id="start-chat" onClick={() => start.mutate(agent.id)} disabled={start.isPending}>
            Start chatting with {agent.name}
          </button>
        </>
      ) : null}
    </section>
  );
}
