import http, { type IncomingMessage, type ServerResponse } from "node:http";
import https from "node:https";
import { pipeline, Transform } from "node:stream";
import { type Db, extendScope, isUuid, type ProviderKind, schema, type Tx, withScope } from "@reef/db";
import { and, eq, sql } from "drizzle-orm";
import { appendAudit } from "../audit/audit-service.ts";
import { monthOf, type QuotaService } from "../quotas/quota-service.ts";
import type { RequestContext } from "../shared/context.ts";
import { type ApprovedTarget, approvedRequest, approveTarget, EgressRefusedError } from "../shared/guarded-http.ts";
import type { Vault } from "../vault/vault-service.ts";
import { hashCredential } from "./llm-credentials.ts";
import { createLlmMetering, endpointOf, type LlmCallRecord } from "./llm-metering.ts";
import {
  allowedPath,
  answerHeaders,
  BodyTooLargeError,
  credentialOf,
  forwardedHeaders,
  prepareBody,
  readBody,
  sendError,
} from "./llm-proxy-http.ts";
import { createUsageParser } from "./llm-usage-parser.ts";
import type { ProviderFailure } from "./provider-failures.ts";

const { llmCredentials, providers, usageMonthly, workspaces } = schema;

/** Why a presented credential was refused, as audited. */
export type RefusalReason = "foreign" | "unknown" | "revoked";

/** Who is calling: over a runtime's own socket, the workspace is known before any credential is read. */
export interface ProxyCaller {
  /** The workspace whose runtime's socket the call arrived on; absent on Reef's HTTP route. */
  workspaceId?: string;
}

export interface LlmProxyDeps {
  db: Db;
  vault: Vault;
  quotas: Pick<QuotaService, "tokenLimitFor" | "recordTokens">;
  /** Non-public hosts the operator allows providers on (the same list provider probes obey). */
  allowedHosts: () => Promise<readonly string[]>;
  /** Largest request body forwarded (a long conversation with images). Default 32 MiB. */
  maxBodyBytes?: number;
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /** Told at once when a provider refuses the connection or the key, so the chat turn fails fast (see provider-failures.ts). */
  onProviderFailure?: ((f: ProviderFailure) => void) | undefined;
}

/** The upstream connections kept alive, per approved target (see {@link agentFor}). */
const MAX_AGENTS = 256;

function isAnthropicKind(kind: ProviderKind | undefined): boolean {
  return kind === "anthropic";
}

type Grant =
  | { kind: "ok"; workspaceId: string; providerId: string; vendor: ProviderKind; baseUrl: string; apiKey?: string }
  | { kind: "refused"; reason: RefusalReason; workspaceId: string | undefined }
  | { kind: "budget"; workspaceId: string; providerId: string; used: number; max: number; secondsLeft: number };

/**
 * Reef's LLM proxy: a gateway's provider calls arrive here with a credential
 * minted for its runtime, are checked against the database on every call (a
 * deleted provider or workspace, or a rotated credential, stops at once),
 * and are forwarded to the provider with its real key, opened from the vault
 * for this call only. Answers stream back as they arrive; the usage they
 * report is metered, and a workspace over its monthly token budget is refused.
 */
