import { randomBytes, randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { afterAll, describe, expect, it } from "vitest";
import type { RuntimeDriver, RuntimeHandle, RuntimeSpec } from "../src/driver.ts";
import { gatewayFetch } from "../src/gateway-endpoint.ts";
import type { GatewaySettings } from "../src/openclaw-config.ts";

export interface ConformanceOptions {
  makeDriver: () => RuntimeDriver | Promise<RuntimeDriver>;
  /** The gateway settings to start with (a provider the driver's gateway can reach). */
  settings: () => GatewaySettings;
  /** Whether the runtime behind the driver is a real gateway that serves HTTP. */
  servesHttp: boolean;
  /** What of the workspace's runtime is left behind (directories, containers, volumes, objects): names, empty when none. */
  leftovers: (workspaceId: string) => Promise<string[]>;
  timeoutMs?: number;
}

/**
 * The behaviour every RuntimeDriver owes the runtime manager, run against each
 * implementation (process for real, docker and kubernetes against their API fakes).
 */
export function describeDriverConformance(name: string, opts: ConformanceOptions): void {
  describe(`RuntimeDriver conformance: ${name}`, () => {
    const started: RuntimeHandle[] = [];
    let driver: RuntimeDriver;
    const timeout = opts.timeoutMs ?? 120_000;
    const spec = (): RuntimeSpec => ({
      workspaceId: randomUUID(),
      token: randomBytes(24).toString("base64url"),
      gateway: opts.settings(),
      limits: { memoryMb: 2048, cpus: 2, pids: 512 },
    });

    afterAll(async () => {
      for (const h of started) await driver.destroy(h).catch(() => {});
    }, timeout);

    it(
      "starts a runtime that answers on its endpoint, then stops it",
      async () => {
        driver = await opts.makeDriver();
        const s = spec();
        const { endpoint, state } = await driver.start(s, AbortSignal.timeout(timeout));
        const handle = { workspaceId: s.workspaceId, state };
        started.push(handle);
        if (endpoint.protocol === "unix:") {
          // A sandboxed gateway: a socket in the runtime's own directory.
          expect(endpoint.pathname).toContain(s.workspaceId);
        } else {
          expect(endpoint.hostname).toMatch(/^(127\.0\.0\.1|localhost|[\w.-]+\.svc(\.cluster\.local)?|reef-[\w-]+)$/);
        }
        expect(await driver.poll(handle)).toEqual({ status: "running" });
        if (opts.servesHttp) {
          const unauthorised = await gatewayFetch(endpoint, "/v1/models");
          expect(unauthorised.status).toBe(401);
          const authorised = await gatewayFetch(endpoint, "/v1/models", {
            headers: { authorization: `Bearer ${s.token}` },
          });
          expect(authorised.status).toBe(200);
        }
        await driver.stop(handle, { graceful: true });
        expect((await driver.poll(handle)).status).toBe("exited");
        // Stopping twice is harmless.
        await driver.stop(handle, { graceful: true });
      },
      timeout,
    );

    it(
      "a handle rebuilt from persisted state still polls and stops (another replica, after a restart)",
      async () => {
        driver = await opts.makeDriver();
        const s = spec();
        const { state } = await driver.start(s, AbortSignal.timeout(timeout));
        started.push({ workspaceId: s.workspaceId, state });
        const other = await opts.makeDriver();
        const rebuilt = { workspaceId: s.workspaceId, state: JSON.parse(JSON.stringify(state)) };
        expect(await other.poll(rebuilt)).toEqual({ status: "running" });
        await other.stop(rebuilt, { graceful: false });
        expect((await driver.poll(rebuilt)).status).toBe("exited");
      },
      timeout,
    );

    it(
      "pauses and resumes a runtime where the driver can (a paused one does not answer, and stops like any other)",
      async () => {
        driver = await opts.makeDriver();
        if (!driver.pause || !driver.resume) return;
        const s = spec();
        const { endpoint, state } = await driver.start(s, AbortSignal.timeout(timeout));
        const handle = { workspaceId: s.workspaceId, state };
        started.push(handle);
        const ask = () =>
          gatewayFetch(endpoint, "/readyz", { signal: AbortSignal.timeout(1_500) }).then(
            (r) => r.status,
            () => "no answer",
          );
        await driver.pause(handle);
        await driver.pause(handle); // twice is harmless
        expect(await driver.poll(handle)).toEqual({ status: "paused" });
        // Another replica sees it paused too, from the persisted state alone.
        const other = await opts.makeDriver();
        expect(await other.poll({ workspaceId: s.workspaceId, state: JSON.parse(JSON.stringify(state)) })).toEqual({
          status: "paused",
        });
        if (opts.servesHttp) expect(await ask()).toBe("no answer");
        if (driver.reclaim) {
          // Into swap where the host has it (the figures are in the wake benchmark), else nothing; it resumes either way.
          const moved = await driver.reclaim(handle);
          if (moved) expect(moved.after).toBeLessThan(moved.before);
          // As root the driver has the control group it needs: only a host without swap declines.
          else if (process.getuid?.() === 0) {
            expect(await readFile("/proc/swaps", "utf8").then((t) => t.trim().split("\n").length)).toBe(1);
          }
        }
        const resumed = Date.now();
        await driver.resume(handle);
        await driver.resume(handle);
        // Thawed processes first catch up on their timers; the gateway answers again within a second or so.
        await expect.poll(() => driver.poll(handle), { timeout: 10_000, interval: 50 }).toEqual({ status: "running" });
        console.log(`${name}: resumed gateway answers /readyz ${Date.now() - resumed} ms after resume`);
        if (opts.servesHttp) expect(await ask()).toBe(200);
        // Stopping a paused runtime does not wait out a frozen process.
        await driver.pause(handle);
        await driver.stop(handle, { graceful: true });
        expect((await driver.poll(handle)).status).toBe("exited");
        await expect(driver.resume(handle)).rejects.toThrow();
        await expect(driver.pause(handle)).rejects.toThrow();
      },
      timeout,
    );

    it(
      "an aborted start leaves nothing running",
      async () => {
        driver = await opts.makeDriver();
        const controller = new AbortController();
        controller.abort(new Error("caller gave up"));
        await expect(driver.start(spec(), controller.signal)).rejects.toThrow();
      },
      timeout,
    );

    it(
      "destroy removes the runtime for good",
      async () => {
        driver = await opts.makeDriver();
        const s = spec();
        const { state } = await driver.start(s, AbortSignal.timeout(timeout));
        const handle = { workspaceId: s.workspaceId, state };
        expect(await opts.leftovers(s.workspaceId)).not.toEqual([]);
        await driver.destroy(handle);
        expect((await driver.poll(handle)).status).toBe("exited");
        expect(await opts.leftovers(s.workspaceId)).toEqual([]);
      },
      timeout,
    );

    it(
      "destroy after a stop finds everything from the workspace id alone (the workspace was deleted)",
      async () => {
        driver = await opts.makeDriver();
        const s = spec();
        const { state } = await driver.start(s, AbortSignal.timeout(timeout));
        await driver.stop({ workspaceId: s.workspaceId, state }, { graceful: true });
        // A stopped runtime's row no longer holds its state.
        await driver.destroy({ workspaceId: s.workspaceId, state: {} });
        expect(await opts.leftovers(s.workspaceId)).toEqual([]);
      },
      timeout,
    );
  });
}
