import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { DEFAULT_HEARTBEAT_INTERVAL_MS, DEFAULT_HEARTBEAT_TIMEOUT_MS, ETCD_PREFIX } from '@onehost/control';
import { parseCidr, tryParseIpv4 } from '@onehost/wire';
import { isMap, isSeq, LineCounter, parseDocument } from 'yaml';

/**
 * The gateway's YAML configuration (docs/gateway.md). The switch table keys (clusterAddresses,
 * management, entries, fragments) use the switch's own format and are validated by the switch; nodes,
 * port blocks and exports come from the control plane at run time.
 */
export interface GatewayConfig {
  /** this gateway's node name in the switch (decisions for it are local) */
  name: string;
  tun: { name: string; mtu: number; maxBatch: number };
  outside: { interfaces: string[] };
  /**
   * `gateways`: every gateway's interconnect address (this one's included), told to the agents: their
   * VXLAN filter takes encapsulated packets from each and their default route goes over all of them
   */
  interconnect: { interface: string; address: string; prefix: string; mtu: number; gateways: string[] };
  vxlan: { vni: number; port: number };
  control: {
    listen: { host: string; port: number };
    tls: { ca: string; cert: string; key: string };
    store: StoreConfig;
    portRange: { lo: number; hi: number };
    blockSize: number;
    heartbeatIntervalMs: number;
    heartbeatTimeoutMs: number;
  };
  metrics: { host: string; port: number } | null;
  host: { table: number; rulePref: number; localPref: number; state: string; manage: boolean };
  /**
   * delayed binding of TCP MOUNT/NFS (docs/splice.md): the agents' UDP port, how long a connection may
   * stay with the gateway before a record routes it, and the largest first record
   */
  splice: { port: number; idleMs: number; maxRecord: number };
  /**
   * the data-path probe (docs/gateway.md, "Data-path probe"): the agents' UDP port (0: no probes), one
   * probe per node per interval, unanswered probes in a row that make a node unreachable (fall) and
   * answered ones that bring it back (rise)
   */
  probe: { port: number; intervalMs: number; fall: number; rise: number };
  /**
   * the data path (docs/fastpath.md): `kernel` compiles the switch into nftables marks and per-node VXLAN
   * routes, and only what the kernel cannot decide reaches the TUN; `tun` sends every packet through it
   */
  datapath: {
    mode: 'kernel' | 'tun';
    device: string;
    table: string;
    rulePref: number;
    markBase: number;
    tableBase: number;
    /** packets per second the kernel lets into user space, per class (0: no limit) */
    guard: { first: number; unknown: number; other: number; payloadSyn: number; payload: number };
  };
  /**
   * the cluster addresses' BGP announcement through the host's FRR (docs/gateway.md, "Announcement"):
   * bgpd's AS and vty socket directory, how long a withdrawing gateway keeps forwarding; null: off
   */
  announce: {
    asn: number;
    vtySocket: string;
    vtysh: string;
    withdrawGraceMs: number;
    /** the routers' addresses: their BGP and BFD pass the host filter */
    peers: string[];
  } | null;
  /**
   * connections of round robin and least-connections shared with the other gateways (`interconnect.
   * gateways`) through conntrackd, so one that moves to another gateway keeps its node (docs/fastpath.md,
   * "Flows that change gateway"); each pair of gateways takes `port` + its index; null: off
   */
  flowSync: { port: number; conntrackd: string } | null;
  /** the switch keys, as written (validated by the switch when the first snapshot is built) */
  switch: {
    clusterAddresses: unknown[];
    management?: unknown;
    entries: unknown[];
    fragments?: unknown;
  };
}

/**
 * StoreConfig is where the control plane keeps membership and exports (docs/gateway.md, "Control
 * store"): the embedded file store (`store: <file>`), or etcd shared by several gateways
 * (`store: { etcd: { endpoints, tls, prefix } }`).
 */
