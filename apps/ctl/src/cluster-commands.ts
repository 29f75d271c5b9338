import { readFile } from 'node:fs/promises';
import {
  type Connection,
  Endianness,
  type Member,
  MemberState,
  type NodeExports,
  type SwitchEntry,
  Transport,
} from '@onehost/proto';
import type { Output } from './explain-command.js';
import { type GatewayFlags, printJson, UsageError, withGateway } from './gateway.js';
import { ago, duration, renderTable } from './table.js';

// The gRPC commands that read or change the cluster: members, routes, conns, drain/undrain, exports.
// Human output is a table; --json prints the same facts as one JSON document with names for enums:
// a list for members and exports, an object where the list comes with more (table version, total).

const STATE: Record<number, string> = {
  [MemberState.MEMBER_STATE_ACTIVE]: 'active',
  [MemberState.MEMBER_STATE_DRAINING]: 'draining',
  [MemberState.MEMBER_STATE_DOWN]: 'down',
  [MemberState.MEMBER_STATE_UNREACHABLE]: 'unreachable',
};

function stateOf(s: MemberState): string {
  return STATE[s] ?? 'unknown';
}

function transportOf(t: Transport): string {
  return t === Transport.TRANSPORT_TCP ? 'tcp' : t === Transport.TRANSPORT_UDP ? 'udp' : 'unknown';
}

function memberJson(m: Member) {
  return {
    name: m.nodeName,
    id: m.nodeId,
    state: stateOf(m.state),
    internalAddress: m.internalAddress,
    vxlanMac: m.vxlanMac,
    capabilities: m.capabilities,
    block: m.portBlock ?? null,
    lastSeenUnixMs: m.lastSeenUnixMs,
    downReason: m.downReason,
    health: m.health,
  };
}

/** health renders a node's checks: "-" without any, "ok" when all pass, else each failing one. */
function health(m: Member): string {
  if (m.health.length === 0) return '-';
  const failing = m.health.filter((h) => !h.healthy);
  if (failing.length === 0) return 'ok';
  return failing
    .map(
      (h) =>
        `${h.name}: ${h.description} ${h.detail} since ${new Date(h.sinceUnixMs).toISOString().slice(11, 19)}`,
    )
    .join('; ');
}

function block(b: { lo: number; hi: number } | undefined): string {
  return b === undefined ? '-' : `${b.lo}-${b.hi}`;
}

/** members lists every node the gateway knows, down ones included, by id. */
export function runMembers(flags: GatewayFlags, io: Output, now: () => number = Date.now): Promise<number> {
  return withGateway('members', flags, io, async (gw) => {
    const members = [...(await gw.membership().listMembers())].sort((a, b) => a.nodeId - b.nodeId);
    if (flags.json) return printJson(io, members.map(memberJson));
    if (members.length === 0) return io.out('no members');
    const t = now();
    const rows = members.map((m) => [
      m.nodeName,
      String(m.nodeId),
      m.downReason ? `${stateOf(m.state)} (${m.downReason})` : stateOf(m.state),
      m.internalAddress,
      block(m.portBlock),
      ago(m.lastSeenUnixMs, t),
      health(m),
    ]);
    for (const l of renderTable(
      ['NAME', 'ID', 'STATE', 'INTERNAL ADDRESS', 'BLOCK', 'LAST SEEN', 'HEALTH'],
      rows,
    ))
      io.out(l);
  });
}

/** summarize renders a function's options as "key=value" pairs: lists joined by commas, objects as JSON. */
export function summarize(options: Record<string, unknown> | undefined): string {
  if (options === undefined) return '';
  return Object.entries(options)
    .map(([k, v]) => {
      const text = Array.isArray(v)
        ? v.map((x) => (typeof x === 'object' && x !== null ? JSON.stringify(x) : String(x))).join(',')
        : typeof v === 'object' && v !== null
          ? JSON.stringify(v)
          : String(v);
      return `${k}=${text}`;
    })
    .join(' ');
}

function entryJson(e: SwitchEntry) {
  return { protocol: transportOf(e.protocol), port: e.port, function: e.function, options: e.options ?? {} };
}

/** routes lists the switch table: (protocol, port) → routing function and its options. */
export function runRoutes(flags: GatewayFlags, io: Output): Promise<number> {
  return withGateway('routes', flags, io, async (gw) => {
    const r = await gw.switch().listEntries();
    const entries = [...r.entries].sort((a, b) => a.protocol - b.protocol || a.port - b.port);
    if (flags.json) return printJson(io, { version: r.version, entries: entries.map(entryJson) });
    const rows = entries.map((e) => [
      transportOf(e.protocol),
      String(e.port),
      e.function,
      summarize(e.options),
    ]);
    for (const l of renderTable(['PROTO', 'PORT', 'FUNCTION', 'OPTIONS'], rows)) io.out(l);
    io.out(`${entries.length} entries, table version ${r.version}`);
  });
}

export interface ConnsFilter {
  node?: string;
  port?: number;
  protocol?: 'tcp' | 'udp';
  limit: number;
}

