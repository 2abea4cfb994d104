import { describe, expect, it } from "vitest";
import { hostMatches, normalizeHost, normalizeHostPattern, parseAuthority } from "../src/egress/egress-policy.ts";

describe("CONNECT targets", () => {
  it("reads host:port, [v6]:port and canonical addresses", () => {
    expect(parseAuthority("Example.COM.:443")).toEqual({ host: "example.com", port: 443 });
    expect(parseAuthority("10.0.0.1:80")).toEqual({ host: "10.0.0.1", port: 80 });
    expect(parseAuthority("[::1]:8443")).toEqual({ host: "0:0:0:0:0:0:0:1", port: 8443 });
    expect(parseAuthority("[::ffff:127.0.0.1]:22")).toEqual({ host: "0:0:0:0:0:ffff:7f00:1", port: 22 });
  });

  it.each([
    "example.com",
    "example.com:0",
    "example.com:65536",
    "example.com:443/path",
    "user@example.com:443",
    "::1:443",
    "[fe80::1%eth0]:443",
    "http://example.com:80",
    "exa mple.com:443",
    "-bad.example:443",
    "",
    ":443",
  ])("refuses %j as malformed", (authority) => {
    expect(parseAuthority(authority)).toBeUndefined();
  });
});

describe("allow and deny list entries", () => {
  it("normalizes hosts, *.suffix and IP addresses", () => {
    expect(normalizeHostPattern(" API.Example.com. ")).toBe("api.example.com");
    expect(normalizeHostPattern("*.Example.com")).toBe("*.example.com");
    expect(normalizeHostPattern("[::1]")).toBe("0:0:0:0:0:0:0:1");
    expect(normalizeHostPattern("192.168.1.10")).toBe("192.168.1.10");
  });

  it.each(["https://example.com", "example.com:443", "example.com/path", "*.", "*.1.2.3.4", "*example.com", "a..b"])(
    "refuses %j",
    (entry) => {
      expect(normalizeHostPattern(entry)).toBeUndefined();
    },
  );

  it("matches *.suffix on subdomains only, exact entries exactly", () => {
    expect(hostMatches("*.example.com", "api.example.com")).toBe(true);
    expect(hostMatches("*.example.com", "a.b.example.com")).toBe(true);
    expect(hostMatches("*.example.com", "example.com")).toBe(false);
    expect(hostMatches("*.example.com", "evilexample.com")).toBe(false);
    expect(hostMatches("example.com", "api.example.com")).toBe(false);
    expect(hostMatches("example.com", normalizeHost("EXAMPLE.com.") ?? "")).toBe(true);
  });
});
