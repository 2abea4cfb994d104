import { describe, expect, it } from "vitest";
import { canonicalAddress, classifyAddress } from "../src/shared/address-class.ts";
import { hostAllowed, parseHostEntry } from "../src/shared/guarded-http.ts";

describe("classifyAddress", () => {
  const cases: [string, ReturnType<typeof classifyAddress>][] = [
    // IPv4
    ["8.8.8.8", "public"],
    ["1.1.1.1", "public"],
    ["172.15.255.255", "public"],
    ["172.32.0.1", "public"],
    ["100.63.255.255", "public"],
    ["127.0.0.1", "loopback"],
    ["127.255.255.254", "loopback"],
    ["10.0.0.1", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["192.168.1.1", "private"],
    ["100.64.0.1", "private"],
    ["169.254.169.254", "link-local"],
    ["0.0.0.0", "unspecified"],
    ["0.1.2.3", "unspecified"],
    ["224.0.0.1", "multicast"],
    ["255.255.255.255", "reserved"],
    ["240.0.0.1", "reserved"],
    ["192.0.2.1", "reserved"],
    ["198.18.0.1", "reserved"],
    // IPv6
    ["2606:4700:4700::1111", "public"],
    ["2a00:1450:4001:81b::200e", "public"],
    ["::1", "loopback"],
    ["[::1]", "loopback"],
    ["0:0:0:0:0:0:0:1", "loopback"],
    ["::", "unspecified"],
    ["fe80::1", "link-local"],
    ["fe80::1%eth0", "link-local"],
    ["febf::1", "link-local"],
    ["fec0::1", "private"],
    ["fc00::1", "unique-local"],
    ["fd12:3456::1", "unique-local"],
    ["ff02::1", "multicast"],
    ["2001:db8::1", "reserved"],
    ["2001:0:4136:e378::1", "reserved"],
    ["100::1", "reserved"],
    ["::7f00:1", "reserved"],
    // IPv6 forms that reach an IPv4 address are classed as that address.
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:7f00:1", "loopback"],
    ["::FFFF:10.1.2.3", "private"],
    ["::ffff:169.254.169.254", "link-local"],
    ["::ffff:8.8.8.8", "public"],
    ["::ffff:0:127.0.0.1", "loopback"],
    ["64:ff9b::10.0.0.1", "private"],
    ["64:ff9b::8.8.8.8", "public"],
    ["2002:7f00:1::", "loopback"],
    ["2002:c0a8:101::1", "private"],
    ["2002:808:808::1", "public"],
    // Not an address: fails closed.
    ["localhost", "reserved"],
    ["", "reserved"],
    ["999.1.1.1", "reserved"],
  ];
  it.each(cases)("%s is %s", (address, expected) => {
    expect(classifyAddress(address)).toBe(expected);
  });
});

describe("operator allow-list", () => {
  it("parses host, host:port and the IPv6 spellings", () => {
    expect(parseHostEntry("127.0.0.1:11434")).toEqual({ host: "127.0.0.1", port: 11434 });
    expect(parseHostEntry("Ollama.LAN")).toEqual({ host: "ollama.lan", port: undefined });
    expect(parseHostEntry("[::1]:11434")).toEqual({ host: "0:0:0:0:0:0:0:1", port: 11434 });
    expect(parseHostEntry("::1")).toEqual({ host: "0:0:0:0:0:0:0:1", port: undefined });
    expect(parseHostEntry("")).toBeUndefined();
    expect(canonicalAddress("::ffff:127.0.0.1")).toBe("0:0:0:0:0:ffff:7f00:1");
  });

  it("matches by name or address, and by port when one is given", () => {
    const allowed = ["127.0.0.1:11434", "ollama.lan", "[::1]:8080"];
    expect(hostAllowed(allowed, "127.0.0.1", 11434)).toBe(true);
    expect(hostAllowed(allowed, "127.0.0.1", 5432)).toBe(false);
    expect(hostAllowed(allowed, "OLLAMA.lan.", 1)).toBe(true);
    expect(hostAllowed(allowed, "0:0::1", 8080)).toBe(true);
    expect(hostAllowed(allowed, "::1", 11434)).toBe(false);
    expect(hostAllowed([], "127.0.0.1", 11434)).toBe(false);
  });
});