function connJson(c: Connection) {
  return {
    protocol: transportOf(c.protocol),
    port: c.port,
    client: `${c.srcAddress}:${c.srcPort}`,
    nodeId: c.nodeId,
    nodeName: c.nodeName,
    state: c.state,
    expiresInMs: c.expiresInMs,
    path: c.path,
    ...(c.path === 'kernel' ? { packets: c.packets } : {}),
    ...(c.splice !== undefined
      ? {
          splice: {
            seqOffset: c.splice.seqOffset,
            tsOffset: c.splice.tsOffset,
            nodePort: c.splice.nodePort,
          },
        }
      : {}),
  };
}

/** spliceText is the SPLICE column: how the client's segments are shifted, "-" for other flows. */
function spliceText(c: Connection): string {
  const s = c.splice;
  if (s === undefined) return '-';
  const sign = (n: number) => (n > 0 ? `+${n}` : String(n));
  return `ack ${sign(s.seqOffset)} ts ${sign(-s.tsOffset)} →:${s.nodePort}`;
}

/** clientText is a client as `addr:port`, an IPv6 one as `[addr]:port` (RFC 5952 §6), as explain --flow takes it. */
export function clientText(address: string, port: number): string {
  return address.includes(':') || address === '?' ? `[${address}]:${port}` : `${address}:${port}`;
}

/** conns lists the gateway's connection table (TCP connections and UDP flows), filtered. */
export function runConns(flags: GatewayFlags, filter: ConnsFilter, io: Output): Promise<number> {
  return withGateway('conns', flags, io, async (gw) => {
    const r = await gw.switch().listConnections({
      nodeName: filter.node ?? '',
      port: filter.port ?? 0,
      protocol:
        filter.protocol === 'tcp'
          ? Transport.TRANSPORT_TCP
          : filter.protocol === 'udp'
            ? Transport.TRANSPORT_UDP
            : Transport.TRANSPORT_UNSPECIFIED,
      limit: filter.limit,
    });
    if (flags.json)
      return printJson(io, { total: r.total, more: r.more, connections: r.connections.map(connJson) });
    const rows = r.connections.map((c) => [
      clientText(c.srcAddress, c.srcPort),
      `${transportOf(c.protocol)}/${c.port}`,
      c.nodeName || String(c.nodeId),
      c.state,
      duration(c.expiresInMs),
      c.path,
      c.path === 'kernel' ? String(c.packets) : '-',
      spliceText(c),
    ]);
    if (rows.length > 0)
      for (const l of renderTable(
        ['CLIENT', 'ENTRY', 'NODE', 'STATE', 'EXPIRES IN', 'PATH', 'PACKETS', 'SPLICE'],
        rows,
      ))
        io.out(l);
    io.out(
      r.more
        ? `${r.connections.length} of at least ${r.total} connections (the kernel keeps more; raise --limit)`
        : `${r.connections.length} of ${r.total} connections`,
    );
  });
}

/** drain stops new connections to a node (existing ones stay); undrain lifts it. */
export function runDrain(flags: GatewayFlags, node: string, undrain: boolean, io: Output): Promise<number> {
  const command = undrain ? 'undrain' : 'drain';
  return withGateway(command, flags, io, async (gw) => {
    const m = await gw.switch().drain(node, undrain);
    if (flags.json) return printJson(io, m === undefined ? null : memberJson(m));
    const state = m === undefined ? 'unknown' : stateOf(m.state);
    io.out(
      undrain
        ? `${node}: drain lifted (state ${state})`
        : `${node}: drained, no new connections; existing ones stay (state ${state})`,
    );
  });
}

function layout(e: NodeExports): string {
  const h = e.handleLayout;
  if (h === undefined) return '-';
  const endian = h.endianness === Endianness.ENDIANNESS_BIG ? 'big' : 'little';
  return `bytes ${h.offset}-${h.offset + h.length - 1} ${endian}-endian`;
}

/** exports lists each node's MOUNT registration: exports with their ids, mountd ports, handle layout. */
export function runExports(flags: GatewayFlags, io: Output): Promise<number> {
  return withGateway('exports', flags, io, async (gw) => {
    const nodes = [...(await gw.exports().listExports())].sort((a, b) => a.nodeId - b.nodeId);
    if (flags.json) {
      return printJson(
        io,
        nodes.map((n) => ({
          nodeId: n.nodeId,
          nodeName: n.nodeName,
          mountPorts: Object.fromEntries(n.mountPorts.map((p) => [transportOf(p.transport), p.port])),
          exports: n.exports,
          handleLayout:
            n.handleLayout === undefined
              ? null
              : {
                  offset: n.handleLayout.offset,
                  length: n.handleLayout.length,
                  endian: n.handleLayout.endianness === Endianness.ENDIANNESS_BIG ? 'big' : 'little',
                },
          registeredUnixMs: n.registeredUnixMs,
        })),
      );
    }
    if (nodes.length === 0) return io.out('no exports registered');
    const rows = nodes.flatMap((n) => {
      const ports = n.mountPorts.map((p) => `${transportOf(p.transport)} ${p.port}`).join(', ') || '-';
      return n.exports.map((e) => [n.nodeName, e.path, String(e.exportId), ports, layout(n)]);
    });
    for (const l of renderTable(['NODE', 'PATH', 'EXPORT ID', 'MOUNTD', 'ID IN HANDLE'], rows)) io.out(l);
  });
}

