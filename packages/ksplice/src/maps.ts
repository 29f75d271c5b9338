import { endianness } from 'node:os';

// The layouts of bpf/splice.bpf.c's maps (change both together). Addresses and ports are in network
// order, as the programs compare them with the packet; offsets and counters in the host's order.

/** A spliced flow as the node's program knows it (ks_node). */
export interface NodeFlow {
  clientAddr: number;
  clusterAddr: number;
  clientPort: number;
  nodePort: number;
  clusterPort: number;
  /** node → client: seq −= sOff; TSval += tsOff (docs/splice.md "Sequence spaces") */
  sOff: number;
  tsOff: number;
  nodeWscale: number;
  gatewayWscale: number;
}

/** A spliced flow as the gateway's program knows it (ks_gw). */
export interface GatewayFlow {
  clientAddr: number;
  clientPort: number;
  clusterPort: number;
  nodePort: number;
  /** client → node: ack += sOff, SACK edges += sOff, TSecr −= tsOff */
  sOff: number;
  tsOff: number;
  /** the packet mark that routes it to its node (the fast path's markBase + node id) */
  mark: number;
}

/** An IPv6 spliced flow as the node's program knows it (ks_node6): 16-byte addresses, the same value. */
export type NodeFlow6 = Omit<NodeFlow, 'clientAddr' | 'clusterAddr'> & {
  clientAddr: Uint8Array;
  clusterAddr: Uint8Array;
};

/** An IPv6 spliced flow as the gateway's program knows it (ks_gw6). */
export type GatewayFlow6 = Omit<GatewayFlow, 'clientAddr'> & { clientAddr: Uint8Array };

export const NODE_KEY_SIZE = 12;
export const NODE_VALUE_SIZE = 24;
export const GW_KEY_SIZE = 8;
export const GW_VALUE_SIZE = 24;
export const NODE6_KEY_SIZE = 36;
export const GW6_KEY_SIZE = 20;

/** Indices of the per-CPU counters in ks_stats. */
export const STAT = { NODE_SHIFTED: 0, NODE_NO_FLOW: 1, GW_SHIFTED: 2 } as const;
export const STAT_COUNT = 3;

const LE = endianness() === 'LE';
const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

function address6(a: Uint8Array, field: string): Uint8Array {
  if (a.length !== 16) throw new RangeError(`${field}: an IPv6 address is 16 bytes, not ${a.length}`);
  return a;
}

/** encodeNodeKey writes the ks_node key of `f` into `out` (NODE_KEY_SIZE bytes). */
export function encodeNodeKey(
  f: Pick<NodeFlow, 'clientAddr' | 'clusterAddr' | 'clientPort' | 'nodePort'>,
  out: Uint8Array,
): Uint8Array {
  const v = view(out);
  v.setUint32(0, f.clientAddr >>> 0);
  v.setUint32(4, f.clusterAddr >>> 0);
  v.setUint16(8, f.clientPort);
  v.setUint16(10, f.nodePort);
  return out;
}

/** encodeNode6Key writes the ks_node6 key of `f` into `out` (NODE6_KEY_SIZE bytes). */
export function encodeNode6Key(
  f: Pick<NodeFlow6, 'clientAddr' | 'clusterAddr' | 'clientPort' | 'nodePort'>,
  out: Uint8Array,
): Uint8Array {
  out.set(address6(f.clientAddr, 'clientAddr'), 0);
  out.set(address6(f.clusterAddr, 'clusterAddr'), 16);
  const v = view(out);
  v.setUint16(32, f.clientPort);
  v.setUint16(34, f.nodePort);
  return out;
}

/** encodeNodeValue writes the ks_node (or ks_node6) value of `f` (packets 0) into `out` (NODE_VALUE_SIZE bytes). */
export function encodeNodeValue(
  f: Omit<NodeFlow, 'clientAddr' | 'clusterAddr'>,
  out: Uint8Array,
): Uint8Array {
  const v = view(out);
  v.setUint32(0, f.sOff >>> 0, LE);
  v.setUint32(4, f.tsOff >>> 0, LE);
  v.setUint16(8, f.clusterPort);
  v.setUint8(10, f.nodeWscale);
  v.setUint8(11, f.gatewayWscale);
  v.setUint32(12, 0, LE);
  v.setBigUint64(16, 0n, LE);
  return out;
}

