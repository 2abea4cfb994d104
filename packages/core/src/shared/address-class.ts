import { isIP } from "node:net";

/**
 * What an IP address is, for deciding whether Reef may call it on a member's
 * behalf. Only `public` is reachable without the operator's say-so.
 */
export type AddressClass =
  | "public"
  | "loopback"
  | "private"
  | "link-local"
  | "unique-local"
  | "unspecified"
  | "multicast"
  | "reserved";

function v4Bytes(address: string): number[] {
  return address.split(".").map(Number);
}

function classifyV4(b: number[]): AddressClass {
  const [a = 0, c = 0, d = 0] = b;
  if (a === 0) return "unspecified";
  if (a === 127) return "loopback";
  if (a === 10) return "private";
  if (a === 172 && c >= 16 && c <= 31) return "private";
  if (a === 192 && c === 168) return "private";
  // Carrier-grade NAT: the provider's own network, as private as 10/8 from here.
  if (a === 100 && c >= 64 && c <= 127) return "private";
  if (a === 169 && c === 254) return "link-local";
  if (a >= 224 && a <= 239) return "multicast";
  if (a >= 240) return "reserved";
  // IETF protocol assignments, documentation and benchmarking ranges, the 6to4 relay.
  if (a === 192 && c === 0 && (d === 0 || d === 2)) return "reserved";
  if (a === 192 && c === 88 && d === 99) return "reserved";
  if (a === 198 && (c === 18 || c === 19)) return "reserved";
  if (a === 198 && c === 51 && d === 100) return "reserved";
  if (a === 203 && c === 0 && d === 113) return "reserved";
  return "public";
}

/** The 16 bytes of an IPv6 address (zone id dropped, a trailing dotted quad allowed). */
function v6Bytes(address: string): number[] {
  let text = address.replace(/%.*$/, "");
  const tail: number[] = [];
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted?.[1]) {
    tail.push(...v4Bytes(dotted[1]));
    text = `${text.slice(0, -dotted[1].length)}0:0`;
  }
  const [head = "", rest] = text.split("::");
  const words = (s: string) => (s ? s.split(":").map((w) => Number.parseInt(w, 16)) : []);
  const left = words(head);
  const right = rest === undefined ? [] : words(rest);
  const groups = [...left, ...new Array(8 - left.length - right.length).fill(0), ...right];
  const bytes = groups.flatMap((g) => [(g >> 8) & 0xff, g & 0xff]);
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes;
}

function classifyV6(b: number[]): AddressClass {
  const zeros = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  const v4 = (at: number) => classifyV4(b.slice(at, at + 4));
  if (zeros(0, 16)) return "unspecified";
  if (zeros(0, 15) && b[15] === 1) return "loopback";
  // IPv4-mapped (::ffff:a.b.c.d) and IPv4-translated (::ffff:0:a.b.c.d) reach the IPv4 address.
  if (zeros(0, 10) && b[10] === 0xff && b[11] === 0xff) return v4(12);
  if (zeros(0, 8) && b[8] === 0xff && b[9] === 0xff && zeros(10, 12)) return v4(12);
  // NAT64 (64:ff9b::/96) reaches the embedded IPv4 address through the translator.
  if (b[0] === 0 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zeros(4, 12)) return v4(12);
  // 6to4 (2002::/16) embeds an IPv4 address: public only if that one is.
  if (b[0] === 0x20 && b[1] === 0x02) {
    const inner = v4(2);
    return inner === "public" ? "public" : inner;
  }
  const first = b[0] ?? 0;
  const second = b[1] ?? 0;
  if (first === 0xff) return "multicast";
  if (first === 0xfe && (second & 0xc0) === 0x80) return "link-local";
  // Site-local (fec0::/10) is deprecated but still routed inside some networks.
  if (first === 0xfe && (second & 0xc0) === 0xc0) return "private";
  if ((first & 0xfe) === 0xfc) return "unique-local";
  // Teredo and documentation prefixes; IPv4-compatible (::a.b.c.d) and anything
  // outside global unicast (2000::/3) are not addresses a provider lives at.
  if (first === 0x20 && second === 0x01 && b[2] === 0 && b[3] === 0) return "reserved";
  if (first === 0x20 && second === 0x01 && b[2] === 0x0d && b[3] === 0xb8) return "reserved";
  if ((first & 0xe0) !== 0x20) return "reserved";
  return "public";
}

/**
 * Classifies an IPv4 or IPv6 address, looking through IPv6 forms that embed an
 * IPv4 address (mapped, translated, NAT64, 6to4). Anything that is not an IP
 * address is `reserved`, so a caller that forgets to resolve fails closed.
 */
export function classifyAddress(address: string): AddressClass {
  const bare = address.replace(/^\[|\]$/g, "");
  const family = isIP(bare.replace(/%.*$/, ""));
  if (family === 4) return classifyV4(v4Bytes(bare));
  if (family === 6) return classifyV6(v6Bytes(bare));
  return "reserved";
}

/** One spelling per address, so allow-list entries and resolved addresses compare equal. */
export function canonicalAddress(address: string): string {
  const bare = address.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
  const family = isIP(bare);
  if (family === 4) return bare;
  if (family !== 6) return bare.toLowerCase();
  const b = v6Bytes(bare);
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((b[i] ?? 0) << 8) | (b[i + 1] ?? 0)).toString(16));
  return groups.join(":");
}
