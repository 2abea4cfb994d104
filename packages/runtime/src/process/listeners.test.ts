import { describe, expect, it } from "vitest";
import { limitWrites, parseProcCgroup } from "./cgroups.ts";
import { gatewayLaunch } from "./gateway-launch.ts";
import { loopbackListeners, parentOf, parseListeners } from "./listeners.ts";

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:9731 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 208636 1 00000000ff8b1a33 100 0 0 10 0
   1: 00000000:4E20 00000000:0000 0A 00000000:00000000 00:00000000 00000000 65534        0 300 1 0 100 0 0 10 0
   2: 0100007F:4E20 0100007F:9731 01 00000000:00000000 00:00000000 00000000  1000        0 301 1 0 100 0 0 10 0
   3: 0200007F:4E20 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 302 1 0 100 0 0 10 0
`;
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:4E20 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 400 1 0 100 0 0 10 0
   1: 00000000000000000000000001000000:4E20 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 401 1 0 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:4E21 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 402 1 0 100 0 0 10 0
`;

describe("listening sockets from /proc/net/tcp", () => {
  it("reads addresses, ports, owners and inodes of listening sockets only", () => {
    expect(parseListeners(TCP, 4)).toEqual([
      { address: "127.0.0.1", port: 0x9731, uid: 0, inode: 208636 },
      { address: "0.0.0.0", port: 20000, uid: 65534, inode: 300 },
      { address: "127.0.0.2", port: 20000, uid: 1000, inode: 302 },
    ]);
    expect(parseListeners(TCP6, 6).map((l) => l.address)).toEqual(["::", "::1", "::ffff:127.0.0.1"]);
  });

  it("counts every listener that would take a connection to 127.0.0.1:port, and no other", () => {
    const all = [...parseListeners(TCP, 4), ...parseListeners(TCP6, 6)];
    // 0.0.0.0 and a dual-stack :: both receive 127.0.0.1 traffic; 127.0.0.2 and ::1 do not.
    expect(loopbackListeners(all, 20000).map((l) => l.inode)).toEqual([300, 400]);
    expect(loopbackListeners(all, 20001).map((l) => l.inode)).toEqual([402]);
  });

  it("finds the parent in /proc/<pid>/stat even when the command name holds spaces and parentheses", () => {
    expect(parentOf("4242 (node (x) y) S 17 4242 4242 0 -1 4194560")).toBe(17);
  });
});

describe("control groups", () => {
  it("reads this process's groups per controller", () => {
    const own = parseProcCgroup("9:name=systemd:/\n8:pids:/\n4:memory:/process_api/abc\n2:cpu,cpuacct:/x\n0::/\n");
    expect(own.get("memory")).toBe("/process_api/abc");
    expect(own.get("cpu")).toBe("/x");
    expect(own.get("cpuacct")).toBe("/x");
  });

  it("turns limits into control-file writes, for v1 and v2", () => {
    const limits = { memoryMb: 1024, cpus: 1.5, pids: 256 };
    expect(limitWrites(1, limits)).toEqual([
      { controller: "pids", file: "pids.max", value: "256" },
      { controller: "cpu", file: "cpu.cfs_period_us", value: "100000" },
      { controller: "cpu", file: "cpu.cfs_quota_us", value: "150000" },
      { controller: "memory", file: "memory.limit_in_bytes", value: String(1024 * 1048576) },
    ]);
    expect(limitWrites(2, limits)).toContainEqual({ controller: "", file: "cpu.max", value: "150000 100000" });
    expect(limitWrites(2, limits)).toContainEqual({ controller: "", file: "memory.swap.max", value: "0" });
  });
});

describe("gateway launch command", () => {
  const argv = ["/opt/node", "/opt/openclaw.mjs", "gateway", "run"];

  it("joins the groups as root, then drops to the gateway's user with no privileges left", () => {
    const { file, args } = gatewayLaunch(argv, {
      user: { uid: 1500000001, gid: 1500000001 },
      limits: { pids: 256 },
      cgroupProcs: ["/cg/a", "/cg/b"],
    });
    expect(file).toBe("/bin/sh");
    expect(args.slice(3, 6)).toEqual(["2", "/cg/a", "/cg/b"]);
    const rest = args.slice(6).join(" ");
    expect(rest).toMatch(/prlimit --core=0 --nofile=8192 -- .*setpriv --reuid=1500000001 --regid=1500000001/);
    expect(rest).toContain("--clear-groups --no-new-privs --inh-caps=-all --bounding-set=-all");
    // The pids cgroup bounds the tree; an rlimit per uid is only the fallback.
    expect(rest).not.toContain("--nproc");
    expect(args.slice(-4)).toEqual(argv);
  });

  it("caps tasks per uid with an rlimit where no control group can", () => {
    const { args } = gatewayLaunch(argv, { user: { uid: 7, gid: 7 }, limits: { pids: 256 }, cgroupProcs: [] });
    expect(args[3]).toBe("0");
    expect(args).toContain("--nproc=256");
  });
});
