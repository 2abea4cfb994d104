import { NotFoundError } from "@reef/contracts";
import type { RuntimeDriver } from "@reef/runtime";
import { requireOperator } from "../admin/admin-service.ts";
import type { RequestContext } from "../shared/context.ts";
import type { Page } from "../shared/pagination.ts";
import type { WorkspaceGate } from "../workspace/workspace-access.ts";
import type { RuntimeManager, RuntimeView } from "./runtime-manager.ts";

/** A runtime with live figures from the driver, for operators. */
export interface RuntimeStatusView extends RuntimeView {
  uptimeSeconds: number | null;
  rssBytes: number | null;
}

/** How this deployment contains its gateways, as operators should know it. */
export interface RuntimeIsolation {
  driver: string;
  /** Gateways run inside a sandbox (process driver) or a container profile (Docker, Kubernetes). */
  sandboxed: boolean;
  /** Whether agents may be granted shell and file tools here. */
  hostToolsAllowed: boolean;
  /** Why gateways are not sandboxed, when they are not. */
  reason?: string;
}

/** The runtime as users reach it: authorised per workspace, then handed to the manager. */
export function createRuntimeService(deps: {
  gate: WorkspaceGate;
  manager: RuntimeManager;
  driver: RuntimeDriver;
  isolation: RuntimeIsolation;
  log?: { warn(obj: object, msg: string): void };
}) {
  const { gate, manager } = deps;
  // The gate's transaction ends before a start that may take many seconds.
  const allow = (ctx: RequestContext, wid: string, action: "runtime:read" | "runtime:manage") =>
    gate.run(ctx, wid, action, async () => true);

  async function withStats(view: RuntimeView): Promise<RuntimeStatusView> {
    const running = view.state === "running";
    const handle = running ? await manager.handle(view.workspaceId) : undefined;
    const stats = handle && deps.driver.stats ? await deps.driver.stats(handle) : undefined;
    return {
      ...view,
      uptimeSeconds: running && view.startedAt ? Math.round((Date.now() - Date.parse(view.startedAt)) / 1000) : null,
      rssBytes: stats?.rssBytes ?? null,
    };
  }

  return {
    async get(ctx: RequestContext, workspaceId: string): Promise<RuntimeStatusView> {
      await allow(ctx, workspaceId, "runtime:read");
      return withStats(await manager.get(workspaceId));
    },
    /** Starts the workspace's gateway (if it is not running) and waits until it is ready. */
    async start(ctx: RequestContext, workspaceId: string): Promise<RuntimeStatusView> {
      await allow(ctx, workspaceId, "runtime:manage");
      await manager.ensureRunning(ctx, workspaceId);
      return withStats(await manager.get(workspaceId));
    },
    /**
     * Starts waking the workspace's gateway without waiting for it (a person
     * opened chat): any member who may chat. A failed start is recorded on the
     * runtime (and logged); the view returned shows the wake under way.
     */
    async wake(ctx: RequestContext, workspaceId: string): Promise<RuntimeStatusView> {
      await gate.run(ctx, workspaceId, "chat:use", async () => true);
      const before = await manager.get(workspaceId);
      if (before.state === "running") return withStats(before);
      manager.ensureRunning(ctx, workspaceId).catch((err: unknown) => {
        deps.log?.warn({ err, workspaceId }, "a wake requested ahead of chat failed");
      });
      // The start claims the row in its first transaction: shown as under way once it has.
      for (let i = 0; i < 20; i++) {
        const view = await manager.get(workspaceId);
        if (view.state !== "stopped" && view.state !== "failed") return withStats(view);
        await new Promise((r) => setTimeout(r, 50));
      }
      return withStats({ ...(await manager.get(workspaceId)), state: "starting" });
    },
    async stop(ctx: RequestContext, workspaceId: string): Promise<RuntimeStatusView> {
      await allow(ctx, workspaceId, "runtime:manage");
      await manager.stop(ctx, workspaceId, "requested");
      return withStats(await manager.get(workspaceId));
    },
    /** Operators stop any workspace's gateway (audited in that workspace's trail, as them). */
    async stopAsOperator(ctx: RequestContext, workspaceId: string): Promise<RuntimeStatusView> {
      requireOperator(ctx);
      // No membership check stands in front (operators reach every workspace), so an id of no
      // workspace reaches the runtimes table, whose foreign key refuses it: that is a 404.
      await manager.stop(ctx, workspaceId, "stopped by an operator").catch((err: unknown) => {
        const e = err as { code?: string; cause?: { code?: string } };
        if ((e.code ?? e.cause?.code) === "23503") throw new NotFoundError("No such workspace.");
        throw err;
      });
      return withStats(await manager.get(workspaceId));
    },
    /** Every runtime with state, uptime, memory and last activity (operators only). */
    /** How gateways are contained here (operators only). */
    isolation(ctx: RequestContext): RuntimeIsolation {
      requireOperator(ctx);
      return deps.isolation;
    },

    async listAll(
      ctx: RequestContext,
      q: { cursor?: string | undefined; limit?: number | undefined },
    ): Promise<Page<RuntimeStatusView>> {
      requireOperator(ctx);
      const page = await manager.list(q);
      return { items: await Promise.all(page.items.map(withStats)), nextCursor: page.nextCursor };
    },
  };
}

export type RuntimeService = ReturnType<typeof createRuntimeService>;
