import { ipv6ToString, parseIpv6, tryParseIpv4 } from '@onehost/wire';
import type { FunctionRegistry } from '../functions/registry.js';
import { normalizeExportPath } from '../tables/export-table.js';
import { clusterAddressText } from './address-text.js';
import { type ConfigIssue, Fields, formatPath, Issues } from './fields.js';
import type {
  Cidr6Config,
  CidrConfig,
  ClusterAddressConfig,
  EntryConfig,
  ExportConfig,
  HandleLayout,
  NodeConfig,
  PortBlockConfig,
  ProtocolName,
  SwitchConfig,
} from './types.js';

export const DEFAULT_FRAGMENT_ENTRIES = 4096;
export const DEFAULT_FRAGMENT_TIMEOUT = 30;
/** ganesha's layout: Export_Id big-endian in handle bytes 2-3. */
export const GANESHA_HANDLE: HandleLayout = Object.freeze({ offset: 2, length: 2, endian: 'big' });

const NODE_STATES = ['active', 'draining', 'down'] as const;
const PROTOCOLS = ['tcp', 'udp'] as const;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export type ValidationResult = { ok: true; config: SwitchConfig } | { ok: false; issues: ConfigIssue[] };

function address(f: Fields, key: string): number | undefined {
  const v = f.str(key, true);
  if (v === undefined) return undefined;
  const a = tryParseIpv4(v);
  if (a < 0) {
    f.error(key, `must be an IPv4 address like 203.0.113.10, got ${JSON.stringify(v)}`);
    return undefined;
  }
  return a;
}

/**
 * clusterAddress reads a cluster address of either family: IPv4 as a uint32, IPv6 (RFC 4291 §2.2 text) as
 * 16 bytes. Records an error naming the field for anything else, or for an IPv6 address that cannot be a
 * host's (unspecified, loopback, multicast, link-local, IPv4-mapped).
 */
function clusterAddress(f: Fields, key: string): { address: number; address6?: Uint8Array } | undefined {
  const v = f.str(key, true);
  if (v === undefined) return undefined;
  const a = tryParseIpv4(v);
  if (a >= 0) return { address: a };
  if (v.includes(':')) {
    let b: Uint8Array;
    try {
      b = parseIpv6(v);
    } catch {
      f.error(
        key,
        `must be an IPv4 or IPv6 address like 203.0.113.10 or 2001:db8::10, got ${JSON.stringify(v)}`,
      );
      return undefined;
    }
    const why = unusableIpv6(b);
    if (why !== null) {
      f.error(key, `must be an address a host can own, got ${v} (${why})`);
      return undefined;
    }
    return { address: 0, address6: b };
  }
  f.error(key, `must be an IPv4 or IPv6 address like 203.0.113.10 or 2001:db8::10, got ${JSON.stringify(v)}`);
  return undefined;
}

/** unusableIpv6 says why an IPv6 address cannot be a cluster address (RFC 4291 §2.4), or null. */
function unusableIpv6(b: Uint8Array): string | null {
  if (b[0] === 0xff) return 'multicast';
  if (b[0] === 0xfe && (b[1]! & 0xc0) === 0x80) return 'link-local';
  let zeros = 0;
  while (zeros < 16 && b[zeros] === 0) zeros++;
  if (zeros === 16) return 'unspecified';
  if (zeros === 15 && b[15] === 1) return 'loopback';
  if (zeros === 10 && b[10] === 0xff && b[11] === 0xff) return 'IPv4-mapped';
  return null;
}

const NETWORK_LIKE = 'must be an IPv4 or IPv6 network like 203.0.113.0/24 or 2001:db8::/32';

/**
 * cidr reads a management source: an IPv4 network (`/32` when no prefix is written) or an IPv6 one (RFC
 * 4291 §2.3 text, `/128` when none). Records an error naming the field for anything else, or for host
 * bits set past the prefix.
 */