export function createLlmProxy(deps: LlmProxyDeps) {
  const maxBodyBytes = deps.maxBodyBytes ?? 32 * 1024 * 1024;
  const metering = createLlmMetering(deps);
  /** Hashes of credentials rotated away by this Reef, so a refusal can say `revoked` (bounded). */
  const revoked = new Set<string>();
  /** Refusals already audited recently, by workspace and credential, so a retrying gateway does not flood the trail. */
  const audited = new Map<string, number>();
  const agents = new Map<string, http.Agent>();
  const ctx: RequestContext = { actor: { kind: "system", name: "llm-proxy" } };

  /**
   * A keep-alive pool per approved target: every socket in it was connected
   * through a lookup answering only with the addresses the policy approved, so
   * reusing one is as safe as a fresh connection, and saves a TLS handshake
   * per call.
   */
  function agentFor(protocol: string, target: ApprovedTarget): http.Agent {
    const key = `${protocol}//${target.host}:${target.port}/${target.addresses.join(",")}`;
    let agent = agents.get(key);
    if (!agent) {
      if (agents.size >= MAX_AGENTS) {
        const oldest = agents.keys().next().value as string;
        agents.get(oldest)?.destroy();
        agents.delete(oldest);
      }
      const options = { keepAlive: true, maxFreeSockets: 16, lookup: target.lookup };
      agent = protocol === "https:" ? new https.Agent(options) : new http.Agent(options);
      agents.set(key, agent);
    }
    return agent;
  }

  /**
   * Everything a call needs, in one transaction and (over a runtime's socket)
   * one query: the credential's row, its provider, the workspace's budget and
   * this month's use. Over the socket the transaction is scoped to the socket's
   * workspace, and the lookup policy shows a foreign credential's row, never
   * its provider: so it can be named foreign rather than unknown.
   */
  async function authorize(credential: string | undefined, providerId: string, caller: ProxyCaller): Promise<Grant> {
    if (!credential) return { kind: "refused", reason: "unknown", workspaceId: caller.workspaceId };
    const hash = hashCredential(credential);
    const { month, secondsLeft } = monthOf(new Date());
    const scope = {
      ...(caller.workspaceId ? { workspaceId: caller.workspaceId } : {}),
      lookup: { llm_credential: hash },
    };
    // Prepared (per connection, by name): planning this join costs more than running it, on every call.
    const read = (tx: Tx) =>
      tx
        .select({
          workspaceId: llmCredentials.workspaceId,
          providerId: llmCredentials.providerId,
          provider: { kind: providers.kind, baseUrl: providers.baseUrl, apiKeySealed: providers.apiKeySealed },
          budget: workspaces.monthlyTokenBudget,
          used: sql<string>`coalesce(${usageMonthly.promptTokens} + ${usageMonthly.completionTokens}, 0)`,
        })
        .from(llmCredentials)
        .leftJoin(
          providers,
          and(eq(providers.id, llmCredentials.providerId), eq(providers.workspaceId, llmCredentials.workspaceId)),
        )
        .leftJoin(workspaces, eq(workspaces.id, llmCredentials.workspaceId))
        .leftJoin(
          usageMonthly,
          and(
            eq(usageMonthly.workspaceId, llmCredentials.workspaceId),
            eq(usageMonthly.month, sql.placeholder("month")),
          ),
        )
        .where(eq(llmCredentials.credentialHash, sql.placeholder("hash")))
        .prepare("reef_llm_proxy_authorize")
        .execute({ hash, month });
    return withScope(deps.db, scope, async (tx): Promise<Grant> => {
      let [row] = await read(tx);
      if (!row) {
        return { kind: "refused", reason: revoked.has(hash) ? "revoked" : "unknown", workspaceId: caller.workspaceId };
      }
      if (caller.workspaceId && row.workspaceId !== caller.workspaceId) {
        return { kind: "refused", reason: "foreign", workspaceId: caller.workspaceId };
      }
      // Minted for another provider of the workspace: not this one's to use.
      if (row.providerId !== providerId) return { kind: "refused", reason: "foreign", workspaceId: row.workspaceId };
      if (!caller.workspaceId) {
        // Over HTTP the credential named the workspace: read its rows in its scope.
        await extendScope(tx, { workspaceId: row.workspaceId });
        [row] = await read(tx);
        if (!row) return { kind: "refused", reason: "revoked", workspaceId: undefined };
      }
      const provider = row.provider;
      if (!provider) return { kind: "refused", reason: "revoked", workspaceId: row.workspaceId };
      const max = deps.quotas.tokenLimitFor(row.budget);
      const used = Number(row.used);
      if (max !== null && used >= max) {
        return { kind: "budget", workspaceId: row.workspaceId, providerId, used, max, secondsLeft };
      }
      const apiKey = provider.apiKeySealed
        ? await deps.vault.open(tx, row.workspaceId, providerId, provider.apiKeySealed)
        : undefined;
      return {
        kind: "ok",
        workspaceId: row.workspaceId,
        providerId,
        vendor: provider.kind,
        baseUrl: provider.baseUrl,
        ...(apiKey ? { apiKey } : {}),
      };
    });
  }

  async function auditRefusal(
    workspaceId: string,
    hash: string | undefined,
    details: { reason: RefusalReason; providerId: string; endpoint: string },
  ) {
    // The same refusal again (a gateway retrying) within a minute is counted in llm_calls, not audited again.
    const key = `${workspaceId}/${hash ?? "none"}/${details.reason}/${details.providerId}/${details.endpoint}`;
    const last = audited.get(key);
    if (last !== undefined && Date.now() - last < 60_000) return;
    if (audited.size > 10_000) audited.clear();
    audited.set(key, Date.now());
    await withScope(deps.db, { workspaceId }, (tx) =>
      appendAudit(tx, ctx, {
        workspaceId,
        action: "llm_proxy.credential_refused",
        targetType: "provider",
        ...(isUuid(details.providerId) ? { targetId: details.providerId } : {}),
        outcome: "denied",
        details,
      }),
    );
  }

  /** Metering writes in flight: awaited at shutdown so no call goes unrecorded. */
  const pending = new Set<Promise<void>>();
  function record(call: LlmCallRecord) {
    const write = metering
      .record(call)
      .catch((err: unknown) => deps.log?.warn({ err, workspaceId: call.workspaceId }, "could not meter an LLM call"))
      .finally(() => pending.delete(write));
    pending.add(write);
  }

  /**
   * Serves one call: `providerId` and `rest` come from the path
   * `/llm/<providerId>/<rest>`; `rest` (with its query) is appended to the
   * provider's base URL.
   */
  async function handle(
    req: IncomingMessage,
    res: ServerResponse,
    target: { providerId: string; rest: string },
    caller: ProxyCaller,
  ): Promise<void> {
    const started = performance.now();
    const startedAt = new Date();
    const elapsed = () => Math.round(performance.now() - started);
    const method = req.method ?? "GET";
    const endpoint = endpointOf(target.rest).replaceAll("\u0000", "");
    const controller = new AbortController();
    res.on("close", () => {
      if (!res.writableFinished) controller.abort();
    });
    const credential = credentialOf(req);
    const grant = isUuid(target.providerId)
      ? await authorize(credential, target.providerId, caller)
      : ({ kind: "refused", reason: "unknown", workspaceId: caller.workspaceId } as const);
    let anthropic =
      /(^|\/)messages(\/count_tokens)?$/.test(target.rest.split("?")[0] ?? "") ||
      req.headers["anthropic-version"] !== undefined;
    const base = { startedAt, endpoint, model: "", promptTokens: 0, completionTokens: 0, firstByteMs: null };

    if (grant.kind === "refused") {
      // Audited before the answer: once the gateway hears "refused", the trail already says so.
      if (grant.workspaceId) {
        const hash = credential ? hashCredential(credential) : undefined;
        await auditRefusal(grant.workspaceId, hash, {
          reason: grant.reason,
          providerId: target.providerId,
          endpoint,
        }).catch((err: unknown) => deps.log?.warn({ err }, "could not audit a refused LLM credential"));
        record({
          ...base,
          workspaceId: grant.workspaceId,
          providerId: null,
          latencyMs: elapsed(),
          outcome: "refused",
          httpStatus: 401,
        });
      } else {
        deps.log?.info({ reason: grant.reason, endpoint }, "LLM proxy refused a credential of no known workspace");
      }
      sendError(res, anthropic, {
        status: 401,
        type: "invalid_request_error",
        code: "invalid_api_key",
        message:
          "Reef's LLM proxy does not accept this credential: it is not this runtime's, or was rotated. Restart the workspace's runtime.",
      });
      return;
    }
    if (grant.kind === "budget") {
      sendError(res, anthropic, {
        status: 429,
        type: "insufficient_quota",
        code: "insufficient_quota",
        message: `This workspace's monthly token budget is used up (${grant.used} of ${grant.max} tokens). It renews on the 1st of the month; an administrator can raise it.`,
        headers: { "retry-after": String(grant.secondsLeft) },
      });
      record({
        ...base,
        workspaceId: grant.workspaceId,
        providerId: grant.providerId,
        latencyMs: elapsed(),
        outcome: "budget",
        httpStatus: 429,
      });
      return;
    }

    anthropic = isAnthropicKind(grant.vendor);
    const meter = { ...base, workspaceId: grant.workspaceId, providerId: grant.providerId };
    const fail = (status: number, message: string, outcome: LlmCallRecord["outcome"] = "error") => {
      sendError(res, anthropic, {
        status,
        type: status === 404 ? "invalid_request_error" : "api_error",
        code: "reef_proxy",
        message,
      });
      record({ ...meter, latencyMs: elapsed(), outcome, httpStatus: status });
    };
    if (!allowedPath(method, target.rest)) {
      return fail(404, `Reef's LLM proxy does not forward ${method} ${target.rest.split("?")[0]}.`, "refused");
    }
    let raw: Buffer;
    try {
      // Only once the credential passed: Reef's HTTP route is reachable by anyone, who must not make it hold bodies.
      raw = await readBody(req, maxBodyBytes);
    } catch (err) {
      if (err instanceof BodyTooLargeError) return fail(413, "The request is larger than Reef's LLM proxy accepts.");
      return record({ ...meter, latencyMs: elapsed(), outcome: "aborted", httpStatus: null });
    }
    const { body: payload, model } = prepareBody(raw, endpoint, req.headers["content-type"]);
    meter.model = model;

    const url = new URL(`${grant.baseUrl.replace(/\/+$/, "")}/${target.rest}`);
    let approved: ApprovedTarget;
    try {
      approved = await approveTarget(url, { allowedHosts: await deps.allowedHosts(), signal: controller.signal });
    } catch (err) {
      if (controller.signal.aborted)
        return record({ ...meter, latencyMs: elapsed(), outcome: "aborted", httpStatus: null });
      if (err instanceof EgressRefusedError) {
        return fail(
          502,
          "Reef does not call this provider's base URL: its host is not a public address the operator allows.",
        );
      }
      return fail(502, "Reef could not reach the provider.");
    }
    if (controller.signal.aborted)
      return record({ ...meter, latencyMs: elapsed(), outcome: "aborted", httpStatus: null });

    const headers = forwardedHeaders(req.headers);
    if (grant.apiKey) {
      if (anthropic) headers["x-api-key"] = grant.apiKey;
      else headers.authorization = `Bearer ${grant.apiKey}`;
    }
    if (anthropic && headers["anthropic-version"] === undefined) headers["anthropic-version"] = "2023-06-01";
    headers.host = url.host;
    if (method !== "GET" && method !== "HEAD") headers["content-length"] = String(payload.length);

    const upstream = approvedRequest(url, approved, {
      method,
      headers,
      agent: agentFor(url.protocol, approved),
      signal: controller.signal,
    });
    let settled = false;
    const settle = (
      outcome: LlmCallRecord["outcome"],
      status: number | null,
      usage?: { promptTokens: number; completionTokens: number },
      firstByteMs?: number | null,
    ) => {
      if (settled) return;
      settled = true;
      record({
        ...meter,
        ...usage,
        firstByteMs: firstByteMs ?? null,
        latencyMs: elapsed(),
        outcome,
        httpStatus: status,
      });
    };
    const tell = (kind: ProviderFailure["kind"]) => {
      try {
        deps.onProviderFailure?.({ workspaceId: grant.workspaceId, providerId: grant.providerId, kind });
      } catch (err) {
        deps.log?.warn({ err }, "could not report a provider failure");
      }
    };
    upstream.on("error", (err: NodeJS.ErrnoException) => {
      if (controller.signal.aborted) return settle("aborted", null);
      // Nothing listens there, or the name does not resolve: retrying will not help for a while.
      if (["ECONNREFUSED", "ENOTFOUND", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN"].includes(err.code ?? "")) {
        tell("unreachable");
      }
      if (!res.headersSent) {
        settled = true;
        return fail(502, "Reef could not reach the provider, or it closed the connection.");
      }
      res.destroy();
      settle("error", null);
    });
    upstream.on("response", (answer) => {
      const status = answer.statusCode ?? 502;
      if (status === 401 || status === 403) tell("auth");
      const parser = createUsageParser(answer.headers["content-type"]);
      const key = grant.apiKey;
      let firstByteMs: number | null = null;
      // An error answer is small: held back and scrubbed, in case a vendor echoes the key it was sent.
      if (status >= 400 && key) {
        const chunks: Buffer[] = [];
        answer.on("data", (c: Buffer) => {
          firstByteMs ??= elapsed();
          if (chunks.length < 1024) chunks.push(c);
        });
        answer.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8").replaceAll(key, "[redacted]");
          const out = answerHeaders(answer.headers);
          delete out["content-length"];
          res.writeHead(status, { ...out, "content-length": Buffer.byteLength(text) });
          res.end(text);
          settle("error", status, undefined, firstByteMs);
        });
        answer.on("error", () =>
          settle(controller.signal.aborted ? "aborted" : "error", status, undefined, firstByteMs),
        );
        return;
      }
      res.writeHead(status, answerHeaders(answer.headers));
      res.flushHeaders();
      const tap = new Transform({
        transform(chunk: Buffer, _enc, done) {
          firstByteMs ??= elapsed();
          parser.push(chunk);
          done(null, chunk);
        },
      });
      pipeline(answer, tap, res, (err) => {
        const usage = parser.end();
        if (!err) return settle(status < 400 ? "ok" : "error", status, usage, firstByteMs);
        // The gateway went away (or the vendor cut the stream): whatever was used so far still counts.
        settle(controller.signal.aborted || res.destroyed ? "aborted" : "error", status, usage, firstByteMs);
        if (!controller.signal.aborted) controller.abort();
      });
    });
    upstream.end(method === "GET" || method === "HEAD" ? undefined : payload);
  }

  return {
    handle,
    /** Credentials a start rotated away: presented again, they are refused as `revoked`. */
    noteRevoked(hashes: readonly string[]) {
      for (const h of hashes) {
        if (revoked.size >= 100_000) revoked.delete(revoked.values().next().value as string);
        revoked.add(h);
      }
    },
    /** Resolves once every call finished so far is recorded. */
    async flush(): Promise<void> {
      while (pending.size) await Promise.all(pending);
    },
    /** Closes the kept-alive upstream connections, after recording what finished (Reef shutting down). */
    async close(): Promise<void> {
      for (const agent of agents.values()) agent.destroy();
      agents.clear();
      while (pending.size) await Promise.all(pending);
    },
  };
}

export type LlmProxy = ReturnType<typeof createLlmProxy>;
