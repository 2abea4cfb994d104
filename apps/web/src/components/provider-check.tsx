import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api, messageOf } from "../api/client.ts";
import type { Provider, ProviderTest } from "../api/types.ts";
import { ProviderEditForm } from "./edit-forms.tsx";
import { focusLater, useFocusOnMount } from "./focus.ts";
import { Notice } from "./forms.tsx";

// What to do about each failed test, beyond the test's own message.
const FIX: Record<NonNullable<ProviderTest["reason"]>, string> = {
  unreachable: "Nothing answered there: start the server, or correct the host and port under Fix the provider.",
  timeout: "Test again when the server is less busy, or correct the base URL under Fix the provider.",
  bad_key: "Enter the key again under Fix the provider.",
  not_found: "Correct the base URL under Fix the provider.",
  upstream_error: "Try again in a moment, or check the provider's status page.",
  not_allowed: "Ask your operator to allow this host under Admin → Settings → Provider hosts.",
};

/**
 * The one truthful result of a saved provider: tests its connection as soon as it
 * appears and says either "Connected" or "Saved, but the test failed" with the reason
 * and a way to fix it (edit the base URL or key in place, then test again).
 */
export function ProviderCheck(props: { wid: string; provider: Provider }) {
  const { wid, provider } = props;
  const queryClient = useQueryClient();
  const [fixing, setFixing] = useState(false);
  const focusForm = useFocusOnMount<HTMLDivElement>("input");
  const test = useQuery({
    // A new base URL is a new test; "Test again" refetches for a new key.
    queryKey: ["provider-test", wid, provider.id, provider.baseUrl],
    queryFn: () => api<ProviderTest>("POST", `/api/v1/workspaces/${wid}/providers/${provider.id}/test`),
    staleTime: Number.POSITIVE_INFINITY,
    retry: false,
    refetchOnWindowFocus: false,
  });
  const models = test.data?.models.length ?? provider.models.length;
  const result = test.data;
  let status = null;
  if (test.isPending || test.isFetching) {
    status = (
      <Notice kind="info">
        Saved <strong>{provider.name}</strong>. Testing the connection…
      </Notice>
    );
  } else if (test.isError) {
    status = <Notice>{messageOf(test.error)}</Notice>;
  } else if (result?.ok) {
    status = (
      <Notice kind="ok">
        ✓ Connected to <strong>{provider.name}</strong>
        {models ? ` (${models} model${models === 1 ? "" : "s"})` : ""}.
      </Notice>
    );
  } else if (result) {
    status = (
      <Notice>
        <p className="notice-text">
          ✗ Saved <strong>{provider.name}</strong>, but the connection test failed: {result.message}
        </p>
        {result.reason ? <p className="notice-text">{FIX[result.reason]}</p> : null}
      </Notice>
    );
  }
  return (
    <div className="provider-check">
      {status}
      <div className="actions">
        <button
          type="button"
          className="secondary"
          disabled={test.isFetching}
          onClick={() => {
            void test.refetch().then(() => queryClient.invalidateQueries({ queryKey: ["providers", wid] }));
          }}
        >
          {test.isFetching ? "Testing…" : "Test again"}
        </button>
        {result && !result.ok && !fixing ? (
          <button type="button" className="secondary" id={`fix-${provider.id}`} onClick={() => setFixing(true)}>
            Fix the provider
          </button>
        ) : null}
      </div>
      {fixing ? (
        <div ref={focusForm}>
          <ProviderEditForm
            wid={wid}
            provider={provider}
            onDone={() => {
              setFixing(false);
              // Whatever changed, test again and put focus on the result.
              void test.refetch();
              focusLater(() => document.querySelector<HTMLElement>(".provider-check button"));
            }}
          />
        </div>
      ) : null}
    </div>
  );
}