function cidr(
  text: unknown,
  at: (string | number)[],
  issues: Issues,
): { v4: CidrConfig } | { v6: Cidr6Config } | undefined {
  if (typeof text !== 'string') {
    issues.add(at, `${NETWORK_LIKE}, got ${JSON.stringify(text)}`);
    return undefined;
  }
  const slash = text.indexOf('/');
  if (text.includes(':')) return cidr6(text, slash, at, issues);
  const prefix = slash < 0 ? 32 : Number(text.slice(slash + 1));
  const addr = tryParseIpv4(slash < 0 ? text : text.slice(0, slash));
  if (
    addr < 0 ||
    !Number.isInteger(prefix) ||
    prefix < 0 ||
    prefix > 32 ||
    (slash >= 0 && text.slice(slash + 1) === '')
  ) {
    issues.add(at, `${NETWORK_LIKE}, got ${JSON.stringify(text)}`);
    return undefined;
  }
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  if ((addr & mask) >>> 0 !== addr) {
    issues.add(
      at,
      `has host bits set past /${prefix} (did you mean ${networkText((addr & mask) >>> 0, prefix)}?)`,
    );
    return undefined;
  }
  return { v4: { text, network: addr, mask } };
}

/** cidr6 is cidr's IPv6 half. */
function cidr6(
  text: string,
  slash: number,
  at: (string | number)[],
  issues: Issues,
): { v6: Cidr6Config } | undefined {
  const suffix = slash < 0 ? '128' : text.slice(slash + 1);
  let network: Uint8Array | undefined;
  try {
    network = parseIpv6(slash < 0 ? text : text.slice(0, slash));
  } catch {
    network = undefined;
  }
  const prefix = Number(suffix);
  if (network === undefined || !/^\d{1,3}$/.test(suffix) || prefix > 128) {
    issues.add(at, `${NETWORK_LIKE}, got ${JSON.stringify(text)}`);
    return undefined;
  }
  const masked = network.map((b, i) => {
    const bits = Math.min(8, Math.max(0, prefix - 8 * i));
    return b & ((0xff00 >> bits) & 0xff);
  });
  if (masked.some((b, i) => b !== network[i])) {
    issues.add(at, `has host bits set past /${prefix} (did you mean ${ipv6ToString(masked)}/${prefix}?)`);
    return undefined;
  }
  return { v6: { text, network, prefix } };
}

function networkText(a: number, prefix: number): string {
  return `${a >>> 24}.${(a >>> 16) & 0xff}.${(a >>> 8) & 0xff}.${a & 0xff}/${prefix}`;
}

function name(f: Fields, key: string): string | undefined {
  const v = f.str(key, true);
  if (v !== undefined && !NAME.test(v)) {
    f.error(
      key,
      `must be 1-63 letters, digits, '.', '_' or '-' starting with a letter or digit, got ${JSON.stringify(v)}`,
    );
    return undefined;
  }
  return v;
}

function readNode(f: Fields): NodeConfig | undefined {
  const id = f.int('id', { min: 0, max: 0xfffe, required: true });
  const n = name(f, 'name');
  const addr = address(f, 'address');
  const state = f.oneOf('state', NODE_STATES, 'active');
  const m = f.sub('mountd');
  const mountd: NodeConfig['mountd'] = {};
  const udp = m.int('udp', { min: 1, max: 65535 });
  const tcp = m.int('tcp', { min: 1, max: 65535 });
  if (udp !== undefined) mountd.udp = udp;
  if (tcp !== undefined) mountd.tcp = tcp;
  m.done();
  let nfsHandle = GANESHA_HANDLE;
  if (f.has('nfsHandle')) {
    const h = f.sub('nfsHandle');
    const offset = h.int('offset', { min: 0, max: 63, required: true });
    const length = h.int('length', { min: 1, max: 4, required: true });
    const endian = h.oneOf('endian', ['big', 'little'] as const, 'big');
    if (offset !== undefined && length !== undefined && offset + length > 64) {
      h.error('length', `offset + length must stay within a 64-byte handle, got ${offset} + ${length}`);
    }
    h.done();
    nfsHandle = { offset: offset ?? 0, length: length ?? 1, endian: endian ?? 'big' };
  } else f.raw('nfsHandle');
  f.done();
  if (id === undefined || n === undefined || addr === undefined || state === undefined) return undefined;
  return { id, name: n, address: addr, state, mountd, nfsHandle };
}

function duplicates<T>(
  items: readonly { value: T; at: (string | number)[] }[],
  issues: Issues,
  what: (v: T) => string,
): void {
  const first = new Map<string, (string | number)[]>();
  for (const it of items) {
    const k = what(it.value);
    const prev = first.get(k);
    if (prev !== undefined) issues.add(it.at, `duplicates ${k} (already at ${formatPath(prev)})`);
    else first.set(k, it.at);
  }
}

/**
 * validateConfig checks a parsed document (plain objects, lists, strings, numbers, booleans) against
 * the switch config format and the registry's routing functions. Never throws: every problem is an
 * issue naming the field (`entries[2].policy: must be one of ...`).
 */
