/** IPv4 addresses are uint32 numbers in host order on the hot path; text only at the edges. */

/** ipv4ToString formats a uint32 address as dotted quad. */
export function ipv4ToString(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 0xff}.${(a >>> 8) & 0xff}.${a & 0xff}`;
}

const QUAD = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** tryParseIpv4 returns the uint32 of a dotted quad, or -1 when the text is not one. */
export function tryParseIpv4(text: string): number {
  const m = QUAD.exec(text);
  if (m === null) return -1;
  let v = 0;
  for (let i = 1; i <= 4; i++) {
    const part = m[i]!;
    if (part.length > 1 && part[0] === '0') return -1; // no octal-looking parts
    const n = Number(part);
    if (n > 255) return -1;
    v = v * 256 + n;
  }
  return v;
}

/** parseIpv4 returns the uint32 of a dotted quad; throws when the text is not one. */
export function parseIpv4(text: string): number {
  const v = tryParseIpv4(text);
  if (v < 0) throw new Error(`not an IPv4 address: ${JSON.stringify(text)}`);
  return v;
}

/** parseCidr returns {network, prefix, mask}; throws when the text is not a.b.c.d/n. */
export function parseCidr(text: string): { network: number; prefix: number; mask: number } {
  const slash = text.indexOf('/');
  const prefix = slash < 0 ? 32 : Number(text.slice(slash + 1));
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > 32)
    throw new Error(`bad prefix length in ${JSON.stringify(text)}`);
  const addr = parseIpv4(slash < 0 ? text : text.slice(0, slash));
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return { network: (addr & mask) >>> 0, prefix, mask };
}

/** MacAddress is 6 bytes; formatted as lower-case colon hex. */
export function macToString(b: Uint8Array, off = 0): string {
  const parts: string[] = [];
  for (let i = 0; i < 6; i++) parts.push(b[off + i]!.toString(16).padStart(2, '0'));
  return parts.join(':');
}

/** parseMac returns the 6 bytes of aa:bb:cc:dd:ee:ff; throws on anything else. */
export function parseMac(text: string): Uint8Array {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(text))
    throw new Error(`not a MAC address: ${JSON.stringify(text)}`);
  return Uint8Array.from(text.split(':').map((h) => Number.parseInt(h, 16)));
}

/**
 * ipv4LinkLocal is the IPv6 link-local address (RFC 4291 §2.5.6) onehost derives from an interconnect
 * IPv4 address: fe80:: with the IPv4 address as the last 32 bits (198.18.0.1 → fe80::c612:1). The gateway
 * host puts it on its interconnect interface and nodes send IPv6 to it: the interconnect carries no other
 * IPv6 addresses, and an IPv6 route cannot have an IPv4 next hop on Linux.
 */
export function ipv4LinkLocal(a: number): string {
  const hi = (a >>> 16) & 0xffff;
  const lo = a & 0xffff;
  return `fe80::${hi.toString(16)}:${lo.toString(16)}`;
}
