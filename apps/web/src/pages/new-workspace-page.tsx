import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useNavigate } from "@tanstack/react-router";
import { useState } from "react";
import { api, fieldErrors, messageOf } from "../api/client.ts";
import { Field, Notice } from "../components/forms.tsx";
import { usePageTitle } from "../components/page-title.ts";

/** `/workspaces/new`: a shared workspace the creator owns; they invite people from its Members page. */
export function NewWorkspacePage() {
  usePageTitle("New workspace");
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const [name, setName] = useState("");
  const create = useMutation({
    mutationFn: () => api<{ id: string }>("POST", "/api/v1/workspaces", { name: name.trim() }),
    onSuccess: async (ws) => {
      await queryClient.invalidateQueries({ queryKey: ["me"] });
      await navigate({ to: "/w/$wid/setup", params: { wid: ws.id } });
    },
  });
  const errors = fieldErrors(create.error);
  return (
    <section aria-labelledby="new-workspace-title" className="card">
      <h1 id="new-workspace-title">New workspace</h1>
      <p>A workspace has its own agents, providers, conversations and members. You will be its owner.</p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate();
        }}
        noValidate
      >
        <Field
          label="Workspace name"
          required
          value={name}
          onChange={(e) => setName(e.target.value)}
          error={errors.name}
          hint="For example the team's name."
        />
        {create.isError && !errors.name ? <Notice>{messageOf(create.error)}</Notice> : null}
        <button type="submit" disabled={create.isPending || !name.trim()}>
          {create.isPending ? "Creating…" : "Create workspace"}
        </button>
      </form>
    </section>
  );
}
