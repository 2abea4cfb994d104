import { AppError } from "@reef/contracts";
import { describe, expect, it } from "vitest";
import { assertGrantable, blockedTools, usableTools } from "../src/agents/tool-grants.ts";

describe("tool grants under the operator's policy", () => {
  it("blocks grants outside the list, and host tools without a sandbox, saying why", () => {
    expect(blockedTools(["files", "shell", "web"], { grantable: ["web", "files"], hostToolsAllowed: false })).toEqual([
      { tool: "files", reason: expect.stringMatching(/cannot run files tools in a sandbox/) },
      { tool: "shell", reason: "The operator no longer allows agents to use the shell." },
    ]);
    expect(usableTools(["files", "shell", "web"], { grantable: ["web", "files"], hostToolsAllowed: false })).toEqual([
      "web",
    ]);
    expect(usableTools(["files", "shell", "web"], { grantable: ["web", "files"], hostToolsAllowed: true })).toEqual([
      "files",
      "web",
    ]);
    expect(blockedTools(["shell"], { grantable: ["shell"], hostToolsAllowed: true })).toEqual([]);
  });

  it("refuses a new grant outside the list with a stable code naming the tool", () => {
    expect(() => assertGrantable(["web"], ["web"])).not.toThrow();
    let error: unknown;
    try {
      assertGrantable(["web", "shell"], ["web"]);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({ code: "TOOL_NOT_GRANTABLE", status: 403, details: { tools: ["shell"] } });
    expect((error as Error).message).toMatch(/the shell \("shell"\): the operator must allow it first/);
    expect(() => assertGrantable(["web"], [])).toThrow(/may grant now: none/);
  });
});
