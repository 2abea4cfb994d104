import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { checkMcpServersDir, sandboxCommandProblem } from "./mcp-servers-dir.ts";

const root = mkdtempSync(join(tmpdir(), "reef-mcp-dir-test-"));
chmodSync(root, 0o755);
const me = process.getuid?.() ?? 0;
const rules = { reefDirs: [join(root, "data"), join(root, "data", "runtimes")], owners: [0, me] };
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A servers directory with one server: dirs 0755, files 0644 / 0755. */
function serversDir(name: string): string {
  const dir = join(root, name);
  mkdirSync(join(dir, "srv"), { recursive: true, mode: 0o755 });
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, "srv", "index.js"), "", { mode: 0o644 });
  writeFileSync(join(dir, "srv", "run"), "#!/bin/sh\n", { mode: 0o755 });
  return dir;
}

describe("checkMcpServersDir", () => {
  it("accepts a directory only root or Reef's user can change, and returns its real path", () => {
    const dir = serversDir("ok");
    expect(checkMcpServersDir(dir, rules)).toBe(dir);
    symlinkSync(dir, join(root, "link"));
    expect(checkMcpServersDir(join(root, "link"), rules)).toBe(dir);
  });

  it("refuses a relative, missing, root or system directory", () => {
    expect(() => checkMcpServersDir("opt/mcp", rules)).toThrow(/absolute/);
    expect(() => checkMcpServersDir(join(root, "missing"), rules)).toThrow(/ENOENT/);
    expect(() => checkMcpServersDir("/", rules)).toThrow(/root/);
    expect(() => checkMcpServersDir("/tmp", rules)).toThrow(/holds \/tmp/);
    expect(() => checkMcpServersDir("/proc/self", rules)).toThrow(/inside \/proc/);
  });

  it("refuses Reef's data or runtime directory, inside or around", () => {
    mkdirSync(join(root, "data", "runtimes", "mcp"), { recursive: true, mode: 0o755 });
    expect(() => checkMcpServersDir(join(root, "data", "runtimes", "mcp"), rules)).toThrow(/Reef's own directory/);
    expect(() => checkMcpServersDir(join(root, "data"), rules)).toThrow(/Reef's own directory/);
    expect(() => checkMcpServersDir(root, rules)).toThrow(/Reef's own directory/);
  });

  it("refuses anything in it writable by group or others, at any depth", () => {
    const dir = serversDir("loose-dir");
    chmodSync(dir, 0o775);
    expect(() => checkMcpServersDir(dir, rules)).toThrow(/writable by group or others \(mode 775\)/);
    const deep = serversDir("loose-file");
    chmodSync(join(deep, "srv", "index.js"), 0o646);
    expect(() => checkMcpServersDir(deep, rules)).toThrow(/index\.js is writable by group or others/);
  });

  it.runIf(me === 0)("refuses an entry another user owns", () => {
    const dir = serversDir("foreign");
    // A chown needs root: only then can another user own something here.
    const { chownSync } = require("node:fs") as typeof import("node:fs");
    chownSync(join(dir, "srv", "index.js"), 12_345, 12_345);
    expect(() => checkMcpServersDir(dir, rules)).toThrow(/owned by uid 12345/);
  });
});

describe("sandboxCommandProblem", () => {
  const dir = serversDir("commands");
  it("accepts executables under /usr (directly, through /bin, or on the PATH) and in the servers directory", () => {
    expect(sandboxCommandProblem("/bin/sh", undefined)).toBeUndefined();
    expect(sandboxCommandProblem("sh", undefined)).toBeUndefined();
    expect(sandboxCommandProblem(join(dir, "srv", "run"), dir)).toBeUndefined();
  });

  it("refuses what a sandbox cannot run: outside its mounts, not executable, missing, relative", () => {
    expect(sandboxCommandProblem(join(dir, "srv", "run"), undefined)).toMatch(/set REEF_MCP_SERVERS_DIR/);
    expect(sandboxCommandProblem(join(dir, "srv", "index.js"), dir)).toMatch(/not an executable file/);
    expect(sandboxCommandProblem("/usr/bin/no-such-program-here", dir)).toMatch(/not an executable file/);
    expect(sandboxCommandProblem("no-such-program-here", dir)).toMatch(/not on a gateway's PATH/);
    expect(sandboxCommandProblem("./run", dir)).toMatch(/absolute path or a bare program name/);
    expect(sandboxCommandProblem("/usr/bin/../bin/sh", dir)).toMatch(/not a plain absolute path/);
  });
});