export type StoreConfig =
  | { kind: 'embedded'; path: string }
  | {
      kind: 'etcd';
      /** client URLs, https://host:port */
      endpoints: string[];
      /** the CA of etcd's certificates, and the gateway's client certificate and key */
      tls: { ca: string; cert: string; key: string };
      /** the cluster's key prefix, e.g. /onehost/lab/ */
      prefix: string;
    };

/** ConfigError lists every problem found, each as "file:line:col field: problem". */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
  }
}

type Obj = Record<string, unknown>;
const SWITCH_KEYS = ['clusterAddresses', 'management', 'entries', 'fragments'] as const;
const TOP_KEYS = [
  'name',
  'tun',
  'outside',
  'interconnect',
  'vxlan',
  'control',
  'metrics',
  'host',
  'splice',
  'probe',
  'datapath',
  'announce',
  'flowSync',
  ...SWITCH_KEYS,
];

class Reader {
  readonly problems: string[] = [];
  constructor(
    private readonly where: (path: string[]) => string,
    private readonly root: Obj,
  ) {}

  fail(path: string[], problem: string): undefined {
    this.problems.push(`${this.where(path)}${path.join('.')}: ${problem}`);
    return undefined;
  }

  get(path: string[]): unknown {
    let v: unknown = this.root;
    for (const k of path) v = v !== null && typeof v === 'object' ? (v as Obj)[k] : undefined;
    return v;
  }

  obj(path: string[], keys: readonly string[], required = true): Obj | undefined {
    const v = this.get(path);
    if (v === undefined && !required) return undefined;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return this.fail(path, 'must be a mapping');
    for (const k of Object.keys(v)) if (!keys.includes(k)) this.fail([...path, k], 'unknown field');
    return v as Obj;
  }

  str(path: string[], dflt?: string, pattern?: RegExp, what = 'a string'): string | undefined {
    const v = this.get(path);
    if (v === undefined && dflt !== undefined) return dflt;
    if (typeof v !== 'string' || v === '' || (pattern && !pattern.test(v)))
      return this.fail(path, `must be ${what}, got ${show(v)}`);
    return v;
  }

  int(path: string[], min: number, max: number, dflt?: number): number | undefined {
    const v = this.get(path);
    if (v === undefined && dflt !== undefined) return dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
      return this.fail(path, `must be an integer from ${min} to ${max}, got ${show(v)}`);
    return v;
  }

  addr(path: string[]): string | undefined {
    const v = this.get(path);
    if (typeof v !== 'string' || tryParseIpv4(v) < 0)
      return this.fail(path, `must be an IPv4 address, got ${show(v)}`);
    return v;
  }

  endpoint(path: string[]): { host: string; port: number } | undefined {
    const v = this.get(path);
    const m = typeof v === 'string' ? /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(v) : null;
    if (m === null || tryParseIpv4(m[1]!) < 0 || Number(m[2]) > 65535)
      return this.fail(path, `must be address:port like 198.18.0.1:7443, got ${show(v)}`);
    return { host: m[1]!, port: Number(m[2]) };
  }
}

function show(v: unknown): string {
  return v === undefined ? 'nothing' : JSON.stringify(v);
}