export function validateConfig(doc: unknown, registry: FunctionRegistry): ValidationResult {
  const issues = new Issues();
  const root = new Fields(doc ?? {}, [], issues);

  // nodes first: other sections refer to them by name.
  const nodes: NodeConfig[] = [];
  const nodeItems = root.list('nodes', true);
  const named: { value: string; at: (string | number)[] }[] = [];
  const ids: { value: number; at: (string | number)[] }[] = [];
  const addrs: { value: number; at: (string | number)[] }[] = [];
  nodeItems.forEach((item, i) => {
    const f = new Fields(item, ['nodes', i], issues);
    const n = readNode(f);
    if (n === undefined) return;
    nodes.push(n);
    named.push({ value: n.name, at: ['nodes', i, 'name'] });
    ids.push({ value: n.id, at: ['nodes', i, 'id'] });
    addrs.push({ value: n.address, at: ['nodes', i, 'address'] });
  });
  if (nodeItems.length === 0 && root.has('nodes')) root.error('nodes', 'must list at least one node');
  duplicates(named, issues, (v) => `node name ${v}`);
  duplicates(ids, issues, (v) => `node id ${v}`);
  duplicates(addrs, issues, (v) => `node address ${networkText(v, 32).slice(0, -3)}`);
  const nodeNames = new Set(nodes.map((n) => n.name));
  const knownNode = (f: Fields, key: string): string | undefined => {
    const v = f.str(key, true);
    if (v !== undefined && !nodeNames.has(v))
      f.error(key, `must name a node in nodes, got ${JSON.stringify(v)}`);
    return v;
  };

  const gateway = knownNode(root, 'gateway');

  const clusterAddresses: ClusterAddressConfig[] = [];
  const caItems = root.list('clusterAddresses', true);
  if (caItems.length === 0 && root.has('clusterAddresses'))
    root.error('clusterAddresses', 'must list at least one address');
  caItems.forEach((item, i) => {
    const f = new Fields(item, ['clusterAddresses', i], issues);
    const network = name(f, 'network');
    const addr = clusterAddress(f, 'address');
    const dflt = f.bool('default', false);
    f.done();
    if (network !== undefined && addr !== undefined)
      clusterAddresses.push({ network, ...addr, default: dflt });
  });
  // One address per network and family (dual stack: a network may have one of each), and one default per
  // family: the node stamps the default of a packet's family on what it sends out.
  for (const six of [false, true]) {
    const fam = clusterAddresses.filter((c) => (c.address6 !== undefined) === six);
    const defaults = fam.filter((c) => c.default).length;
    if (defaults > 1)
      root.error(
        'clusterAddresses',
        `exactly one ${six ? 'IPv6' : 'IPv4'} address may be the default, got ${defaults}`,
      );
    if (defaults === 0 && fam.length > 0) fam[0]!.default = true;
  }
  duplicates(
    clusterAddresses.map((c, i) => ({ value: c, at: ['clusterAddresses', i, 'address'] })),
    issues,
    (c) => `cluster address ${clusterAddressText(c)}`,
  );
  duplicates(
    clusterAddresses.map((c, i) => ({ value: c, at: ['clusterAddresses', i, 'network'] })),
    issues,
    (c) => `${c.address6 !== undefined ? 'IPv6 ' : ''}network ${c.network}`,
  );
  const nodeAddr = new Set(nodes.map((n) => n.address));
  clusterAddresses.forEach((c, i) => {
    if (c.address6 === undefined && nodeAddr.has(c.address))
      issues.add(['clusterAddresses', i, 'address'], 'is also a node internal address');
  });

  const management: CidrConfig[] = [];
  const management6: Cidr6Config[] = [];
  const mg = root.sub('management');
  mg.list('allow').forEach((v, i) => {
    const c = cidr(v, ['management', 'allow', i], issues);
    if (c !== undefined && 'v4' in c) management.push(c.v4);
    if (c !== undefined && 'v6' in c) management6.push(c.v6);
  });
  mg.done();

  const portBlocks: PortBlockConfig[] = [];
  root.list('portBlocks').forEach((item, i) => {
    const f = new Fields(item, ['portBlocks', i], issues);
    const node = knownNode(f, 'node');
    const from = f.int('from', { min: 1, max: 65535, required: true });
    const to = f.int('to', { min: 1, max: 65535, required: true });
    f.done();
    if (from !== undefined && to !== undefined && from > to)
      f.error('to', `must be at least from (${from}), got ${to}`);
    else if (node !== undefined && from !== undefined && to !== undefined) {
      const clash = portBlocks.findIndex((b) => b.from <= to && from <= b.to);
      if (clash >= 0)
        f.error(
          'from',
          `block ${from}-${to} overlaps portBlocks[${clash}] (${portBlocks[clash]!.from}-${portBlocks[clash]!.to})`,
        );
      else portBlocks.push({ node, from, to });
    }
  });

  const exports: ExportConfig[] = [];
  root.list('exports').forEach((item, i) => {
    const f = new Fields(item, ['exports', i], issues);
    const path = f.str('path', true);
    const node = knownNode(f, 'node');
    const exportId = f.int('exportId', { min: 0, max: 0xffffffff });
    f.done();
    if (path !== undefined && !path.startsWith('/'))
      f.error('path', `must be an absolute path, got ${JSON.stringify(path)}`);
    else if (path !== undefined && new TextEncoder().encode(path).length > 1024)
      f.error('path', 'must be at most 1024 bytes (MNTPATHLEN)');
    else if (path !== undefined && node !== undefined) {
      const p = normalizeExportPath(path);
      const dup = exports.findIndex((e) => normalizeExportPath(e.path) === p);
      if (dup >= 0) f.error('path', `export ${p} is already listed at exports[${dup}]`);
      else exports.push({ path: p, node, ...(exportId !== undefined ? { exportId } : {}) });
    }
  });
  // Two nodes whose servers write export ids at the same place must not claim the same id.
  const layoutOf = new Map(nodes.map((n) => [n.name, n.nfsHandle] as const));
  const idClaims = new Map<string, { node: string; index: number }>();
  exports.forEach((e, i) => {
    if (e.exportId === undefined) return;
    const l = layoutOf.get(e.node);
    if (l === undefined) return;
    const key = `${l.offset}/${l.length}/${l.endian}/${e.exportId}`;
    const prev = idClaims.get(key);
    if (prev !== undefined && prev.node !== e.node) {
      issues.add(
        ['exports', i, 'exportId'],
        `export id ${e.exportId} is already claimed by node ${prev.node} (exports[${prev.index}])`,
      );
    } else idClaims.set(key, { node: e.node, index: i });
  });

  const entries: EntryConfig[] = [];
  const seenKeys = new Map<string, number>();
  root.list('entries').forEach((item, i) => {
    const f = new Fields(item, ['entries', i], issues);
    const protocol = f.oneOf('protocol', PROTOCOLS);
    const port = f.int('port', { min: 1, max: 65535, required: true });
    const kind = f.str('function', true);
    const spec = kind === undefined ? undefined : registry.get(kind);
    if (kind !== undefined && spec === undefined) {
      f.error('function', `must be one of ${registry.kinds().join(', ')}, got ${JSON.stringify(kind)}`);
      // Do not report the options of an unknown kind as unknown fields.
      for (const k of Object.keys(f.obj)) f.raw(k);
    }
    if (spec !== undefined && protocol !== undefined && !spec.protocols.includes(protocol)) {
      f.error('protocol', `function ${kind} serves ${spec.protocols.join(' and ')}, not ${protocol}`);
    }
    let options: unknown;
    if (spec !== undefined)
      options = spec.validate(f, { nodeNames, protocol: protocol ?? 'tcp', port: port ?? 0 });
    f.done();
    if (protocol !== undefined && port !== undefined) {
      const key = `${protocol}/${port}`;
      const prev = seenKeys.get(key);
      if (prev !== undefined) f.error('port', `${key} is already entries[${prev}]`);
      else seenKeys.set(key, i);
    }
    if (protocol !== undefined && port !== undefined && kind !== undefined && spec !== undefined) {
      entries.push({ protocol: protocol as ProtocolName, port, function: kind, options });
    }
  });

  const fr = root.sub('fragments');
  const fragments = {
    maxEntries: fr.int('maxEntries', { min: 1, max: 1 << 20, default: DEFAULT_FRAGMENT_ENTRIES }),
    timeout: fr.seconds('timeout', DEFAULT_FRAGMENT_TIMEOUT, 600),
  };
  fr.done();
  root.done();

  if (!issues.ok || gateway === undefined) return { ok: false, issues: issues.list };
  return {
    ok: true,
    config: {
      gateway,
      clusterAddresses,
      nodes,
      management,
      management6,
      portBlocks,
      exports,
      entries,
      fragments,
    },
  };
}
