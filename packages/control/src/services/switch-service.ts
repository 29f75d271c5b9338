import {
  type Decision,
  DecisionKind,
  type ExplainResponse,
  type Flow,
  type PacketSummary,
  type SwitchServer,
} from '@onehost/proto';
import { requireRole } from '../auth/peer.js';
import { ControlError, invalidArgument } from '../control-error.js';
import { buildFlowPacket, tcpFlagBits } from '../flow-packet.js';
import type { Membership } from '../membership.js';
import type { ExplainResult, SwitchBackend } from '../switch-backend.js';
import { ipAddress, nodeName, port } from '../validate.js';
import { memberToProto, transportName, transportToProto } from './convert.js';
import { type RpcContext, unary } from './rpc.js';

const READERS = ['operator', 'gateway'] as const;
const WRITERS = ['operator'] as const;
const FUNCTION_NAME = /^[a-z][a-z0-9-]{0,31}$/;
const MAX_PACKET = 65535;
const DEFAULT_LIMIT = 1000;
const MAX_LIMIT = 100_000;

/**
 * switchService implements onehost.v1.Switch: reads for operators and gateways, changes for operators.
 * Drain acts on membership; the rest on `backend` (UNIMPLEMENTED when the server has none).
 */
export function switchService(
  ctx: RpcContext,
  backend: SwitchBackend | undefined,
  membership: Membership,
): SwitchServer {
  const need = (): SwitchBackend => {
    if (backend === undefined)
      throw new ControlError('UNIMPLEMENTED', 'this server has no message switch attached');
    return backend;
  };
  return {
    listEntries: unary(ctx, 'Switch/ListEntries', async (_req, call) => {
      requireRole(call, READERS);
      const { entries, version } = await need().listEntries();
      return {
        entries: entries.map((e) => ({
          protocol: transportToProto(e.protocol),
          port: e.port,
          function: e.function,
          options: e.options,
        })),
        version,
      };
    }),

    setEntry: unary(ctx, 'Switch/SetEntry', async (req, call) => {
      requireRole(call, WRITERS);
      const e = req.entry;
      if (e === undefined) throw invalidArgument('entry', 'required');
      const protocol = transportName(e.protocol);
      if (protocol === null)
        throw invalidArgument('entry.protocol', 'required: TRANSPORT_TCP or TRANSPORT_UDP');
      const entryPort = port('entry.port', e.port);
      if (!FUNCTION_NAME.test(e.function))
        throw invalidArgument('entry.function', 'required: a routing function name');
      const version = await need().setEntry({
        protocol,
        port: entryPort,
        function: e.function,
        options: e.options ?? {},
      });
      return { version };
    }),

    deleteEntry: unary(ctx, 'Switch/DeleteEntry', async (req, call) => {
      requireRole(call, WRITERS);
      const protocol = transportName(req.protocol);
      if (protocol === null) throw invalidArgument('protocol', 'required: TRANSPORT_TCP or TRANSPORT_UDP');
      return { version: await need().deleteEntry(protocol, port('port', req.port)) };
    }),

    drain: unary(ctx, 'Switch/Drain', async (req, call) => {
      requireRole(call, WRITERS);
      const m = await membership.drain(nodeName('node_name', req.nodeName), req.undrain);
      return { member: memberToProto(m, membership.healthOf(m.name)) };
    }),

    explain: unary(ctx, 'Switch/Explain', async (req, call): Promise<ExplainResponse> => {
      requireRole(call, READERS);
      const input = req.input;
      if (input === undefined) throw invalidArgument('input', 'required: packet_hex or flow');
      const packet =
        input.$case === 'packetHex' ? parseHex('packet_hex', input.value) : flowPacket(input.value);
      const result = await need().explain(packet, { updateTables: req.updateTables });
      return explainToProto(result);
    }),

    listConnections: unary(ctx, 'Switch/ListConnections', async (req, call) => {
      requireRole(call, READERS);
      const protocol = req.protocol === 0 ? undefined : transportName(req.protocol);
      if (protocol === null) throw invalidArgument('protocol', 'TRANSPORT_TCP, TRANSPORT_UDP or unset');
      if (req.limit > MAX_LIMIT) throw invalidArgument('limit', `at most ${MAX_LIMIT}`);
      const { connections, total, more } = await need().listConnections({
        ...(protocol !== undefined ? { protocol } : {}),
        ...(req.port !== 0 ? { port: port('port', req.port) } : {}),
        ...(req.nodeName !== '' ? { nodeName: nodeName('node_name', req.nodeName) } : {}),
        limit: req.limit === 0 ? DEFAULT_LIMIT : req.limit,
      });
      return {
        connections: connections.map((c) => ({
          ...c,
          protocol: transportToProto(c.protocol),
          path: c.path ?? 'user',
          packets: c.packets ?? 0,
          splice: c.splice,
        })),
        total,
        more: more ?? false,
      };
    }),
  };
}