const ETCD_ENDPOINT = /^https:\/\/([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):([0-9]{1,5})$/;

/** readStore reads control.store: a file path (embedded), or a mapping with `etcd`. */
function readStore(r: Reader): StoreConfig | undefined {
  const at = ['control', 'store'];
  const v = r.get(at);
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    const path = r.str(at, undefined, undefined, 'a file path (the embedded store) or a mapping with etcd');
    return path === undefined ? undefined : { kind: 'embedded', path };
  }
  const e = [...at, 'etcd'];
  r.obj(at, ['etcd']);
  // one problem for a missing mapping, not one for each field it would hold
  if (r.obj(e, ['endpoints', 'tls', 'prefix']) === undefined) return undefined;
  const hasTls = r.obj([...e, 'tls'], ['ca', 'cert', 'key']) !== undefined;
  const list = r.get([...e, 'endpoints']);
  const endpoints: string[] = [];
  if (!Array.isArray(list) || list.length === 0)
    r.fail([...e, 'endpoints'], 'must list at least one etcd client URL');
  else
    list.forEach((x, i) => {
      const m = typeof x === 'string' ? ETCD_ENDPOINT.exec(x) : null;
      if (m === null || Number(m[2]) < 1 || Number(m[2]) > 65535)
        r.fail(
          [...e, 'endpoints', String(i)],
          `must be https://host:port (etcd is reached over mutual TLS), got ${show(x)}`,
        );
      else endpoints.push(x as string);
    });
  const tls = hasTls
    ? { ca: r.str([...e, 'tls', 'ca']), cert: r.str([...e, 'tls', 'cert']), key: r.str([...e, 'tls', 'key']) }
    : {};
  const prefix = r.str(
    [...e, 'prefix'],
    undefined,
    ETCD_PREFIX,
    'a key prefix that starts and ends with / (e.g. /onehost/lab/)',
  );
  if (tls.ca === undefined || tls.cert === undefined || tls.key === undefined || prefix === undefined)
    return undefined;
  return { kind: 'etcd', endpoints, tls: tls as { ca: string; cert: string; key: string }, prefix };
}

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** parseGatewayConfig validates YAML text; throws ConfigError listing every problem with its position. */
export function parseGatewayConfig(text: string, file = 'gateway.yaml'): GatewayConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const p = lines.linePos(e.pos[0]);
        return `${file}:${p.line}:${p.col}: ${e.message.split('\n')[0]}`;
      }),
    );
  }
  const where = (path: string[]): string => {
    let node: unknown = doc.contents;
    for (const k of path) {
      if (isMap(node)) node = node.get(k, true);
      else if (isSeq(node)) node = node.get(Number(k), true);
      else break;
    }
    const range = (node as { range?: [number, number, number] } | undefined)?.range;
    if (!range) return `${file}: `;
    const p = lines.linePos(range[0]);
    return `${file}:${p.line}:${p.col}: `;
  };
  const root = doc.toJS() as unknown;
  if (root === null || typeof root !== 'object' || Array.isArray(root))
    throw new ConfigError([`${file}: must be a YAML mapping`]);
  const r = new Reader(where, root as Obj);
  r.obj([], TOP_KEYS);
  const name = r.str(['name'], undefined, NAME, 'a node name (letters, digits, . _ -)');
  r.obj(['tun'], ['name', 'mtu', 'maxBatch'], false);
  const tun = {
    name: r.str(['tun', 'name'], 'onehost0', IFNAME, 'an interface name (≤ 15 characters)'),
    mtu: r.int(['tun', 'mtu'], 576, 65535, 1500),
    maxBatch: r.int(['tun', 'maxBatch'], 1, 4096, 64),
  };
  r.obj(['outside'], ['interfaces']);
  const outsideList = r.get(['outside', 'interfaces']);
  const outside: string[] = [];
  if (!Array.isArray(outsideList) || outsideList.length === 0)
    r.fail(['outside', 'interfaces'], 'must list at least one interface');
  else
    for (let i = 0; i < outsideList.length; i++)
      outside.push(r.str(['outside', 'interfaces', String(i)], undefined, IFNAME, 'an interface name') ?? '');
  r.obj(['interconnect'], ['interface', 'address', 'prefix', 'mtu', 'gateways']);
  const prefix = r.str(['interconnect', 'prefix'], '198.18.0.0/15');
  if (prefix !== undefined) {
    try {
      parseCidr(prefix);
    } catch (e) {
      r.fail(['interconnect', 'prefix'], (e as Error).message);
    }
  }
  const interconnect = {
    interface: r.str(['interconnect', 'interface'], undefined, IFNAME, 'an interface name'),
    address: r.addr(['interconnect', 'address']),
    prefix,
    mtu: r.int(['interconnect', 'mtu'], 576, 65535, 1500),
    gateways: [] as string[],
  };
  const gws = r.get(['interconnect', 'gateways']);
  if (gws === undefined) {
    if (interconnect.address !== undefined) interconnect.gateways.push(interconnect.address);
  } else if (!Array.isArray(gws) || gws.length === 0) {
    r.fail(['interconnect', 'gateways'], 'must list every gateway’s interconnect address');
  } else {
    gws.forEach((_, i) => {
      const a = r.addr(['interconnect', 'gateways', String(i)]);
      if (a !== undefined) interconnect.gateways.push(a);
    });
    if (interconnect.address !== undefined && !interconnect.gateways.includes(interconnect.address))
      r.fail(['interconnect', 'gateways'], `must include this gateway’s own address ${interconnect.address}`);
  }
  r.obj(['vxlan'], ['vni', 'port'], false);
  const vxlan = {
    vni: r.int(['vxlan', 'vni'], 0, 0xffffff, 4242),
    port: r.int(['vxlan', 'port'], 1, 65535, 4789),
  };
  r.obj(['control'], ['listen', 'tls', 'store', 'portRange', 'blockSize', 'heartbeat']);
  r.obj(['control', 'tls'], ['ca', 'cert', 'key']);
  r.obj(['control', 'portRange'], ['lo', 'hi'], false);
  r.obj(['control', 'heartbeat'], ['intervalMs', 'timeoutMs'], false);
  const control = {
    listen: r.endpoint(['control', 'listen']),
    tls: {
      ca: r.str(['control', 'tls', 'ca']),
      cert: r.str(['control', 'tls', 'cert']),
      key: r.str(['control', 'tls', 'key']),
    },
    store: readStore(r),
    portRange: {
      lo: r.int(['control', 'portRange', 'lo'], 1024, 65535, 32768),
      hi: r.int(['control', 'portRange', 'hi'], 1024, 65535, 60999),
    },
    blockSize: r.int(['control', 'blockSize'], 16, 32768, 1024),
    heartbeatIntervalMs: r.int(
      ['control', 'heartbeat', 'intervalMs'],
      10,
      60_000,
      DEFAULT_HEARTBEAT_INTERVAL_MS,
    ),
    heartbeatTimeoutMs: r.int(
      ['control', 'heartbeat', 'timeoutMs'],
      20,
      600_000,
      DEFAULT_HEARTBEAT_TIMEOUT_MS,
    ),
  };
  if ((control.portRange.lo ?? 0) > (control.portRange.hi ?? 0))
    r.fail(['control', 'portRange'], 'lo must not be above hi');
  if ((control.heartbeatTimeoutMs ?? 0) <= (control.heartbeatIntervalMs ?? 0))
    r.fail(['control', 'heartbeat', 'timeoutMs'], 'must be longer than intervalMs');
  const metrics = r.get(['metrics']) === undefined ? null : r.endpoint(['metrics']);
  r.obj(['host'], ['table', 'rulePref', 'localPref', 'state', 'manage'], false);
  const manage = r.get(['host', 'manage']);
  if (manage !== undefined && typeof manage !== 'boolean')
    r.fail(['host', 'manage'], `must be true or false, got ${show(manage)}`);
  const host = {
    table: r.int(['host', 'table'], 1, 0xfffffffe, 4789),
    rulePref: r.int(['host', 'rulePref'], 1, 32765, 100),
    localPref: r.int(['host', 'localPref'], 1, 32765, 200),
    state: r.str(['host', 'state'], `/run/onehost/gateway-${name ?? 'gw'}-host.json`),
    manage: manage !== false,
  };
  if ((host.rulePref ?? 0) >= (host.localPref ?? 0))
    r.fail(['host', 'rulePref'], 'must be below localPref (the VIP rules go before the local table)');
  r.obj(['splice'], ['port', 'idleMs', 'maxRecord'], false);
  const splice = {
    port: r.int(['splice', 'port'], 1, 65535, 7472),
    idleMs: r.int(['splice', 'idleMs'], 100, 3_600_000, 10_000),
    maxRecord: r.int(['splice', 'maxRecord'], 64, 60_000, 8192),
  };
  r.obj(['probe'], ['port', 'intervalMs', 'fall', 'rise'], false);
  const probe = {
    port: r.int(['probe', 'port'], 0, 65535, 7473),
    intervalMs: r.int(['probe', 'intervalMs'], 20, 60_000, 200),
    fall: r.int(['probe', 'fall'], 1, 100, 3),
    rise: r.int(['probe', 'rise'], 1, 100, 2),
  };
  if (probe.port !== undefined && probe.port === splice.port)
    r.fail(['probe', 'port'], `must differ from splice.port (${splice.port}): agents listen on both`);
  r.obj(['datapath'], ['mode', 'device', 'table', 'rulePref', 'markBase', 'tableBase', 'guard'], false);
  r.obj(['datapath', 'guard'], ['first', 'unknown', 'other', 'payloadSyn', 'payload'], false);
  const mode = r.get(['datapath', 'mode']);
  if (mode !== undefined && mode !== 'kernel' && mode !== 'tun')
    r.fail(['datapath', 'mode'], `must be kernel or tun, got ${show(mode)}`);
  const rate = (k: string, dflt: number) => r.int(['datapath', 'guard', k], 0, 10_000_000, dflt);
  const datapath = {
    mode: (mode ?? 'kernel') as 'kernel' | 'tun',
    device: r.str(['datapath', 'device'], 'onehostvx', IFNAME, 'an interface name (≤ 15 characters)'),
    table: r.str(
      ['datapath', 'table'],
      'onehost_fastpath',
      /^[A-Za-z][A-Za-z0-9_]{0,63}$/,
      'an nftables table name',
    ),
    rulePref: r.int(['datapath', 'rulePref'], 1, 32765, 90),
    markBase: r.int(['datapath', 'markBase'], 0x10000, 0xffff0000, 0x6f480000),
    tableBase: r.int(['datapath', 'tableBase'], 256, 0xfffe0000, 0x4f480000),
    guard: {
      first: rate('first', 20_000),
      unknown: rate('unknown', 5_000),
      other: rate('other', 5_000),
      payloadSyn: rate('payloadSyn', 20_000),
      payload: rate('payload', 0),
    },
  };
  if ((datapath.markBase ?? 0) % 0x10000 !== 0)
    r.fail(['datapath', 'markBase'], 'must be a multiple of 0x10000 (node ids fill the low 16 bits)');
  if (datapath.mode === 'kernel' && !host.manage)
    r.fail(
      ['datapath', 'mode'],
      'kernel needs host.manage (the fast path lives in the host’s kernel); use tun',
    );
  if ((datapath.rulePref ?? 0) >= (host.rulePref ?? 0))
    r.fail(
      ['datapath', 'rulePref'],
      'must be below host.rulePref (marked packets go to their node before the TUN)',
    );
  let announce: GatewayConfig['announce'] = null;
  if (r.obj(['announce'], ['asn', 'vtySocket', 'vtysh', 'withdrawGraceMs', 'peers'], false) !== undefined) {
    const list = r.get(['announce', 'peers']);
    const peers: string[] = [];
    if (!Array.isArray(list) || list.length === 0)
      r.fail(
        ['announce', 'peers'],
        'must list the routers’ IPv4 addresses (their BGP and BFD pass the host filter)',
      );
    else
      list.forEach((_, i) => {
        const a = r.addr(['announce', 'peers', String(i)]);
        if (a !== undefined) peers.push(a);
      });
    const a = {
      asn: r.int(['announce', 'asn'], 1, 4294967295),
      vtySocket: r.str(['announce', 'vtySocket'], undefined, undefined, 'the directory of bgpd’s vty socket'),
      vtysh: r.str(['announce', 'vtysh'], 'vtysh'),
      withdrawGraceMs: r.int(['announce', 'withdrawGraceMs'], 0, 60_000, 300),
      peers,
    };
    if (a.asn !== undefined && a.vtySocket !== undefined && a.vtysh !== undefined)
      announce = a as NonNullable<GatewayConfig['announce']>;
  }
  let flowSync: GatewayConfig['flowSync'] = null;
  if (r.obj(['flowSync'], ['port', 'conntrackd'], false) !== undefined) {
    const pairs = (interconnect.gateways.length * (interconnect.gateways.length - 1)) / 2;
    const fs = {
      port: r.int(['flowSync', 'port'], 1, Math.max(1, 65535 - Math.max(0, pairs - 1)), 3780),
      conntrackd: r.str(['flowSync', 'conntrackd'], 'conntrackd'),
    };
    if (datapath.mode !== 'kernel')
      r.fail(['flowSync'], 'needs datapath.mode kernel (the kernel keeps the connections it shares)');
    if (fs.port !== undefined && fs.conntrackd !== undefined)
      flowSync = fs as NonNullable<GatewayConfig['flowSync']>;
  }
  const cas = r.get(['clusterAddresses']);
  if (!Array.isArray(cas) || cas.length === 0)
    r.fail(['clusterAddresses'], 'must list at least one cluster address');
  const entries = r.get(['entries']) ?? [];
  if (!Array.isArray(entries)) r.fail(['entries'], 'must be a list');
  // IPv6 inside VXLAN: the inner MTU (interconnect − 50) must reach IPv6's minimum link MTU (RFC 8200
  // §5), or senders ignore the Packet Too Big announcing it (RFC 8201 §4) and full-size packets never pass
  const six = Array.isArray(cas) && cas.some((a) => String((a as Obj | null)?.address ?? '').includes(':'));
  if (six && typeof interconnect.mtu === 'number' && interconnect.mtu - 50 < 1280)
    r.fail(
      ['interconnect', 'mtu'],
      `must be at least 1330 with an IPv6 cluster address (VXLAN takes 50, IPv6 needs 1280), got ${interconnect.mtu}`,
    );
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  const sw: GatewayConfig['switch'] = { clusterAddresses: cas as unknown[], entries: entries as unknown[] };
  const root2 = root as Obj;
  if (root2.management !== undefined) sw.management = root2.management;
  if (root2.fragments !== undefined) sw.fragments = root2.fragments;
  return {
    name: name!,
    tun: tun as GatewayConfig['tun'],
    outside: { interfaces: outside },
    interconnect: interconnect as GatewayConfig['interconnect'],
    vxlan: vxlan as GatewayConfig['vxlan'],
    control: control as GatewayConfig['control'],
    metrics: metrics ?? null,
    host: host as GatewayConfig['host'],
    splice: splice as GatewayConfig['splice'],
    probe: probe as GatewayConfig['probe'],
    datapath: datapath as GatewayConfig['datapath'],
    announce,
    flowSync,
    switch: sw,
  };
}