/** decodeNodeFlow reads a ks_node key and value back; `packets` is what the program counted. */
export function decodeNodeFlow(key: Uint8Array, value: Uint8Array): NodeFlow & { packets: number } {
  const k = view(key);
  return {
    clientAddr: k.getUint32(0),
    clusterAddr: k.getUint32(4),
    clientPort: k.getUint16(8),
    nodePort: k.getUint16(10),
    ...nodeValue(value),
  };
}

/** decodeNode6Flow reads a ks_node6 key and value back. */
export function decodeNode6Flow(key: Uint8Array, value: Uint8Array): NodeFlow6 & { packets: number } {
  const k = view(key);
  return {
    clientAddr: key.slice(0, 16),
    clusterAddr: key.slice(16, 32),
    clientPort: k.getUint16(32),
    nodePort: k.getUint16(34),
    ...nodeValue(value),
  };
}

function nodeValue(value: Uint8Array) {
  const v = view(value);
  return {
    sOff: v.getUint32(0, LE) | 0,
    tsOff: v.getUint32(4, LE) | 0,
    clusterPort: v.getUint16(8),
    nodeWscale: v.getUint8(10),
    gatewayWscale: v.getUint8(11),
    packets: Number(v.getBigUint64(16, LE)),
  };
}

/** encodeGatewayKey writes the ks_gw key of `f` into `out` (GW_KEY_SIZE bytes). */
export function encodeGatewayKey(
  f: Pick<GatewayFlow, 'clientAddr' | 'clientPort' | 'clusterPort'>,
  out: Uint8Array,
): Uint8Array {
  const v = view(out);
  v.setUint32(0, f.clientAddr >>> 0);
  v.setUint16(4, f.clientPort);
  v.setUint16(6, f.clusterPort);
  return out;
}

/** encodeGateway6Key writes the ks_gw6 key of `f` into `out` (GW6_KEY_SIZE bytes). */
export function encodeGateway6Key(
  f: Pick<GatewayFlow6, 'clientAddr' | 'clientPort' | 'clusterPort'>,
  out: Uint8Array,
): Uint8Array {
  out.set(address6(f.clientAddr, 'clientAddr'), 0);
  const v = view(out);
  v.setUint16(16, f.clientPort);
  v.setUint16(18, f.clusterPort);
  return out;
}

/** encodeGatewayValue writes the ks_gw (or ks_gw6) value of `f` (packets 0) into `out` (GW_VALUE_SIZE bytes). */
export function encodeGatewayValue(f: Omit<GatewayFlow, 'clientAddr'>, out: Uint8Array): Uint8Array {
  const v = view(out);
  v.setUint32(0, f.sOff >>> 0, LE);
  v.setUint32(4, f.tsOff >>> 0, LE);
  v.setUint16(8, f.nodePort);
  v.setUint16(10, 0, LE);
  v.setUint32(12, f.mark >>> 0, LE);
  v.setBigUint64(16, 0n, LE);
  return out;
}

/** decodeGatewayFlow reads a ks_gw key and value back. */
export function decodeGatewayFlow(key: Uint8Array, value: Uint8Array): GatewayFlow & { packets: number } {
  const k = view(key);
  return {
    clientAddr: k.getUint32(0),
    clientPort: k.getUint16(4),
    clusterPort: k.getUint16(6),
    ...gatewayValue(value),
  };
}

/** decodeGateway6Flow reads a ks_gw6 key and value back. */
export function decodeGateway6Flow(key: Uint8Array, value: Uint8Array): GatewayFlow6 & { packets: number } {
  const k = view(key);
  return {
    clientAddr: key.slice(0, 16),
    clientPort: k.getUint16(16),
    clusterPort: k.getUint16(18),
    ...gatewayValue(value),
  };
}

function gatewayValue(value: Uint8Array) {
  const v = view(value);
  return {
    sOff: v.getUint32(0, LE) | 0,
    tsOff: v.getUint32(4, LE) | 0,
    nodePort: v.getUint16(8),
    mark: v.getUint32(12, LE),
    packets: Number(v.getBigUint64(16, LE)),
  };
}
