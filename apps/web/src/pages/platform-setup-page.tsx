import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Navigate, useNavigate } from "@tanstack/react-router";
import { api, messageOf } from "../api/client.ts";
import type { PlatformSettings } from "../api/types.ts";
import { Notice } from "../components/forms.tsx";
import { usePageTitle } from "../components/page-title.ts";
import { EmailForm, IdleTimeoutForm, PublicUrlForm, platformSettingsQuery } from "../components/platform-settings.tsx";
import { useMe } from "../components/session.ts";

const STEPS = ["Address", "Email", "Workspaces"] as const;

/**
 * The first-run wizard for the platform's first operator: public URL, outgoing
 * email (optional) and how long idle workspaces keep running. Every step saves
 * on the server with the step reached, so leaving and coming back resumes there.
 */
export function PlatformSetupPage() {
  const me = useMe();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  usePageTitle("Welcome: set up Reef");
  const settings = useQuery({ ...platformSettingsQuery, enabled: me.data?.user.platformRole === "super_admin" });
  const workspace = me.data?.workspaces.find((w) => w.personal) ?? me.data?.workspaces[0];
  const onward = () =>
    workspace ? navigate({ to: "/w/$wid/setup", params: { wid: workspace.id } }) : navigate({ to: "/admin" });
  // Skipping a step or finishing with what is there: saves where the wizard is.
  const advance = useMutation({
    mutationFn: (patch: Record<string, unknown>) => api<PlatformSettings>("PATCH", "/api/v1/admin/settings", patch),
    onSuccess: async (s) => {
      queryClient.setQueryData(platformSettingsQuery.queryKey, s);
      if (s.setup.completed) await onward();
    },
  });
  if (me.data && me.data.user.platformRole !== "super_admin") return <Navigate to="/" replace />;
  if (settings.isPending) return <p>Loading…</p>;
  if (settings.isError) return <Notice>{messageOf(settings.error)}</Notice>;
  const s = settings.data;
  if (s.setup.completed) return <Notice kind="ok">Reef is set up. Change these settings any time under Admin.</Notice>;
  const step = Math.min(s.setup.step, STEPS.length - 1);
  const later = (
    <button type="button" className="link-button" onClick={() => void onward()}>
      Do this later
    </button>
  );
  return (
    <section aria-labelledby="platform-setup-title" className="wizard">
      <h1 id="platform-setup-title">Welcome to Reef</h1>
      <p>You are the first person here, so you run this Reef. Three quick settings, then your own workspace.</p>
      <ol className="steps" aria-label="Progress">
        {STEPS.map((name, i) => (
          <li key={name} aria-current={i === step ? "step" : undefined} className={i < step ? "done" : ""}>
            {name}
          </li>
        ))}
      </ol>
      {step === 0 ? (
        <>
          <h2>Where people reach Reef</h2>
          <PublicUrlForm settings={s} extra={{ setupStep: 1 }} submitLabel="Continue">
            {later}
          </PublicUrlForm>
        </>
      ) : null}
      {step === 1 ? (
        <>
          <h2>Email (optional)</h2>
          <p>
            With a mail server, invites arrive in people's inboxes. Without one, Reef shows you an invite link to pass
            on yourself.
          </p>
          <EmailForm settings={s} extra={{ setupStep: 2 }} submitLabel="Save and continue">
            <button
              type="button"
              className="secondary"
              onClick={() => advance.mutate({ setupStep: 2 })}
              disabled={advance.isPending}
            >
              Skip: no email for now
            </button>
          </EmailForm>
        </>
      ) : null}
      {step === 2 ? (
        <>
          <h2>Idle workspaces</h2>
          <IdleTimeoutForm
            settings={s}
            extra={{ setupStep: 3, setupCompleted: true }}
            submitLabel="Finish"
            onSaved={() => void onward()}
          >
            <button
              type="button"
              className="secondary"
              onClick={() => advance.mutate({ setupCompleted: true, setupStep: 3 })}
              disabled={advance.isPending}
            >
              Keep {s.runtimeIdleTimeoutMinutes.value} minutes and finish
            </button>
          </IdleTimeoutForm>
        </>
      ) : null}
      {advance.isError ? <Notice>{messageOf(advance.error)}</Notice> : null}
    </section>
  );
}