/** gateway status: the data path's mode, its version against the switch's, and who decides what. */
export function runGatewayStatus(flags: GatewayFlags, io: Output): Promise<number> {
  return withGateway('gateway status', flags, io, async (gw) => {
    const s = await gw.gateway().status();
    if (flags.json) return printJson(io, s);
    const lag =
      s.appliedVersion === s.switchVersion
        ? 'in step'
        : `behind the switch (${s.switchVersion})${s.lastError !== '' ? `: ${s.lastError}` : ''}`;
    io.out(`gateway ${s.name}: data path ${s.datapath}`);
    if (s.datapath === 'kernel') {
      io.out(
        `kernel table version ${s.appliedVersion}, ${lag}; last change took ${s.lastApplyMs.toFixed(1)} ms`,
      );
      io.out(`flow writes from user space: ${s.flowWrites} (${s.flowWriteFailures} refused)`);
    }
    const rows = s.functions.map((f) => [f.function, String(f.kernel), String(f.user)]);
    if (rows.length > 0)
      for (const l of renderTable(['FUNCTION', 'KERNEL PACKETS', 'USER-SPACE PACKETS'], rows)) io.out(l);
    const classes = s.userClasses.map((c) => [c.class, String(c.packets), String(c.guardDrops)]);
    if (classes.length > 0)
      for (const l of renderTable(['INTO USER SPACE', 'PACKETS', 'GUARD DROPS'], classes)) io.out(l);
  });
}

/**
 * gateways: the registered gateways (every gateway answers the same on etcd; the embedded store's
 * gateway lists itself), by name.
 */
export function runGateways(flags: GatewayFlags, io: Output, now: () => number = Date.now): Promise<number> {
  return withGateway('gateways', flags, io, async (gw) => {
    const r = await gw.gateway().listGateways();
    if (flags.json) return printJson(io, r);
    if (r.gateways.length === 0) return io.out('no gateways');
    const t = now();
    const rows = r.gateways.map((g) => [
      g.name,
      g.controlAddress,
      g.datapath,
      g.announcement,
      g.drained && g.health !== 'draining' ? `${g.health} (drain set)` : g.health,
      g.stale === '' ? String(g.appliedRevision) : `${g.appliedRevision} (stale: ${g.stale})`,
      String(g.switchVersion),
      duration(Math.max(0, t - g.startedUnixMs)),
    ]);
    for (const l of renderTable(
      ['NAME', 'ADDRESS', 'MODE', 'ANNOUNCEMENT', 'HEALTH', 'APPLIED REVISION', 'TABLE', 'AGE'],
      rows,
    ))
      io.out(l);
  });
}

/** gateway drain/undrain: set or lift a gateway's drain flag in the store. */
export function runGatewayDrain(
  flags: GatewayFlags,
  name: string,
  undrain: boolean,
  io: Output,
): Promise<number> {
  return withGateway(`gateway ${undrain ? 'undrain' : 'drain'}`, flags, io, async (gw) => {
    await gw.gateway().drainGateway(name, !undrain);
    if (flags.json) return printJson(io, { name, drained: !undrain });
    io.out(
      undrain
        ? `gateway ${name}: drain lifted; it announces the cluster addresses again`
        : `gateway ${name}: drained; it withdraws its announcement (health "draining")`,
    );
  });
}

/** gateway stop: a clean stop (kernel state removed), or one that leaves the kernel forwarding. */
export function runGatewayStop(flags: GatewayFlags, keepDatapath: boolean, io: Output): Promise<number> {
  return withGateway('gateway stop', flags, io, async (gw) => {
    await gw.gateway().stop(keepDatapath);
    if (flags.json) return printJson(io, { stopping: true, keepDatapath });
    io.out(
      keepDatapath
        ? 'gateway stopping; the kernel keeps forwarding established flows until the next start adopts them'
        : 'gateway stopping; its kernel state is removed and the host restored',
    );
  });
}

/**
 * apply -f / diff -f: send the gateway's configuration file, changed, to the running gateway; it
 * validates it, lists the changes and (apply) swaps the switch part in, keeping connections and flows.
 */
export async function runApply(
  flags: GatewayFlags,
  file: string,
  dryRun: boolean,
  io: Output,
): Promise<number> {
  const what = dryRun ? 'diff' : 'apply';
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    return withGateway(what, flags, io, async () => {
      throw new UsageError(`-f: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    });
  }
  return withGateway(what, flags, io, async (gw) => {
    const r = await gw.gateway().reload(text, dryRun);
    if (flags.json) return printJson(io, r);
    for (const line of r.changes) io.out(line);
    if (dryRun)
      io.out(r.changes.length === 0 ? 'no changes' : `${r.changes.length} change(s); apply -f to make them`);
    else
      io.out(
        r.changes.length === 0
          ? `no changes; table version ${r.version}`
          : `applied ${r.changes.length} change(s); table version ${r.version}`,
      );
  });
}
