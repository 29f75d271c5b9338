import { parseIpv6, tryParseIpv4 } from '@onehost/wire';
import { invalidArgument } from './control-error.js';
import type { HealthRecord } from './store/records.js';

// Field checks for requests. Each returns the checked value or throws ControlError INVALID_ARGUMENT
// naming the field, so handlers read top to bottom.

const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** nodeName checks a node name: a DNS label (lowercase letters, digits, '-', 1-63). Throws if not. */
export function nodeName(field: string, value: string): string {
  if (value === '') throw invalidArgument(field, 'required');
  if (!NAME.test(value))
    throw invalidArgument(field, `not a node name (DNS label, lowercase): ${quote(value)}`);
  return value;
}

/** ipv4 checks a dotted-quad IPv4 address. Throws ControlError INVALID_ARGUMENT if it is not one. */
export function ipv4(field: string, value: string): string {
  if (value === '') throw invalidArgument(field, 'required');
  if (tryParseIpv4(value) < 0) throw invalidArgument(field, `not an IPv4 address: ${quote(value)}`);
  return value;
}

/** ipAddress checks an IPv4 or IPv6 address (RFC 4291 §2.2 text). Throws ControlError INVALID_ARGUMENT if neither. */
export function ipAddress(field: string, value: string): string {
  if (value === '') throw invalidArgument(field, 'required');
  if (value.includes(':')) {
    try {
      parseIpv6(value);
    } catch {
      throw invalidArgument(field, `not an IPv4 or IPv6 address: ${quote(value)}`);
    }
  } else if (tryParseIpv4(value) < 0)
    throw invalidArgument(field, `not an IPv4 or IPv6 address: ${quote(value)}`);
  return value;
}

/**
 * unicastMac checks a MAC address "02:00:5e:10:00:01" (any case; returned lowercase) that is neither
 * multicast nor all zeros. Throws ControlError INVALID_ARGUMENT otherwise.
 */
export function unicastMac(field: string, value: string): string {
  if (value === '') throw invalidArgument(field, 'required');
  const mac = value.toLowerCase();
  if (!MAC.test(mac)) throw invalidArgument(field, `not a MAC address (aa:bb:cc:dd:ee:ff): ${quote(value)}`);
  if ((Number.parseInt(mac.slice(0, 2), 16) & 1) === 1) throw invalidArgument(field, `multicast: ${mac}`);
  if (mac === '00:00:00:00:00:00') throw invalidArgument(field, 'all zeros');
  return mac;
}

/** port checks a TCP/UDP port 1-65535. Throws ControlError INVALID_ARGUMENT otherwise. */
export function port(field: string, value: number): number {
  if (!Number.isInteger(value) || value < 1 || value > 65535)
    throw invalidArgument(field, `not a port (1-65535): ${value}`);
  return value;
}

/** capabilities checks capability tags: at most 32, each 1-64 printable characters without spaces. */
export function capabilities(field: string, values: readonly string[]): string[] {
  if (values.length > 32) throw invalidArgument(field, `too many (${values.length}, at most 32)`);
  values.forEach((v, i) => {
    if (!/^[\x21-\x7e]{1,64}$/.test(v))
      throw invalidArgument(`${field}[${i}]`, `not a capability tag: ${quote(v)}`);
  });
  return [...values];
}

/** quote shows a caller's value in a message, cut to 64 characters. */
export function quote(value: string): string {
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
}

/** At most this many health checks per node, and this long a text field. */
export const MAX_HEALTH_CHECKS = 32;
const MAX_HEALTH_TEXT = 200;
const ENTRY_KEY = /^(tcp|udp)\/([0-9]{1,5})$/;

/**
 * healthChecks checks an agent's health report (HeartbeatRequest.health). Throws ControlError
 * INVALID_ARGUMENT naming the field, e.g. `health[1].covers[0]`.
 */
export function healthChecks(
  value: readonly {
    name: string;
    description: string;
    covers: string[];
    healthy: boolean;
    detail: string;
    sinceUnixMs: number;
  }[],
): HealthRecord[] {
  if (value.length > MAX_HEALTH_CHECKS)
    throw invalidArgument('health', `at most ${MAX_HEALTH_CHECKS} checks`);
  const names = new Set<string>();
  return value.map((h, i) => {
    const at = `health[${i}]`;
    const name = nodeName(`${at}.name`, h.name);
    if (names.has(name)) throw invalidArgument(`${at}.name`, `${name} reported twice`);
    names.add(name);
    for (const [k, v] of [
      ['description', h.description],
      ['detail', h.detail],
    ] as const)
      if (v.length > MAX_HEALTH_TEXT)
        throw invalidArgument(`${at}.${k}`, `longer than ${MAX_HEALTH_TEXT} characters`);
    if (h.covers.length > 64) throw invalidArgument(`${at}.covers`, 'at most 64 entries');
    h.covers.forEach((c, j) => {
      const m = ENTRY_KEY.exec(c);
      if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535)
        throw invalidArgument(`${at}.covers[${j}]`, `not an entry like tcp/80: ${quote(c)}`);
    });
    return {
      name,
      description: h.description,
      covers: [...h.covers],
      healthy: h.healthy,
      detail: h.detail,
      sinceUnixMs: h.sinceUnixMs,
    };
  });
}