/** parseHex reads hex digits (whitespace and ':' allowed between them). Throws INVALID_ARGUMENT. */
export function parseHex(field: string, text: string): Uint8Array {
  const digits = text.replace(/[\s:]/g, '');
  if (digits === '') throw invalidArgument(field, 'required');
  if (!/^[0-9a-fA-F]*$/.test(digits)) throw invalidArgument(field, 'not hex');
  if (digits.length % 2 !== 0) throw invalidArgument(field, 'odd number of hex digits');
  if (digits.length / 2 > MAX_PACKET) throw invalidArgument(field, `longer than ${MAX_PACKET} bytes`);
  return Uint8Array.from(Buffer.from(digits, 'hex'));
}

function flowPacket(f: Flow): Uint8Array {
  const protocol = transportName(f.protocol);
  if (protocol === null) throw invalidArgument('flow.protocol', 'required: TRANSPORT_TCP or TRANSPORT_UDP');
  const srcAddress = ipAddress('flow.src_address', f.srcAddress);
  const srcPort = port('flow.src_port', f.srcPort);
  const dstAddress = ipAddress('flow.dst_address', f.dstAddress);
  const dstPort = port('flow.dst_port', f.dstPort);
  const six = srcAddress.includes(':');
  if (dstAddress.includes(':') !== six)
    throw invalidArgument('flow.dst_address', `not of src_address's family (${six ? 'IPv6' : 'IPv4'})`);
  if (protocol === 'udp' && f.tcpFlags !== '') throw invalidArgument('flow.tcp_flags', 'only for TCP');
  if (protocol === 'tcp' && f.tcpFlags !== '' && tcpFlagBits(f.tcpFlags) < 0)
    throw invalidArgument('flow.tcp_flags', 'letters of "FSRPAU", each once');
  const maxPayload = MAX_PACKET - (six ? 40 : 20) - (protocol === 'tcp' ? 20 : 8);
  if (f.payload.length > maxPayload) throw invalidArgument('flow.payload', `longer than ${maxPayload} bytes`);
  return buildFlowPacket({
    protocol,
    srcAddress,
    srcPort,
    dstAddress,
    dstPort,
    tcpFlags: f.tcpFlags,
    payload: f.payload,
  });
}

function explainToProto(r: ExplainResult): ExplainResponse {
  const d = r.decision;
  let decision: Decision;
  if (d.kind === 'forward')
    decision = {
      kind: DecisionKind.DECISION_KIND_FORWARD,
      nodeId: d.node,
      nodeName: d.nodeName,
      ...(d.port !== undefined ? { port: d.port } : {}),
      dropReason: '',
    };
  else if (d.kind === 'local')
    decision = {
      kind: DecisionKind.DECISION_KIND_LOCAL,
      nodeId: 0,
      nodeName: '',
      ...(d.port !== undefined ? { port: d.port } : {}),
      dropReason: '',
    };
  else decision = { kind: DecisionKind.DECISION_KIND_DROP, nodeId: 0, nodeName: '', dropReason: d.reason };
  const p = r.packet;
  const packet: PacketSummary | undefined =
    p === undefined
      ? undefined
      : {
          protocol: p.protocol,
          src: p.src,
          dst: p.dst,
          ...(p.srcPort !== undefined ? { srcPort: p.srcPort } : {}),
          ...(p.dstPort !== undefined ? { dstPort: p.dstPort } : {}),
          flags: p.flags ?? '',
          length: p.length,
          fragment: p.fragment ?? '',
          icmp: p.icmp ?? '',
        };
  return { decision, trace: [...r.trace], ...(packet !== undefined ? { packet } : {}), path: r.path ?? '' };
}