/**
 * loadGatewayConfig reads and validates a file; relative file paths in it (TLS files, store, host state)
 * are taken relative to the file's directory. Throws ConfigError (or the read error).
 */
export async function loadGatewayConfig(path: string): Promise<GatewayConfig> {
  return readGatewayConfigText(await readFile(path, 'utf8'), path);
}

/**
 * readGatewayConfigText validates `text` as if it were the file at `path` (a reload sent over gRPC is
 * the running gateway's file, changed): relative paths are taken relative to that file's directory.
 */
export function readGatewayConfigText(text: string, path: string): GatewayConfig {
  const cfg = parseGatewayConfig(text, path);
  const base = dirname(resolve(path));
  const at = (p: string): string => resolve(base, p);
  cfg.control.tls = {
    ca: at(cfg.control.tls.ca),
    cert: at(cfg.control.tls.cert),
    key: at(cfg.control.tls.key),
  };
  const store = cfg.control.store;
  cfg.control.store =
    store.kind === 'embedded'
      ? { kind: 'embedded', path: at(store.path) }
      : { ...store, tls: { ca: at(store.tls.ca), cert: at(store.tls.cert), key: at(store.tls.key) } };
  cfg.host.state = at(cfg.host.state);
  if (cfg.announce !== null) cfg.announce.vtySocket = at(cfg.announce.vtySocket);
  return cfg;
}
