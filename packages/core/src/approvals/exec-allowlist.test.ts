import { describe, expect, it } from "vitest";
import { exactEntry, matchAllowlist, plainCommand } from "./exec-allowlist.ts";

describe("plainCommand", () => {
  it("reads one program and its arguments, quotes removed", () => {
    expect(plainCommand("  ls -la  /tmp ")).toEqual(["ls", "-la", "/tmp"]);
    expect(plainCommand(`grep "two words" 'and more' file*.txt`)).toEqual([
      "grep",
      "two words",
      "and more",
      "file*.txt",
    ]);
  });

  it("refuses anything the shell would read as more than one command or expand", () => {
    for (const c of [
      "ls; rm -rf /",
      "ls && id",
      "ls || id",
      "ls | sh",
      "ls & id",
      "ls > /etc/passwd",
      "cat < secret",
      "echo `id`",
      "echo $(id)",
      "echo $HOME",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the shell syntax under test
      "echo ${PATH}",
      "(id)",
      "{ id; }",
      "ls\nid",
      "ls \\\nid",
      'echo "unbalanced',
      "LD_PRELOAD=/tmp/x.so ls",
      "PATH=/tmp ls",
      "",
      "   ",
    ]) {
      expect(plainCommand(c), c).toBeUndefined();
    }
  });
});

describe("matchAllowlist", () => {
  it("a bare name allows that program run by name, with any arguments", () => {
    expect(matchAllowlist("ls -la /tmp", ["ls"])).toBe("ls");
    expect(matchAllowlist("git status", ["ls", "git"])).toBe("git");
    expect(matchAllowlist("lsblk", ["ls"])).toBeUndefined();
    // A file called ls somewhere else is not the ls on PATH.
    expect(matchAllowlist("./ls", ["ls"])).toBeUndefined();
    expect(matchAllowlist("/tmp/ls", ["ls"])).toBeUndefined();
  });

  it("never lets a pattern reach a second command, a pipe or a substitution", () => {
    for (const c of ["ls; touch /tmp/x", "ls && touch x", "ls | sh", "ls $(touch x)", "ls `touch x`", "ls > x"]) {
      expect(matchAllowlist(c, ["ls", "ls *", "*"]), c).toBeUndefined();
    }
    expect(matchAllowlist("FOO=1 ls", ["ls"])).toBeUndefined();
  });

  it("path globs stay within a segment unless they say **", () => {
    expect(matchAllowlist("/usr/bin/git log", ["/usr/bin/git"])).toBe("/usr/bin/git");
    expect(matchAllowlist("git log", ["/usr/bin/git"])).toBeUndefined();
    expect(matchAllowlist("/opt/tools/bin/rg x", ["/opt/*/bin/rg"])).toBe("/opt/*/bin/rg");
    expect(matchAllowlist("/opt/a/b/bin/rg x", ["/opt/*/bin/rg"])).toBeUndefined();
    expect(matchAllowlist("/opt/a/b/bin/rg x", ["/opt/**/bin/rg"])).toBe("/opt/**/bin/rg");
    expect(matchAllowlist("rg x", ["*"])).toBe("*");
    expect(matchAllowlist("/bin/sh -c x", ["*"])).toBeUndefined();
  });

  it("a pattern of several words matches the whole command", () => {
    expect(matchAllowlist("git status", ["git status"])).toBe("git status");
    expect(matchAllowlist("git  status", ["git status *", "git status"])).toBeUndefined();
    expect(matchAllowlist("git status --short", ["git status"])).toBeUndefined();
    expect(matchAllowlist("npm run build", ["npm run *"])).toBe("npm run *");
    expect(matchAllowlist("npm   run   test", ["npm run *"])).toBe("npm run *");
    expect(matchAllowlist("npm run build; id", ["npm run *"])).toBeUndefined();
  });

  it("an exact entry matches that very command and nothing else, whatever it holds", () => {
    const cmd = "ls *.txt | wc -l";
    const entry = exactEntry(cmd) as string;
    expect(entry).toBe("ls \\*.txt | wc -l");
    expect(matchAllowlist(cmd, [entry])).toBe(entry);
    expect(matchAllowlist("ls a.txt | wc -l", [entry])).toBeUndefined();
    expect(matchAllowlist("ls *.txt | wc -l; id", [entry])).toBeUndefined();
  });

  it("will not turn a one-word command into an entry allowing any arguments", () => {
    expect(exactEntry("python3")).toBeUndefined();
    expect(exactEntry("echo\nid")).toBeUndefined();
    expect(exactEntry(`echo ${"x".repeat(600)}`)).toBeUndefined();
  });
});

describe("agentRelativeCwd", () => {
  const aid = "7b0c3f5e-1d7a-4a35-9a55-3f0b3c1c2d11";
  it("shows the agent's folder as ~ so approvers never learn Reef's data layout", async () => {
    const { agentRelativeCwd } = await import("./approval-service.ts");
    expect(agentRelativeCwd(`/var/lib/reef/runtimes/w1/agents/${aid}`, aid)).toBe("~");
    expect(agentRelativeCwd(`/var/lib/reef/runtimes/w1/agents/${aid}/src/app`, aid)).toBe("~/src/app");
    expect(agentRelativeCwd(`/var/lib/reef/runtimes/w1/agents/${aid}x/y`, aid)).toBe(
      `/var/lib/reef/runtimes/w1/agents/${aid}x/y`,
    );
    expect(agentRelativeCwd("/tmp", aid)).toBe("/tmp");
    expect(agentRelativeCwd(null, aid)).toBeNull();
  });
});
